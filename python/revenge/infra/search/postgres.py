"""The built-in search backend: PostgreSQL full-text search plus pg_trgm for typos.

Schema: ``migrations/0003_search.sql``. A row matches when its tsvector matches
``websearch_to_tsquery`` (words, any field) or when its title is within
``typo_threshold`` trigram word similarity of the query's longer words (what
makes "matirx" find "The Matrix"; excluded ``-words`` still exclude). The best
``rerank_pool`` matches by ``ts_rank_cd`` are then re-scored with the title's
closeness to the query (exact titles first), which bounds the cost of a very
common word to ranking, not re-scoring, every match:

    score = ts_rank_cd(document, query, 1) + 0.5 * word_similarity + 0.5 * similarity

The threshold (and a generic plan for the prepared statement) are set with
``set_config(..., true)`` in the query's own transaction, pipelined into one
round trip, so neither leaks to other users of the pooled connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from revenge.infra.db import Database

from .types import SearchDocument, SearchHit

_UPSERT = """
INSERT INTO search_documents (id, kind, title, original_title, year, overview, people)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET
    kind = EXCLUDED.kind,
    title = EXCLUDED.title,
    original_title = EXCLUDED.original_title,
    year = EXCLUDED.year,
    overview = EXCLUDED.overview,
    people = EXCLUDED.people
"""

_TSQ = "websearch_to_tsquery('revenge_search', %(q)s)"
_NORM = "revenge_search_norm(%(text)s)"
_FUZZY = "revenge_search_norm(%(fuzzy)s)"


def _search_sql(*, typos: bool, excluded: bool) -> str:
    """One pass: word matches (GIN on ``document``) OR typo matches (GiST trigram on
    ``search_title`` above ``pg_trgm.word_similarity_threshold``), scored together.

    The query and the normalised text are expressions over the parameters, so
    the planner treats them as constants and both indexes drive a BitmapOr.
    """
    typo_match = f"({_FUZZY} <%% d.search_title)" if typos else "false"  # %% escapes %
    if typos and excluded:
        typo_match = (
            f"({typo_match} AND NOT d.document @@ "
            "websearch_to_tsquery('revenge_search', %(excluded)s))"
        )
    # Composed from this module's constants only; values travel as parameters.
    return f"""
WITH ranked AS (
    SELECT d.id, ts_rank_cd(d.document, {_TSQ}, 1) AS rank
      FROM search_documents AS d
     WHERE (d.document @@ {_TSQ} OR {typo_match})
       AND (%(kinds)s::text[] IS NULL OR d.kind = ANY(%(kinds)s::text[]))
     ORDER BY rank DESC
     LIMIT %(pool)s
)
SELECT d.id, d.kind, d.title, d.year,
       r.rank
         + 0.5 * word_similarity({_NORM}, d.search_title)
         + 0.5 * similarity({_NORM}, d.search_title) AS score
  FROM ranked AS r
  JOIN search_documents AS d USING (id)
 ORDER BY score DESC, d.title, d.id
 LIMIT %(limit)s OFFSET %(offset)s
