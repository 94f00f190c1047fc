"""Cache reads: L1 hit vs L2 (Redis) hit, against bare redis-py GET in the same run.

One round = 1,000 L1 gets, or 200 sequential L2 gets (the L1 is switched off by
``l1_ttl=0``), or 200 bare ``GET``s through a redis-py client on the same server.
Divide a round's time by its count for the per-get latency. The L2 get is one
pipelined ``GET`` + ``PTTL`` round trip (the PTTL keeps the L1 copy from
outliving the Redis TTL), so its ratio to the bare GET is the wrapper's cost.

    python -m pytest benches/bench_cache.py --benchmark-only
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator

import pytest
import redis.asyncio as aioredis
import uvloop

from revenge.infra.cache import Cache

REDIS_URL = os.environ.get("REVENGE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
L1_GETS = 1000
L2_GETS = 200
VALUE = b"x" * 256


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = uvloop.new_event_loop()
    yield event_loop
    event_loop.close()


def _cache(loop: asyncio.AbstractEventLoop, **options: object) -> Iterator[Cache]:
    cache = Cache(REDIS_URL, prefix="revenge-bench:", **options)  # type: ignore[arg-type]
    loop.run_until_complete(cache.start())
    loop.run_until_complete(cache.set("k", VALUE, ttl=600))
    yield cache
    loop.run_until_complete(cache.delete("k"))
    loop.run_until_complete(cache.close())


@pytest.fixture(scope="module")
def with_l1(loop: asyncio.AbstractEventLoop) -> Iterator[Cache]:
    yield from _cache(loop, l1_ttl=600)


@pytest.fixture(scope="module")
def l2_only(loop: asyncio.AbstractEventLoop) -> Iterator[Cache]:
    yield from _cache(loop, l1_ttl=0)


@pytest.fixture(scope="module")
def degraded(loop: asyncio.AbstractEventLoop) -> Iterator[Cache]:
    cache = Cache("")
    loop.run_until_complete(cache.start())
    loop.run_until_complete(cache.set("k", VALUE, ttl=600))
    yield cache
    loop.run_until_complete(cache.close())


@pytest.fixture(scope="module")
def bare(loop: asyncio.AbstractEventLoop) -> Iterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    loop.run_until_complete(client.set("revenge-bench:bare", VALUE))
    yield client
    loop.run_until_complete(client.delete("revenge-bench:bare"))
    loop.run_until_complete(client.aclose())


def _rounds(get: Callable[[], Awaitable[object]], count: int) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        for _ in range(count):
            await get()

    return run


def _bench(benchmark, loop: asyncio.AbstractEventLoop, run: Callable[[], Awaitable[None]]) -> None:  # type: ignore[no-untyped-def]
    benchmark.pedantic(lambda: loop.run_until_complete(run()), rounds=30, warmup_rounds=2)


def test_get_l1_hit_x1000(benchmark, loop, with_l1: Cache) -> None:  # type: ignore[no-untyped-def]
    _bench(benchmark, loop, _rounds(lambda: with_l1.get("k"), L1_GETS))
    assert with_l1.stats().l1_hits >= L1_GETS


def test_get_l1_hit_degraded_no_redis_x1000(benchmark, loop, degraded: Cache) -> None:  # type: ignore[no-untyped-def]
    _bench(benchmark, loop, _rounds(lambda: degraded.get("k"), L1_GETS))


def test_get_l2_hit_x200(benchmark, loop, l2_only: Cache) -> None:  # type: ignore[no-untyped-def]
    _bench(benchmark, loop, _rounds(lambda: l2_only.get("k"), L2_GETS))
    assert l2_only.stats().l2_hits >= L2_GETS and l2_only.stats().l1_hits == 0


def test_baseline_bare_redis_get_x200(benchmark, loop, bare: aioredis.Redis) -> None:  # type: ignore[no-untyped-def]
    _bench(benchmark, loop, _rounds(lambda: bare.get("revenge-bench:bare"), L2_GETS))


def test_set_x200(benchmark, loop, l2_only: Cache) -> None:  # type: ignore[no-untyped-def]
    _bench(benchmark, loop, _rounds(lambda: l2_only.set("k", VALUE, ttl=600), L2_GETS))
