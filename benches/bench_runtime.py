"""Benchmarks of the offloading runtime (run: ``pytest benches/bench_runtime.py --benchmark-only``).

* cold first use: time of ``await lazy.get()`` on a fresh service minus the
  factory's own time (the design allows 100 ms, our target is < 20 ms; the
  verdict is printed with ``-s``, and kept in the benchmark's ``extra_info``);
* ``Lazy.get()`` on a ready service against a plain attribute read and an
  ``await`` of a coroutine returning an attribute, in the same run;
* the health endpoint: reading the cached report and serialising it, against
  serialising an equal static dict.

All on uvloop, as under Granian. Each round runs many operations inside one
coroutine so the loop's own start-up cost is amortised; the per-operation
numbers are the round time divided by the operation count.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest
import uvloop

from revenge.runtime import Lazy, Runtime, Tier

OPS = 10_000  # operations per round for the hot-path benchmarks
FIRST_USES = 500  # fresh cold services per round
TARGET_FIRST_USE_S = 0.020  # the design's "< 20 ms beyond the factory"


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = uvloop.new_event_loop()
    yield loop
    loop.close()


def run(loop: asyncio.AbstractEventLoop, make: Callable[[], Awaitable[Any]]) -> Callable[[], Any]:
    return lambda: loop.run_until_complete(make())


# -- cold first use ------------------------------------------------------------------------


class Service:
    __slots__ = ("ready",)

    def __init__(self) -> None:
        self.ready = True


def first_use_overheads(loop: asyncio.AbstractEventLoop, factory_sleep: float) -> list[float]:
    """Per fresh Lazy: (time until get() returns) - (time spent inside the factory)."""

    async def measure() -> list[float]:
        overheads = []
        for i in range(FIRST_USES):
            spent = 0.0

            async def factory() -> Service:
                nonlocal spent
                start = time.perf_counter()
                if factory_sleep:
                    await asyncio.sleep(factory_sleep)
                service = Service()
                spent = time.perf_counter() - start
                return service

            lazy: Lazy[Service] = Lazy(f"svc{i}", factory)
            start = time.perf_counter()
            await lazy.get()
            overheads.append(time.perf_counter() - start - spent)
        return overheads

    return loop.run_until_complete(measure())


@pytest.mark.parametrize("factory_sleep", [0.0, 0.002], ids=["instant-factory", "2ms-factory"])
def test_cold_first_use_overhead(
    benchmark: Any, loop: asyncio.AbstractEventLoop, factory_sleep: float
) -> None:
    rounds = 3 if factory_sleep else 20
    collected: list[float] = []
    benchmark.pedantic(
        lambda: collected.extend(first_use_overheads(loop, factory_sleep)),
        rounds=rounds,
        iterations=1,
    )
    median = statistics.median(collected)
    p99 = statistics.quantiles(collected, n=100)[98]
    benchmark.extra_info["overhead_median_us"] = round(median * 1e6, 2)
    benchmark.extra_info["overhead_p99_us"] = round(p99 * 1e6, 2)
    # Reported, not asserted: a wall-clock percentile on a shared machine is a
    # measurement, and CI runs this file only to prove the harness works.
    met = p99 < TARGET_FIRST_USE_S
    benchmark.extra_info["target_first_use_p99_lt_20ms"] = "met" if met else "NOT met"
    print(
        f"\ncold first use ({benchmark.name}): overhead beyond the factory "
        f"median {median * 1e6:.1f} us, p99 {p99 * 1e6:.1f} us over {len(collected)} services; "
        f"target p99 < {TARGET_FIRST_USE_S * 1e3:g} ms: {'met' if met else 'NOT met'}"
    )


# -- Lazy.get() on a ready service vs baselines -------------------------------------------


class Holder:
    def __init__(self) -> None:
        self.service = Service()

    async def get(self) -> Service:
        return self.service


@pytest.mark.benchmark(group="ready-get")
def test_lazy_get_ready(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    lazy: Lazy[Service] = Lazy("svc", Service)
    loop.run_until_complete(lazy.get())

    async def many() -> None:
        get = lazy.get
        for _ in range(OPS):
            await get()

    benchmark.extra_info["ops_per_round"] = OPS
    benchmark(run(loop, many))


@pytest.mark.benchmark(group="ready-get")
def test_baseline_await_coroutine_returning_attribute(
    benchmark: Any, loop: asyncio.AbstractEventLoop
) -> None:
    holder = Holder()

    async def many() -> None:
        get = holder.get
        for _ in range(OPS):
            await get()

    benchmark.extra_info["ops_per_round"] = OPS
    benchmark(run(loop, many))


@pytest.mark.benchmark(group="ready-get")
def test_baseline_plain_attribute(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    holder = Holder()

    async def many() -> None:
        for _ in range(OPS):
            holder.service  # noqa: B018

    benchmark.extra_info["ops_per_round"] = OPS
    benchmark(run(loop, many))


# -- health endpoint --------------------------------------------------------------------


def build_runtime(loop: asyncio.AbstractEventLoop) -> Runtime:
    rt = Runtime(metrics=None, health_interval=3600)
    cold = []
    for i in range(4):
        rt.register(f"hot{i}", Tier.HOT, Service, health=lambda s: None)
        rt.register(f"warm{i}", Tier.WARM, Service, health=lambda s: None)
        cold.append(rt.register(f"cold{i}", Tier.COLD, Service, health=lambda s: None))
    loop.run_until_complete(rt.start())
    loop.run_until_complete(rt.lazy(cold[0]).get())  # one cold service built, three not
    loop.run_until_complete(rt.health.refresh())
    return rt


@pytest.mark.benchmark(group="health")
def test_health_endpoint_cached_report(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    rt = build_runtime(loop)

    def respond() -> bytes:
        _status, body = rt.health_report()
        return orjson.dumps(body)

    try:
        out = benchmark(respond)
        assert b'"initialized":false' in out and b'"status":"healthy"' in out
    finally:
        loop.run_until_complete(rt.stop())


@pytest.mark.benchmark(group="health")
def test_baseline_serialise_static_health_dict(
    benchmark: Any, loop: asyncio.AbstractEventLoop
) -> None:
    rt = build_runtime(loop)
    static = rt.health_report()[1]
    loop.run_until_complete(rt.stop())
    benchmark(lambda: orjson.dumps(static))


@pytest.mark.benchmark(group="health")
def test_health_refresh_all_checks(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    """The background work a probe no longer pays for: running all 12 checks."""
    rt = build_runtime(loop)
    try:
        benchmark(run(loop, rt.health.refresh))
    finally:
        loop.run_until_complete(rt.stop())