"""  # noqa: S608


_QUERIES = {
    (typos, excluded): _search_sql(typos=typos, excluded=excluded)
    for typos in (False, True)
    for excluded in (False, True)
}
# Typos are looked for only in words this long: three-letter words share their
# trigrams with half the catalogue, which makes the trigram scan slow and useless.
MIN_TYPO_WORD = 4


def split_query(query: str) -> tuple[str, str, str]:
    """Web-search syntax -> (wanted words for scoring, the ones worth trigram matching,
    excluded words as an OR query).

    >>> split_query('"the matrix" -reloaded or animatrix')
    ('the matrix animatrix', 'matrix animatrix', 'reloaded')
    """
    wanted: list[str] = []
    excluded: list[str] = []
    for word in query.replace('"', " ").split():
        if word.startswith("-") and len(word) > 1:
            excluded.append(word[1:])
        elif word.lower() != "or" and word != "-":
            wanted.append(word)
    fuzzy = [w for w in wanted if len(w) >= MIN_TYPO_WORD]
    return " ".join(wanted), " ".join(fuzzy), " or ".join(excluded)


def _row(doc: SearchDocument) -> tuple[Any, ...]:
    return (
        doc.id,
        doc.kind,
        doc.title,
        doc.original_title,
        doc.year,
        doc.overview,
        doc.people_text,
    )


class PostgresSearch:
    """:class:`~revenge.infra.search.types.SearchBackend` over the shared pool."""

    name = "postgres"

    def __init__(
        self, db: Database, *, typo_threshold: float = 0.4, rerank_pool: int = 500
    ) -> None:
        self._db = db
        self.typo_threshold = typo_threshold
        self.rerank_pool = rerank_pool

    async def index(self, docs: Sequence[SearchDocument]) -> None:
        if docs:
            await self._db.execute_many(_UPSERT, [_row(d) for d in docs])

    async def delete(self, ids: Sequence[str]) -> None:
        if ids:
            await self._db.execute("DELETE FROM search_documents WHERE id = ANY(%s)", (list(ids),))

    async def search(
        self,
        query: str,
        *,
        kinds: Sequence[str] | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[SearchHit]:
        query = query.strip()
        if not query or limit <= 0:
            return []
        text, fuzzy, excluded = split_query(query)
        params = {
            "q": query,
            "text": text,
            "fuzzy": fuzzy,
            "excluded": excluded,
            "kinds": list(kinds) if kinds else None,
            "limit": limit,
            "offset": max(0, offset),
            "pool": max(self.rerank_pool, limit + max(0, offset)),
        }
        sql = _QUERIES[bool(fuzzy), bool(excluded)]
        async with self._db.connection() as conn, conn.pipeline(), conn.transaction():
            # Both settings are LOCAL to this transaction, so nothing leaks to the
            # pool's next user. The generic plan skips re-planning this statement
            # on every call (about 1.5 ms of ~2 ms here); its parameters are still
            # index conditions, so it keeps both indexes.
            await conn.execute(
                "SELECT set_config('pg_trgm.word_similarity_threshold', %s, true),"
                " set_config('plan_cache_mode', 'force_generic_plan', true)",
                (str(self.typo_threshold),),
            )
            cur = await conn.execute(sql, params, prepare=True)
            rows = await cur.fetchall()
        return [SearchHit(r[0], r[1], r[2], r[3], float(r[4])) for r in rows]

    async def replace_all(self, batches: AsyncIterator[Sequence[SearchDocument]]) -> int:
        """Swap the whole index in one transaction; searches see the old rows until commit."""
        count = 0
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM search_documents")
            async with conn.cursor() as cur:
                async for batch in batches:
                    await cur.executemany(_UPSERT, [_row(d) for d in batch])
                    count += len(batch)
        return count

    async def documents(self, batch_size: int = 1000) -> AsyncIterator[list[SearchDocument]]:
        """Every indexed document in id order, in batches (feeds another backend's rebuild)."""
        last = ""
        while True:
            rows = await self._db.fetch_all(
                "SELECT id, kind, title, original_title, year, overview, people"
                " FROM search_documents WHERE id > %s ORDER BY id LIMIT %s",
                (last, batch_size),
            )
            if not rows:
                return
            yield [
                SearchDocument(
                    r[0], r[1], r[2], r[3], r[4], r[5], tuple(p for p in r[6].split("\n") if p)
                )
                for r in rows
            ]
            last = rows[-1][0]

    async def count(self) -> int:
        row = await self._db.fetch_one("SELECT count(*) FROM search_documents")
        return int(row[0]) if row else 0

    async def ping(self) -> None:
        await self._db.fetch_one("SELECT 1 FROM search_documents LIMIT 1")

    async def close(self) -> None:
        return None  # the pool belongs to the application
