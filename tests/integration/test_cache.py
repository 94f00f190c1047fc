"""The cache against the machine's real Redis (db 15): values, L1 + L2, pub/sub, invalidation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from revenge.config import load_settings
from revenge.infra.cache import Cache

pytestmark = pytest.mark.integration


async def eventually(condition: Callable[[], Awaitable[bool] | bool], within: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def make_cache(redis_url: str) -> AsyncIterator[Callable[..., Awaitable[Cache]]]:
    made: list[Cache] = []

    async def make(**options: object) -> Cache:
        cache = Cache(redis_url, **options)  # type: ignore[arg-type]
        await cache.start()
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.close()


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


class StepClock:
    """An L1 clock that moves only when the test says so (no sleeps, no timing races)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_set_get_ttl_and_delete(make_cache, raw) -> None:
    cache = await make_cache()
    await cache.set("movie:1", b"payload", ttl=30)
    stored = await raw.get("revenge:movie:1")
    assert stored is not None and stored.endswith(b"payload")  # after the expiry frame
    # Redis was given the TTL (its own clock runs down from 30 s; 10 s of slack for a busy host)
    assert 20_000 < await raw.pttl("revenge:movie:1") <= 30_000
    assert await cache.get("movie:1") == b"payload"

    await cache.delete("movie:1")
    assert await raw.exists("revenge:movie:1") == 0
    assert await cache.get("movie:1") is None


async def test_value_expires_with_its_ttl(make_cache, raw) -> None:
    clock = StepClock()
    cache = await make_cache(l1_ttl=60, l1_clock=clock)
    await cache.set("short", b"x", ttl=0.5)
    assert await cache.get("short") == b"x"  # the L1 copy: its clock has not moved
    assert 0 < await raw.pttl("revenge:short") <= 500
    clock.now = 0.5
    assert cache.l1.get("short") is None  # the L1 copy lives no longer than the TTL given
    # Redis drops it on its own clock; 10 s is slack for a busy host, not a speed claim.
    await eventually(lambda: _absent(raw, "revenge:short"), within=10)
    assert await cache.get("short") is None  # neither the L1 nor Redis holds it


async def _absent(raw: aioredis.Redis, key: str) -> bool:
    return await raw.exists(key) == 0


async def test_l1_never_outlives_the_redis_ttl(make_cache, raw) -> None:
    clock = StepClock()
    writer = await make_cache(l1_ttl=60)
    reader = await make_cache(l1_ttl=60, l1_clock=clock)
    # 3 s: the read below must reach Redis before the value expires there, on a busy host too.
    await writer.set("k", b"v", ttl=3)
    assert await reader.get("k") == b"v"  # read from Redis, copied into the L1
    assert reader.stats().l2_hits == 1 and reader.l1.get("k") == b"v"
    clock.now = 3.0  # past the Redis TTL but well inside l1_ttl (60 s)
    assert reader.l1.get("k") is None
    await eventually(lambda: _absent(raw, "revenge:k"), within=10)
    assert await reader.get("k") is None


async def test_values_not_written_by_the_cache_are_misses(make_cache, raw) -> None:
    cache = await make_cache()
    await raw.set("revenge:foreign", b"plain bytes")
    assert await cache.get("foreign") is None


async def test_second_read_is_served_by_l1(make_cache) -> None:
    writer = await make_cache()
    reader = await make_cache()
    await writer.set_json("series:9", {"title": "Dark", "seasons": 3}, ttl=30)

    assert await reader.get_json("series:9") == {"title": "Dark", "seasons": 3}
    assert await reader.get_json("series:9") == {"title": "Dark", "seasons": 3}
    assert await reader.get("absent") is None
    stats = reader.stats()
    assert (stats.l2_hits, stats.l1_hits, stats.misses) == (1, 1, 1)
    assert stats.l1_entries == 1 and not stats.degraded and stats.configured


async def test_writes_invalidate_other_processes_l1(make_cache) -> None:
    a = await make_cache(l1_ttl=60)
    b = await make_cache(l1_ttl=60)
    await a.set("user:1", b"old", ttl=60)
    assert await b.get("user:1") == b"old"  # now in b's L1 for up to 60 s

    await a.set("user:1", b"new", ttl=60)
    await eventually(lambda: b.l1.get("user:1") is None)
    assert await b.get("user:1") == b"new"

    await a.delete("user:1")
    await eventually(lambda: b.l1.get("user:1") is None)
    assert await b.get("user:1") is None
    assert await a.get("user:1") is None


async def test_own_writes_stay_in_own_l1(make_cache) -> None:
    a = await make_cache(l1_ttl=60)
    await a.set("k", b"v", ttl=60)
    await asyncio.sleep(0.1)  # our own invalidation message comes back; it must be ignored
    assert a.l1.get("k") == b"v"


