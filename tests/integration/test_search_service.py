"""SearchService switching and resync logic, on the real PostgreSQL.

The primary here is an in-process index standing in for Typesense: stopping,
failing and restarting it on cue is what the switching logic needs, and a real
server cannot be made to fail mid-test as precisely. The real client runs against
a real Typesense server in test_search.py (``tests/integration/_typesense_server.py``).
What is tested here is the service's own logic: cold build, count check and rebuild,
fallback while the primary is down, rebuild after it returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from revenge.infra.db import Database, PoolConfig
from revenge.infra.search import PostgresSearch, SearchDocument, SearchHit, SearchService
from revenge.runtime.lazy import Lazy

from .test_search import CATALOGUE

pytestmark = pytest.mark.integration


class InProcessIndex:
    """A tiny title index that can be switched off like a server going down."""

    name = "typesense"

    def __init__(self) -> None:
        self.docs: dict[str, SearchDocument] = {}
        self.down = False
        self.rebuilds = 0

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("primary is down")

    async def index(self, docs: Sequence[SearchDocument]) -> None:
        self._check()
        self.docs.update({d.id: d for d in docs})

    async def delete(self, ids: Sequence[str]) -> None:
        self._check()
        for i in ids:
            self.docs.pop(i, None)

    async def search(
        self, query: str, *, kinds: Sequence[str] | None = None, limit: int = 20, offset: int = 0
    ) -> list[SearchHit]:
        self._check()
        found = [
            SearchHit(d.id, d.kind, d.title, d.year, 1.0)
            for d in sorted(self.docs.values(), key=lambda d: d.id)
            if query.lower() in d.title.lower() and (not kinds or d.kind in kinds)
        ]
        return found[offset : offset + limit]

    async def replace_all(self, batches: AsyncIterator[Sequence[SearchDocument]]) -> int:
        self._check()
        self.rebuilds += 1
        self.docs = {}
        async for batch in batches:
            self.docs.update({d.id: d for d in batch})
        return len(self.docs)

    async def count(self) -> int:
        self._check()
        return len(self.docs)

    async def ping(self) -> None:
        self._check()

    async def close(self) -> None:
        return None


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[Database]:
    # A small pool: the machine's PostgreSQL (100 connections) is shared with other suites.
    database = Database(migrated_url, PoolConfig(min_conns=1, max_conns=4))
    await database.start()
    await database.execute("DELETE FROM search_documents")
    await PostgresSearch(database).index(CATALOGUE)
    yield database
    await database.execute("DELETE FROM search_documents")
    await database.close()


async def until(condition, within: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def make_service(db: Database, primary: InProcessIndex) -> tuple[SearchService, list[int]]:
    builds: list[int] = []

    async def build() -> InProcessIndex:
        primary._check()
        builds.append(1)
        return primary

    service = SearchService(PostgresSearch(db), build, backoff_initial=0.02, backoff_max=0.1)
    return service, builds


async def test_cold_build_rebuilds_from_postgres_then_answers(db: Database) -> None:
    primary = InProcessIndex()
    service, builds = make_service(db, primary)
    try:
        assert builds == [] and (await service.health()).typesense == "offloaded"

        first = await service.search("matrix")
        assert first.backend == "postgres"  # the first search never waits for the cold start
        await until(lambda: service.typesense_ready)
        assert builds == [1] and primary.rebuilds == 1  # empty index: counts differed
        assert set(primary.docs) == {d.id for d in CATALOGUE}

        result = await service.search("matrix")
        assert result.backend == "typesense"
        assert [h.id for h in result.hits] == ["e1", "m1", "m2", "m3"]
        assert (await service.health()).status == "healthy"
    finally:
        await service.close()


async def test_in_sync_primary_is_not_rebuilt(db: Database) -> None:
    primary = InProcessIndex()
    primary.docs = {d.id: d for d in CATALOGUE}
    service, _ = make_service(db, primary)
    try:
        await service.start(eager=True)
        assert primary.rebuilds == 0
        assert (await service.search("heat")).backend == "typesense"
    finally:
        await service.close()


async def test_writes_go_to_both(db: Database) -> None:
    primary = InProcessIndex()
    service, _ = make_service(db, primary)
    try:
        await service.start(eager=True)
        await service.index([SearchDocument("m9", "movie", "Inception", year=2010)])
        assert "m9" in primary.docs
        assert [h.id for h in await service.postgres.search("inception")] == ["m9"]
        await service.delete(["m9"])
        assert "m9" not in primary.docs
        assert await service.postgres.search("inception") == []
    finally:
        await service.close()


async def test_outage_falls_back_and_recovery_rebuilds(db: Database) -> None:
    primary = InProcessIndex()
    service, _ = make_service(db, primary)
    try:
        await service.start(eager=True)
        primary.down = True

        result = await service.search("matirx")
        assert result.backend == "postgres" and result.hits[0].id == "m1"
        assert service.degraded
        assert (await service.health()).status == "degraded"

        # A write during the outage reaches PostgreSQL only ...
        await service.index([SearchDocument("m9", "movie", "Inception", year=2010)])
        assert "m9" not in primary.docs

        primary.down = False
        await until(lambda: service.typesense_ready)
        # ... and the rebuild after recovery brings it over.
        assert "m9" in primary.docs and primary.rebuilds == 2
        assert (await service.search("inception")).backend == "typesense"
        assert (await service.health()).status == "healthy"
    finally:
        await service.close()


async def test_primary_down_at_first_use(db: Database) -> None:
    primary = InProcessIndex()
    primary.down = True
    service, builds = make_service(db, primary)
    try:
        assert (await service.search("heat")).backend == "postgres"
        await until(lambda: service.degraded)
        assert builds == []
        primary.down = False
        await until(lambda: service.typesense_ready)
        assert (await service.search("heat")).backend == "typesense"
    finally:
        await service.close()


async def test_runtime_owned_lazy_is_used_and_left_open(db: Database) -> None:
    primary = InProcessIndex()
    lazy: Lazy[InProcessIndex] = Lazy("search", lambda: primary)
    service = SearchService(PostgresSearch(db), lazy)  # type: ignore[arg-type]
    await service.start(eager=True)
    assert (await service.search("heat")).backend == "typesense"
    await service.close()
    assert lazy.initialized  # the runtime, not the service, offloads it
    await lazy.offload("test", force=True)


async def test_reindex_all_replaces_postgres_then_rebuilds_the_primary(db: Database) -> None:
    primary = InProcessIndex()
    service, _ = make_service(db, primary)
    try:
        await service.start(eager=True)

        async def from_content_tables() -> AsyncIterator[list[SearchDocument]]:
            yield [SearchDocument("n1", "movie", "Nosferatu", year=1922)]
            yield [SearchDocument("n2", "movie", "Metropolis", year=1927)]

        assert await service.reindex_all(from_content_tables()) == 2
        assert await service.postgres.count() == 2
        assert set(primary.docs) == {"n1", "n2"}
        assert [h.id for h in (await service.search("nosferatu")).hits] == ["n1"]
        assert await service.reindex_all() == 2  # no source: rebuild the primary only
        assert primary.rebuilds == 3
    finally:
        await service.close()
