"""The pooled query path: Revenge's ``Database`` against bare psycopg_pool, same run, same server.

One round = 200 sequential checkouts, each running ``SELECT 1`` (autocommit) on
a uvloop loop; and 16 concurrent tasks x 25 checkouts for the contended path.
The ratio ``Database / psycopg_pool`` is the cost of the wrapper (the
stale-socket poll, the ServiceUnavailable translation, the busy-time counter).

    python -m pytest benches/bench_db_pool.py --benchmark-only
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvloop
from psycopg_pool import AsyncConnectionPool

from revenge.infra.db import Database, PoolConfig

DB_URL = os.environ.get("REVENGE_BENCH_DB_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SEQUENTIAL = 200
TASKS, PER_TASK = 16, 25


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = uvloop.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture(scope="module")
def bare_pool(loop: asyncio.AbstractEventLoop) -> Iterator[AsyncConnectionPool[Any]]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        DB_URL, min_size=16, max_size=50, kwargs={"autocommit": True}, open=False
    )
    loop.run_until_complete(pool.open(wait=True))
    yield pool
    loop.run_until_complete(pool.close())


@pytest.fixture(scope="module")
def database(loop: asyncio.AbstractEventLoop) -> Iterator[Database]:
    # The same floor as the bare pool so both runs start equally warm.
    db = Database(DB_URL, PoolConfig(min_conns=16, max_conns=50))
    loop.run_until_complete(db.start())
    yield db
    loop.run_until_complete(db.close())


def _sequential(query: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        for _ in range(SEQUENTIAL):
            await query()

    return run


def _concurrent(query: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    async def worker() -> None:
        for _ in range(PER_TASK):
            await query()

    async def run() -> None:
        await asyncio.gather(*(worker() for _ in range(TASKS)))

    return run


def _bare(pool: AsyncConnectionPool[Any]) -> Callable[[], Awaitable[None]]:
    async def query() -> None:
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")

    return query


def _revenge(db: Database) -> Callable[[], Awaitable[None]]:
    async def query() -> None:
        async with db.connection() as conn:
            await conn.execute("SELECT 1")

    return query


def _bench(
    benchmark: Any, loop: asyncio.AbstractEventLoop, run: Callable[[], Awaitable[None]]
) -> None:
    loop.run_until_complete(run())  # warm-up round
    benchmark.pedantic(lambda: loop.run_until_complete(run()), rounds=10, iterations=1)


@pytest.mark.benchmark(group="db-sequential")
def test_bare_psycopg_pool_sequential(benchmark: Any, loop: Any, bare_pool: Any) -> None:
    _bench(benchmark, loop, _sequential(_bare(bare_pool)))


@pytest.mark.benchmark(group="db-sequential")
def test_revenge_database_sequential(benchmark: Any, loop: Any, database: Database) -> None:
    _bench(benchmark, loop, _sequential(_revenge(database)))


@pytest.mark.benchmark(group="db-sequential")
def test_revenge_fetch_one_sequential(benchmark: Any, loop: Any, database: Database) -> None:
    async def query() -> None:
        await database.fetch_one("SELECT 1")

    _bench(benchmark, loop, _sequential(query))


@pytest.mark.benchmark(group="db-concurrent-16")
def test_bare_psycopg_pool_concurrent(benchmark: Any, loop: Any, bare_pool: Any) -> None:
    _bench(benchmark, loop, _concurrent(_bare(bare_pool)))


@pytest.mark.benchmark(group="db-concurrent-16")
def test_revenge_database_concurrent(benchmark: Any, loop: Any, database: Database) -> None:
    _bench(benchmark, loop, _concurrent(_revenge(database)))
