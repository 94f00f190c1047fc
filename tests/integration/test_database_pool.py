"""The warm pool against the machine's real PostgreSQL (one fresh database per test).

Backends are counted and terminated by ``datname``, so nothing here touches
other tests' databases.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
import pytest

from revenge.infra.db import (
    Database,
    DatabaseUnreachable,
    PoolConfig,
    PoolStats,
)
from revenge.runtime.errors import ServiceUnavailable

pytestmark = pytest.mark.integration

PG_ADMIN_URL = os.environ.get(
    "REVENGE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# Short timings so the adaptive behaviour shows within a test's lifetime.
FAST = PoolConfig(
    min_conns=2,
    max_conns=10,
    idle_timeout=0.2,
    max_wait=1.0,
    health_check=0.5,
    scale_check_interval=0.1,
)


def _dbname(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _backends(url: str) -> list[int]:
    """PIDs of client backends connected to ``url``'s database (the admin connection is elsewhere)."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
            (_dbname(url),),
        ).fetchall()
    return [pid for (pid,) in rows]


def _terminate_all(url: str) -> int:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (_dbname(url),),
        ).fetchall()
    return len(rows)


async def _until(predicate: Callable[[], Awaitable[bool]], limit: float = 20.0) -> bool:
    """Poll ``predicate`` until it holds; False if it never did (a generous safety net)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
async def db(fresh_pg_url: str) -> AsyncIterator[Database]:
    database = Database(fresh_pg_url, FAST)
    await database.start()
    yield database
    await database.close()


async def test_opens_its_minimum_at_start(fresh_pg_url: str) -> None:
    async with Database(fresh_pg_url, PoolConfig(min_conns=3, max_conns=5)) as db:
        stats = db.stats()
        assert (stats.size, stats.idle, stats.active) == (3, 3, 0)
        assert len(_backends(fresh_pg_url)) == 3
    assert _backends(fresh_pg_url) == []


async def test_queries_and_transactions(db: Database) -> None:
    assert await db.fetch_one("SELECT %s::int + 1", (41,)) == (42,)
    await db.execute("CREATE TABLE t (n int)")
    await db.execute_many("INSERT INTO t VALUES (%s)", [(1,), (2,), (3,)])
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (4)")
            raise ZeroDivisionError
    assert await db.fetch_all("SELECT n FROM t ORDER BY n") == [(1,), (2,), (3,)]
    # SQL errors are the caller's bug, not an outage: they pass through untranslated.
    with pytest.raises(psycopg.errors.UndefinedTable):
        await db.fetch_one("SELECT * FROM missing")


async def test_grows_under_concurrent_load_then_shrinks_when_idle(fresh_pg_url: str) -> None:
    samples: list[PoolStats] = []
    db = Database(fresh_pg_url, FAST, on_sample=samples.append)
    await db.start()
    try:
        peak = 0

        async def busy() -> None:
            nonlocal peak
            for _ in range(4):
                async with db.connection(wait=5.0) as conn:
                    peak = max(peak, db.stats().active)
                    await conn.execute("SELECT pg_sleep(0.1)")

        await asyncio.gather(*(busy() for _ in range(8)))
        grown = db.stats()
        assert peak > FAST.min_conns
        assert grown.scale_up_events >= 1
        assert grown.waits >= 1
        assert max(s.min_size for s in samples) > FAST.min_conns  # the floor was raised

        async def back_to_minimum() -> bool:
            s = db.stats()
            return s.size == FAST.min_conns and s.min_size == FAST.min_conns

        assert await _until(back_to_minimum), db.stats()
        assert db.stats().scale_down_events >= 1
        assert len(_backends(fresh_pg_url)) == FAST.min_conns
    finally:
        await db.close()


async def test_exhausted_pool_answers_service_unavailable_not_a_hang(fresh_pg_url: str) -> None:
    config = PoolConfig(min_conns=1, max_conns=2, max_wait=0.3, scale_check_interval=60)
    async with Database(fresh_pg_url, config) as db:
        async with db.connection(), db.connection():
            with pytest.raises(ServiceUnavailable) as caught:
                async with db.connection():
                    pass
        err = caught.value
        assert err.service == "database"
        assert err.code == "database_unavailable"
        assert err.retry_after == 1
        assert "exhausted" in err.reason
        assert db.stats().timeouts == 1
        # Released connections serve again.
        assert await db.fetch_one("SELECT 1") == (1,)


async def test_recovers_after_backends_are_terminated(db: Database, fresh_pg_url: str) -> None:
    before = set(_backends(fresh_pg_url))
    assert len(before) == FAST.min_conns
    assert _terminate_all(fresh_pg_url) == len(before)

    async def gone() -> bool:
        return not (set(_backends(fresh_pg_url)) & before)

    assert await _until(gone)
    # Idle connections whose backend died are noticed at checkout (no round-trip)
    # and replaced: callers do not see the outage.
    for _ in range(10):
        assert await db.fetch_one("SELECT 1") == (1,)
    after = set(_backends(fresh_pg_url))
    assert after and not (after & before)
    assert db.stats().connections_lost >= len(before)


async def test_connection_lost_mid_query_is_service_unavailable(db: Database) -> None:
    async def victim() -> None:
        async with db.connection() as conn:
            await conn.execute("SELECT pg_sleep(30)")

    task = asyncio.create_task(victim())

    async def sleeping() -> bool:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"
                " AND datname = %s",
                (db.url.rsplit("/", 1)[1],),
            ).fetchone()
        return bool(row and row[0])

    assert await _until(sleeping)
    before = set(_backends(db.url))
    _terminate_all(db.url)
    with pytest.raises(ServiceUnavailable) as caught:
        await task
    assert caught.value.reason == "connection to PostgreSQL lost"
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)

    async def gone() -> bool:
        # pg_terminate_backend only signals; a backend still exiting could fail one more query.
        return not (set(_backends(db.url)) & before)

    assert await _until(gone)
    assert await db.fetch_one("SELECT 2") == (2,)


async def test_unreachable_at_start_names_the_url_and_the_reason() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://revenge:hunter2@127.0.0.1:{port}/revenge"
    with pytest.raises(DatabaseUnreachable) as caught:
        await Database(url, PoolConfig(connect_timeout=2)).start()
    message = str(caught.value)
    assert f"postgresql://revenge:***@127.0.0.1:{port}/revenge" in message
    assert "hunter2" not in message
    assert "refused" in message.lower()


async def test_unknown_database_at_start_is_reported(pg_url: str) -> None:
    url = pg_url.rsplit("/", 1)[0] + "/revenge_no_such_db"
    with pytest.raises(DatabaseUnreachable, match='database "revenge_no_such_db" does not exist'):
        await Database(url).start()


async def test_health_and_check(db: Database) -> None:
    report = await db.health()
    assert report.healthy and report.error is None
    assert report.stats.size >= FAST.min_conns
    await db.check()
    await db.close()
    report = await db.health()
    assert not report.healthy and report.error == "not started"
    with pytest.raises(ServiceUnavailable):
        await db.check()


async def test_background_check_replaces_dead_idle_connections(db: Database) -> None:
    """``pool.check()`` runs every ``health_check`` s and refills the pool without any request."""
    before = set(_backends(db.url))
    _terminate_all(db.url)

    async def refilled() -> bool:
        now = set(_backends(db.url))
        return len(now) >= FAST.min_conns and not (now & before)

    assert await _until(refilled)
    assert db.stats().connections_lost >= len(before)


@pytest.mark.skipif(
    os.environ.get("REVENGE_TEST_PG_RESTART") != "1",
    reason="restarts the shared PostgreSQL 15 cluster; set REVENGE_TEST_PG_RESTART=1 "
    "(CI does) when no other test suite uses it",
)
async def test_recovers_after_a_real_server_restart(db: Database) -> None:
    assert await db.fetch_one("SELECT 1") == (1,)
    proc = await asyncio.create_subprocess_exec("pg_ctlcluster", "15", "main", "restart")
    assert await proc.wait() == 0
    back = time.monotonic()

    async def serving() -> bool:
        try:
            return await db.fetch_one("SELECT 1") == (1,)
        except ServiceUnavailable:
            return False

    assert await _until(serving, limit=30.0)
    print(f"first successful query {time.monotonic() - back:.3f}s after the server was back")


async def test_stats_feed_the_runtime_metrics(fresh_pg_url: str) -> None:
    from prometheus_client import REGISTRY

    from revenge.infra.db import export_pool_metrics
    from revenge.runtime.metrics import get_metrics

    metrics = get_metrics()
    async with Database(fresh_pg_url, FAST, name="metrics_test") as db:
        unregister = export_pool_metrics(db, metrics)
        try:
            async with db.connection():
                metrics.sample()
                labels = {"pool": "metrics_test"}
                active = REGISTRY.get_sample_value("revenge_pool_active_connections", labels)
                idle = REGISTRY.get_sample_value("revenge_pool_idle_connections", labels)
                assert (active, idle) == (1.0, 1.0)
                assert REGISTRY.get_sample_value("revenge_pool_max_connections", labels) == 10.0
                assert REGISTRY.get_sample_value("revenge_pool_waiting_clients", labels) == 0.0
            # Force one scale-up decision and see it counted.
            await _scale_up_once(db)
            metrics.sample()
            up = REGISTRY.get_sample_value(
                "revenge_pool_scale_events_total", {"pool": "metrics_test", "direction": "up"}
            )
            assert up == db.stats().scale_up_events >= 1
        finally:
            unregister()


async def _scale_up_once(db: Database) -> None:
    """Make clients queue while the pool grows, keep room below max, run one scaler step.

    (A pool already at max_conns is never raised: psycopg_pool would open more.)
    """
    hold = asyncio.Event()
    held = db.config.max_conns - 3
    holding = 0

    async def holder() -> None:
        nonlocal holding
        async with db.connection(wait=5.0):
            holding += 1
            await hold.wait()

    tasks = [asyncio.create_task(holder()) for _ in range(held)]

    async def all_held() -> bool:
        return holding == held

    assert await _until(all_held)
    await db.sample()  # the background scaler may have counted the raise already
    assert db.stats().size <= db.config.max_conns
    hold.set()
    await asyncio.gather(*tasks)


async def test_plugs_into_the_runtime_health_checker(fresh_pg_url: str) -> None:
    from revenge.runtime.health import Category, Check, HealthChecker

    db = Database(fresh_pg_url, FAST)
    await db.start()
    checker = HealthChecker([Check("database", Category.CRITICAL, db.check, timeout=5.0)])
    report = await checker.refresh()
    assert report.status == "healthy" and report.services["database"].healthy
    await db.close()
    report = await checker.refresh()
    assert report.status == "unhealthy"
    assert "not started" in (report.services["database"].error or "")
