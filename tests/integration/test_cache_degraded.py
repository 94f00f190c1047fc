"""The cache without Redis, and with a Redis that dies and comes back mid-test.

The outage tests run their own redis-server on a free port (the machine's Redis
on 6379 is shared and is never stopped).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from revenge.infra.cache import Cache

from ._redis_server import RedisServer, free_port
from .test_cache import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[RedisServer]:
    srv = RedisServer()
    srv.start()
    yield srv
    srv.kill()


async def test_without_url_everything_works_in_process() -> None:
    cache = Cache("")
    await cache.start()
    try:
        await cache.set("k", b"v", ttl=10)
        assert await cache.get("k") == b"v"
        await cache.delete("k")
        assert await cache.get("k") is None

        got: list[bytes] = []
        await cache.subscribe("sessions:revoked", got.append)
        assert await cache.publish("sessions:revoked", b"t1") == 0
        await eventually(lambda: got == [b"t1"])

        report = await cache.health()
        # Not configured is the default install, not a fault: disabled, and healthy.
        assert report.status == "disabled" and not report.configured
        assert "not configured" in (report.error or "")
        await cache.health_probe()
        stats = cache.stats()
        assert stats.degraded and not stats.configured and stats.pool is None
    finally:
        await cache.close()


async def test_redis_down_at_start_then_up() -> None:
    port = free_port()
    cache = Cache(f"redis://127.0.0.1:{port}/0", backoff_initial=0.05, backoff_max=0.2)
    await cache.start()  # must not raise
    srv = RedisServer(port)
    try:
        assert cache.degraded
        await cache.set("k", b"v", ttl=10)
        assert await cache.get("k") == b"v"  # from the L1

        srv.start()
        await eventually(lambda: not cache.degraded)
        await cache.set("k2", b"v2", ttl=10)
        assert redis.Redis(port=port).get("revenge:k2").endswith(b"v2")
        assert (await cache.health()).status == "healthy"
    finally:
        await cache.close()
        srv.kill()


async def test_redis_killed_mid_test_degrades_then_recovers(server: RedisServer) -> None:
    cache = Cache(server.url, l1_ttl=60, backoff_initial=0.05, backoff_max=0.2)
    await cache.start()
    try:
        await cache.set("before", b"1", ttl=60)
        assert (await cache.health()).status == "healthy"

        server.kill()
        # Every call still answers: writes land in the L1, reads come from it.
        await cache.set("during", b"2", ttl=60)
        assert await cache.get("during") == b"2"
        assert await cache.get("never-set") is None
        await cache.delete("before")
        assert await cache.publish("ch", b"x") == 0
        assert cache.degraded
        report = await cache.health()
        assert report.status == "degraded" and report.error

        server.start()
        await eventually(lambda: not cache.degraded)
        assert (await cache.health()).status == "healthy"
        # Back on Redis: the L1 was cleared (it may have missed invalidations) and
        # new writes reach the server again.
        assert cache.l1.get("during") is None
        await cache.set("after", b"3", ttl=60)
        assert redis.Redis(port=server.port).get("revenge:after").endswith(b"3")
        stats = cache.stats()
        assert stats.degradations >= 1 and stats.reconnects >= 1 and stats.fallback_calls >= 1
    finally:
        await cache.close()


async def test_subscriber_resubscribes_after_restart(server: RedisServer) -> None:
    listener = Cache(server.url, backoff_initial=0.05, backoff_max=0.2)
    await listener.start()
    got: list[bytes] = []
    resubscribed: list[bool] = []
    await listener.subscribe(
        "sessions:revoked", got.append, on_resubscribe=lambda: resubscribed.append(True)
    )
    publisher = redis.Redis(port=server.port)
    try:
        assert publisher.publish("revenge:sessions:revoked", b"a") == 1
        await eventually(lambda: got == [b"a"])

        server.kill()
        await eventually(lambda: listener.degraded)
        server.start()
        await eventually(lambda: resubscribed == [True])

        # The invalidation channel and ours are both live again on the new server.
        assert publisher.publish("revenge:sessions:revoked", b"b") == 1
        await eventually(lambda: got == [b"a", b"b"])
        assert listener.stats().resubscribes == 1
    finally:
        publisher.close()
        await listener.close()


async def test_l1_invalidation_resumes_between_processes_after_restart(
    server: RedisServer,
) -> None:
    a = Cache(server.url, l1_ttl=60, backoff_initial=0.05, backoff_max=0.2)
    b = Cache(server.url, l1_ttl=60, backoff_initial=0.05, backoff_max=0.2)
    await a.start()
    await b.start()
    try:
        server.kill()
        await a.set("x", b"during-outage", ttl=60)  # only a's L1
        await b.set("x", b"b-local", ttl=60)
        server.start()
        await eventually(lambda: not a.degraded and b.stats().resubscribes == 1)
        await eventually(lambda: not b.degraded)
        await a.set("x", b"fresh", ttl=60)
        await eventually(lambda: b.l1.get("x") is None)
        assert await b.get("x") == b"fresh"
    finally:
        await a.close()
        await b.close()
