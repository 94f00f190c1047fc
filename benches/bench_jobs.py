"""Job queue burn-down and enqueue rate of what we ship (``revenge.infra.jobs``).

One worker (``run_worker``, concurrency 10), N no-op jobs (default 5,000), the machine's
PostgreSQL. Baselines measured in the same run, same database server:

* pgqueuer with its own single-connection psycopg driver (the library as shipped);
* procrastinate 3.10 over psycopg (the issue's reference, 5x of which is the target).

    python benches/bench_jobs.py                  # table, median of 3 runs
    python benches/bench_jobs.py --jobs 2000 --repeat 1 --no-procrastinate
    pytest benches/bench_jobs.py                  # the same burn-down under pytest-benchmark

"burn-down" is jobs / (last body finished - first body started); "wall" adds the
worker's start-up (schema check, LISTEN) to it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_jobs_compare import (
    CONCURRENCY,
    ONE_BY_ONE,
    _create_db,
    _drop_db,
    bench_pgqueuer,
    bench_procrastinate,
)
from revenge.infra.jobs import (
    JobContext,
    JobKind,
    Jobs,
    KindRegistry,
    Payload,
    WorkerConfig,
    run_worker,
)

TARGET = 4_000.0


@dataclass(frozen=True)
class Row:
    what: str
    enqueue_one: float
    enqueue_batch: float
    burn_down: float
    wall: float | None = None


class _Countdown:
    """A registry whose ``noop`` body notes when the first and the last of N jobs ran."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.done = 0
        self.first: float | None = None
        self.last = 0.0
        self.all_done = asyncio.Event()
        self.registry = KindRegistry((JobKind("noop"),))
        self.registry.handler("noop")(self.noop)

    async def noop(self, ctx: JobContext, payload: Payload) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.done += 1
        self.last = now
        if self.done == self.jobs:
            self.all_done.set()


async def _burn(url: str, countdown: _Countdown, prefetch: int = 0) -> tuple[float, float]:
    """Run one worker until the queued jobs are done: (burn-down jobs/s, wall jobs/s)."""
    config = WorkerConfig(
        url=url, concurrency=CONCURRENCY, prefetch=prefetch, metrics_interval=60.0
    )
    stop = asyncio.Event()
    started = time.perf_counter()
    worker = asyncio.create_task(run_worker(config, stop, registry=countdown.registry))
    await asyncio.wait_for(countdown.all_done.wait(), timeout=300)
    wall = countdown.jobs / (time.perf_counter() - started)
    stop.set()
    await worker
    assert countdown.first is not None
    return countdown.jobs / (countdown.last - countdown.first), wall


async def bench_revenge(url: str, jobs: int, prefetch: int = 0) -> Row:
    """Our stack: ``Jobs.enqueue``/``enqueue_many`` and ``run_worker`` with concurrency 10."""
    countdown = _Countdown(jobs)
    async with Jobs.open(url, registry=countdown.registry) as q:
        start = time.perf_counter()
        for _ in range(ONE_BY_ONE):
            await q.enqueue("noop")
        one = ONE_BY_ONE / (time.perf_counter() - start)
        await q.queries.clear_queue()
        start = time.perf_counter()
        await q.enqueue_many("noop", [None] * jobs)
        batch = jobs / (time.perf_counter() - start)
    burn, wall = await _burn(url, countdown, prefetch)
    return Row(f"revenge.infra.jobs, prefetch {prefetch}", one, batch, burn, wall)


def _once(factory: Any) -> Any:
    name, url = _create_db()
    try:
        return asyncio.run(factory(url))
    finally:
        _drop_db(name)


def _median(rows: list[Row]) -> Row:
    walls = [r.wall for r in rows if r.wall is not None]
    return Row(
        rows[0].what,
        statistics.median(r.enqueue_one for r in rows),
        statistics.median(r.enqueue_batch for r in rows),
        statistics.median(r.burn_down for r in rows),
        statistics.median(walls) if walls else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-procrastinate", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    def lib(r: Any) -> Row:
        return Row(r.library, r.enqueue_one, r.enqueue_batch, r.burn_down)

    ours = _median([_once(lambda u: bench_revenge(u, args.jobs)) for _ in range(args.repeat)])
    rows = [ours]
    rows.append(
        _median(
            [
                _once(lambda u: bench_revenge(u, args.jobs, prefetch=CONCURRENCY))
                for _ in range(args.repeat)
            ]
        )
    )
    rows.append(
        _median(
            [
                lib(
                    _once(
                        lambda u: bench_pgqueuer(
                            u, args.jobs, CONCURRENCY, 2 * CONCURRENCY, pooled=False
                        )
                    )
                )
                for _ in range(args.repeat)
            ]
        )
    )
    if not args.no_procrastinate:
        # one run: it is slow, and its number only sets the scale
        rows.append(lib(_once(lambda u: bench_procrastinate(u, args.jobs))))

    base = rows[-1].burn_down
    print(
        f"\n{args.jobs:,} no-op jobs, one worker, concurrency {CONCURRENCY}; "
        f"median of {args.repeat} (procrastinate: 1 run); x = burn-down / last row"
    )
    head = (
        f"{'stack':<52} {'enqueue 1-by-1/s':>16} {'enqueue batch/s':>15} "
        f"{'burn-down/s':>11} {'wall/s':>7} {'x':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        wall = f"{r.wall:>7,.0f}" if r.wall is not None else f"{'':>7}"
        print(
            f"{r.what:<52} {r.enqueue_one:>16,.0f} {r.enqueue_batch:>15,.0f} "
            f"{r.burn_down:>11,.0f} {wall} {r.burn_down / base:>6.2f}"
        )
    verdict = "meets" if ours.burn_down >= TARGET else "MISSES"
    print(
        f"\ntarget >= {TARGET:,.0f} jobs/s processed, shipped default (prefetch 0): "
        f"{verdict} ({ours.burn_down:,.0f})"
    )


def test_job_burn_down(benchmark: Any) -> None:
    """pytest-benchmark: one worker working off 2,000 queued no-op jobs (start-up included)."""
    logging.disable(logging.WARNING)
    jobs = 2_000
    databases: list[str] = []

    def setup() -> tuple[tuple[str, _Countdown], dict[str, Any]]:
        name, url = _create_db()
        databases.append(name)
        countdown = _Countdown(jobs)

        async def fill() -> None:
            async with Jobs.open(url, registry=countdown.registry) as q:
                await q.enqueue_many("noop", [None] * jobs)

        asyncio.run(fill())
        return (url, countdown), {}

    def burn(url: str, countdown: _Countdown) -> None:
        asyncio.run(_burn(url, countdown))

    try:
        benchmark.pedantic(burn, setup=setup, rounds=3, iterations=1)
    finally:
        for name in databases:
            _drop_db(name)
    benchmark.extra_info["jobs"] = jobs
    if benchmark.stats is not None:  # None under --benchmark-disable (CI's harness check)
        benchmark.extra_info["jobs_per_s_median"] = round(jobs / benchmark.stats.stats.median)


if __name__ == "__main__":
    main()
