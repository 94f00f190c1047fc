"""Search through the real PostgreSQL (schema from migration 0003_search), and the fallback switch."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest

from revenge.config import load_settings
from revenge.infra.db import Database, PoolConfig
from revenge.infra.search import PostgresSearch, SearchDocument, SearchService
from tests.integration import _typesense_server

pytestmark = pytest.mark.integration

CATALOGUE = [
    SearchDocument(
        "m1",
        "movie",
        "The Matrix",
        year=1999,
        overview="A hacker learns the truth about reality.",
        people=("Keanu Reeves", "Carrie-Anne Moss"),
    ),
    SearchDocument("m2", "movie", "The Matrix Reloaded", year=2003, overview="Neo fights on."),
    SearchDocument("m3", "movie", "The Animatrix", year=2003, overview="Animated shorts."),
    SearchDocument(
        "m4",
        "movie",
        "Amélie",
        original_title="Le Fabuleux Destin d'Amélie Poulain",
        year=2001,
        overview="A shy waitress in Paris.",
        people=("Audrey Tautou",),
    ),
    SearchDocument(
        "s1",
        "series",
        "Dark",
        year=2017,
        overview="A matrix of secrets connects four families in Winden.",
    ),
    SearchDocument("e1", "episode", "The Matrix of Time", year=2019, overview="Episode 5."),
    SearchDocument("m5", "movie", "Heat", year=1995, people=("Al Pacino", "Robert De Niro")),
]


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[Database]:
    # A small pool: the machine's PostgreSQL (100 connections) is shared with other suites.
    database = Database(migrated_url, PoolConfig(min_conns=1, max_conns=4))
    await database.start()
    yield database
    await database.close()


@pytest.fixture
async def pg(db: Database) -> AsyncIterator[PostgresSearch]:
    backend = PostgresSearch(db)
    await db.execute("DELETE FROM search_documents")
    await backend.index(CATALOGUE)
    yield backend
    await db.execute("DELETE FROM search_documents")


def ids(hits: Sequence[object]) -> list[str]:
    return [h.id for h in hits]  # type: ignore[attr-defined]


async def test_exact_title_ranks_first(pg: PostgresSearch) -> None:
    hits = await pg.search("the matrix")
    assert ids(hits)[0] == "m1"
    assert set(ids(hits)[1:3]) == {"m2", "e1"}  # both contain the phrase in their title
    assert hits[0].title == "The Matrix" and hits[0].year == 1999 and hits[0].kind == "movie"
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


async def test_title_match_outranks_overview_match(pg: PostgresSearch) -> None:
    found = ids(await pg.search("matrix"))
    assert found.index("m1") < found.index("s1")  # "Dark" mentions a matrix only in its overview
    assert found.index("m2") < found.index("s1")
    assert "m5" not in found


async def test_typo_finds_the_title(pg: PostgresSearch) -> None:
    hits = await pg.search("matirx")
    assert hits and hits[0].id == "m1"
    assert "m5" not in ids(hits) and "m4" not in ids(hits)


async def test_accents_and_original_title(pg: PostgresSearch) -> None:
    assert ids(await pg.search("amelie")) == ["m4"]
    assert ids(await pg.search("fabuleux destin")) == ["m4"]


async def test_people_are_searchable(pg: PostgresSearch) -> None:
    assert ids(await pg.search("pacino")) == ["m5"]
    assert ids(await pg.search("keanu"))[0] == "m1"


async def test_websearch_syntax(pg: PostgresSearch) -> None:
    assert "m2" not in ids(await pg.search("matrix -reloaded"))
    assert ids(await pg.search('"matrix reloaded"'))[0] == "m2"


async def test_kinds_filter(pg: PostgresSearch) -> None:
    assert set(ids(await pg.search("matrix", kinds=["series", "episode"]))) == {"s1", "e1"}
    assert ids(await pg.search("matirx", kinds=["episode"])) == ["e1"]


async def test_limit_and_offset_page_through(pg: PostgresSearch) -> None:
    every = ids(await pg.search("matrix", limit=50))
    assert len(every) >= 4
    pages = ids(await pg.search("matrix", limit=2)) + ids(
        await pg.search("matrix", limit=2, offset=2)
    )
    assert pages == every[:4]
    assert await pg.search("   ") == []


async def test_update_and_delete(pg: PostgresSearch) -> None:
    await pg.index([SearchDocument("m5", "movie", "Heat (Director's Cut)", year=1995)])
    assert ids(await pg.search("director")) == ["m5"]
    assert "m5" not in ids(await pg.search("pacino"))  # people replaced by the upsert

    await pg.delete(["m5", "not-there"])
    assert await pg.search("heat") == []


async def test_replace_all_and_documents_round_trip(pg: PostgresSearch) -> None:
    async def batches() -> AsyncIterator[list[SearchDocument]]:
        yield CATALOGUE[:2]
        yield CATALOGUE[3:4]

    assert await pg.replace_all(batches()) == 3
    assert await pg.count() == 3
    streamed = [doc async for batch in pg.documents(batch_size=2) for doc in batch]
    assert sorted(streamed, key=lambda d: d.id) == sorted(
        [CATALOGUE[0], CATALOGUE[1], CATALOGUE[3]], key=lambda d: d.id
    )


async def test_service_without_typesense_answers_from_postgres(db: Database, pg) -> None:
    service = SearchService.from_settings(db, load_settings(env={}))
    try:
        result = await service.search("matirx")
        assert result.backend == "postgres" and result.hits[0].id == "m1"
        assert not service.configured
        health = await service.health()
        assert (health.status, health.typesense) == ("healthy", "not configured")
    finally:
        await service.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens once the socket is closed


async def test_typesense_unreachable_falls_back_to_postgres(db: Database, pg) -> None:
    settings = load_settings(
        env={
            "REVENGE_SEARCH__TYPESENSE_URL": f"http://127.0.0.1:{closed_port()}",
            "REVENGE_SEARCH__TYPESENSE_API_KEY": "test-key",
        }
    )
    service = SearchService.from_settings(db, settings, backoff_initial=0.05, backoff_max=0.2)
    try:
        assert service.configured
        assert (await service.health()).typesense == "offloaded"  # cold: not built by health

        first = await service.search("matirx")  # starts Typesense in the background
        assert first.backend == "postgres" and first.hits[0].id == "m1"

        await _until(lambda: service.degraded)
        health = await service.health()
        assert health.status == "degraded" and health.backend == "postgres"
        assert health.error
        with pytest.raises(ConnectionError):
            await service.health_probe()

        # Everything keeps working from PostgreSQL while Typesense is down.
        await service.index([SearchDocument("m9", "movie", "Inception", year=2010)])
        result = await service.search("incepton")
        assert result.backend == "postgres" and ids(result.hits) == ["m9"]
        await service.delete(["m9"])
        assert (await service.search("inception")).hits == ()
    finally:
        await service.close()


async def _until(condition, within: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def typesense_server() -> Iterator[tuple[str, str]]:
    with _typesense_server.typesense() as server:
        yield server


@pytest.mark.skipif(not _typesense_server.available(), reason=_typesense_server.WHY_NOT)
async def test_typesense_backend_against_a_real_server(
    db: Database, pg, typesense_server: tuple[str, str]
) -> None:
    url, key = typesense_server
    settings = load_settings(
        env={"REVENGE_SEARCH__TYPESENSE_URL": url, "REVENGE_SEARCH__TYPESENSE_API_KEY": key}
    )
    service = SearchService.from_settings(db, settings)
    try:
        await service.start(eager=True)
        assert (await service.health()).status == "healthy"
        result = await service.search("matirx")
        # The typo finds the film through the real server. Its rank is not asserted:
        # Typesense scores "The Matrix" and "The Matrix Reloaded" alike for "matirx" and
        # breaks the tie by insertion order (no title-length preference, unlike the
        # PostgreSQL backend, which ranks the shorter title first).
        assert result.backend == "typesense" and "m1" in ids(result.hits)
        assert set(ids((await service.search("matrix", kinds=["series"])).hits)) == {"s1"}
        await service.delete(["m1"])
        assert "m1" not in ids((await service.search("matrix")).hits)
    finally:
        await service.close()


async def test_typo_threshold_does_not_leak_to_the_pooled_connection(migrated_url: str) -> None:
    single = Database(migrated_url, PoolConfig(min_conns=1, max_conns=1))
    await single.start()
    try:
        search = PostgresSearch(single, typo_threshold=0.25)
        await search.index(CATALOGUE[:1])
        assert ids(await search.search("matirx")) == ["m1"]
        row = await single.fetch_one(
            "SELECT current_setting('pg_trgm.word_similarity_threshold'),"
            " current_setting('plan_cache_mode')"
        )
        assert row is not None and float(row[0]) == 0.6  # the server defaults, untouched
        assert row[1] == "auto"
    finally:
        await single.execute("DELETE FROM search_documents")
        await single.close()
