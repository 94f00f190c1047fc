"""The built-in search backend: PostgreSQL full-text search plus pg_trgm for typos.

Schema: ``migrations/0003_search.sql``. A query gathers two candidate sets — rows
whose tsvector matches ``websearch_to_tsquery`` (best ``ts_rank_cd`` first) and
the titles nearest to the query by trigram word similarity (a GiST KNN scan,
which is what makes "matirx" find "The Matrix") — then scores the union:

    score = ts_rank_cd(document, query, 1) + 0.5 * word_similarity + 0.5 * similarity

Word matches always qualify; typo candidates only when their word similarity
reaches ``typo_threshold`` and they contain none of the query's ``-excluded`` words.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from revenge.infra.database import Database

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

_SEARCH = """
WITH q AS (
    SELECT websearch_to_tsquery('revenge_search', %(q)s) AS tsq,
           revenge_search_norm(%(fuzzy)s) AS norm,
           websearch_to_tsquery('revenge_search', %(excluded)s) AS excluded
), words AS (
    SELECT d.id FROM search_documents d, q
     WHERE d.document @@ q.tsq
       AND (%(kinds)s::text[] IS NULL OR d.kind = ANY(%(kinds)s::text[]))
     ORDER BY ts_rank_cd(d.document, q.tsq, 1) DESC
     LIMIT %(candidates)s
), typos AS (
    SELECT d.id FROM search_documents d, q
     WHERE %(kinds)s::text[] IS NULL OR d.kind = ANY(%(kinds)s::text[])
     ORDER BY q.norm <<-> d.search_title
     LIMIT %(candidates)s
)
SELECT d.id, d.kind, d.title, d.year, s.score
  FROM (SELECT id FROM words UNION SELECT id FROM typos) AS c
  JOIN search_documents AS d USING (id)
 CROSS JOIN q
 CROSS JOIN LATERAL (
     SELECT d.document @@ q.tsq AS matched,
            word_similarity(q.norm, d.search_title) AS ws,
            ts_rank_cd(d.document, q.tsq, 1)
              + 0.5 * word_similarity(q.norm, d.search_title)
              + 0.5 * similarity(q.norm, d.search_title) AS score
 ) AS s
 WHERE s.matched
    OR (s.ws >= %(threshold)s AND (%(excluded)s = '' OR NOT d.document @@ q.excluded))
 ORDER BY s.score DESC, d.title, d.id
 LIMIT %(limit)s OFFSET %(offset)s
"""


def split_query(query: str) -> tuple[str, str]:
    """Web-search syntax -> (words for trigram matching, excluded words as an OR query).

    >>> split_query('"the matrix" -reloaded or animatrix')
    ('the matrix animatrix', 'reloaded')
    """
    keep: list[str] = []
    excluded: list[str] = []
    for word in query.replace('"', " ").split():
        if word.startswith("-") and len(word) > 1:
            excluded.append(word[1:])
        elif word.lower() != "or" and word != "-":
            keep.append(word)
    return " ".join(keep), " or ".join(excluded)


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

    def __init__(self, db: Database, *, typo_threshold: float = 0.4, candidates: int = 100) -> None:
        self._db = db
        self.typo_threshold = typo_threshold
        self.candidates = candidates

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
        fuzzy, excluded = split_query(query)
        params = {
            "q": query,
            "fuzzy": fuzzy,
            "excluded": excluded,
            "kinds": list(kinds) if kinds else None,
            "candidates": max(self.candidates, limit + offset),
            "threshold": self.typo_threshold,
            "limit": limit,
            "offset": max(0, offset),
        }
        rows = await self._db.fetch_all(_SEARCH, params)
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