async def test_publish_reaches_subscribers_of_another_client(make_cache) -> None:
    publisher = await make_cache()
    subscriber = await make_cache()
    got: list[bytes] = []
    other: list[bytes] = []

    async def on_revoked(message: bytes) -> None:
        got.append(message)

    await subscriber.subscribe("sessions:revoked", on_revoked)
    await subscriber.subscribe("something:else", other.append)
    receivers = await publisher.publish("sessions:revoked", "token-hash-1")
    await publisher.publish("sessions:revoked", b"token-hash-2")

    assert receivers == 1
    await eventually(lambda: len(got) == 2)
    assert got == [b"token-hash-1", b"token-hash-2"]
    assert other == []


async def test_unsubscribe_stops_delivery(make_cache) -> None:
    publisher = await make_cache()
    subscriber = await make_cache()
    got: list[bytes] = []
    sub = await subscriber.subscribe("ch", got.append)
    await publisher.publish("ch", b"1")
    await eventually(lambda: got == [b"1"])
    await subscriber.unsubscribe(sub)
    await eventually(lambda: _publish_reaches(publisher, "ch", 0))
    assert got == [b"1"]


async def _publish_reaches(cache: Cache, channel: str, expected: int) -> bool:
    return await cache.publish(channel, b"probe") == expected


async def test_min_idle_connections_kept_warm_and_extra_ones_trimmed(make_cache) -> None:
    cache = await make_cache(pool_size=6, min_idle=2, keepalive_interval=0.1)
    pool = cache.stats().pool
    assert pool is not None and pool.idle >= 2

    await asyncio.gather(*(cache.set(f"k{i}", b"v", ttl=10) for i in range(40)))
    grown = cache.stats().pool
    assert grown is not None and grown.size > 2

    def trimmed() -> bool:
        stats = cache.stats().pool
        return stats is not None and stats.idle == 2

    await eventually(trimmed)


async def test_health_is_healthy_with_latency(make_cache) -> None:
    cache = await make_cache()
    report = await cache.health()
    assert report.status == "healthy" and report.latency_ms is not None
    await cache.health_probe()  # does not raise


async def test_built_from_settings(redis_url: str) -> None:
    settings = load_settings(env={"REVENGE_CACHE__URL": redis_url, "REVENGE_CACHE__POOL_SIZE": "4"})
    cache = Cache.from_settings(settings.cache)
    await cache.start()
    try:
        await cache.set("a", b"1", ttl=5)
        assert await cache.get("a") == b"1"
        pool = cache.stats().pool
        assert pool is not None and pool.max_size == 4
    finally:
        await cache.close()


async def test_rejects_non_positive_ttl(make_cache) -> None:
    cache = await make_cache()
    with pytest.raises(ValueError, match="ttl"):
        await cache.set("k", b"v", ttl=0)


async def test_exhausted_pool_serves_in_process_without_degrading(make_cache) -> None:
    cache = await make_cache(pool_size=1, min_idle=1, pool_timeout=0.05, l1_ttl=60)
    await cache.set("k", b"v", ttl=60)
    cache.clear_l1()
    assert cache._redis is not None
    held = await cache._redis.pool.get_connection()  # the only connection
    try:
        assert await cache.get("k") is None  # would wait forever; answers as a miss
        await cache.set("k2", b"v2", ttl=60)  # kept in the L1
        assert await cache.get("k2") == b"v2"
        stats = cache.stats()
        assert stats.busy == 2 and not stats.degraded
    finally:
        await cache._redis.pool.release(held)
    assert await cache.get("k") == b"v"


async def test_get_or_load_runs_one_load_for_concurrent_misses(make_cache) -> None:
    cache = await make_cache()
    other = await make_cache()
    calls: list[int] = []

    async def load() -> bytes:
        calls.append(1)
        await asyncio.sleep(0.05)
        return b"loaded"

    values = await asyncio.gather(*(cache.get_or_load("lazy", load, ttl=30) for _ in range(20)))
    assert values == [b"loaded"] * 20 and calls == [1]
    assert await other.get("lazy") == b"loaded"  # stored in Redis for everyone
    assert await cache.get_or_load("lazy", load, ttl=30) == b"loaded" and calls == [1]


async def test_get_or_load_failure_reaches_every_waiter_and_is_not_cached(make_cache) -> None:
    cache = await make_cache()

    async def broken() -> bytes:
        await asyncio.sleep(0.01)
        raise LookupError("metadata provider said no")

    results = await asyncio.gather(
        *(cache.get_or_load("bad", broken, ttl=30) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, LookupError) for r in results)
    assert await cache.get("bad") is None


async def test_memory_pressure_shrinks_then_empties_the_l1(make_cache) -> None:
    cache = await make_cache(l1_max_entries=100, l1_ttl=60)
    for i in range(100):
        await cache.set(f"k{i}", b"v", ttl=60)
    assert len(cache.l1) == 100
    cache.on_pressure("normal", "moderate")
    assert len(cache.l1) == 50 and cache.l1.get("k99") == b"v"  # the most recent stay
    cache.on_pressure("moderate", "critical")
    assert len(cache.l1) == 0
    assert await cache.get("k0") == b"v"  # Redis still has it
    stats = cache.pool_stats()
    assert stats.max_size == 10 and stats.idle >= 1
