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


async def bench_revenge(url: str, jobs: int, prefetch: int = 0) -> Row:
    """Our stack: ``Jobs.enqueue``/``enqueue_many`` and ``run_worker`` with concurrency 10."""
    registry = KindRegistry((JobKind("noop"),))
    done = 0
    first: float | None = None
    last = 0.0
    all_done = asyncio.Event()

    @registry.handler("noop")
    async def noop(ctx: JobContext, payload: Payload) -> None:
        nonlocal done, first, last
        now = time.perf_counter()
        if first is None:
            first = now
        done += 1
        last = now
        if done == jobs:
            all_done.set()

    async with Jobs.open(url, registry=registry) as q:
        start = time.perf_counter()
        for _ in range(ONE_BY_ONE):
            await q.enqueue("noop")
        one = ONE_BY_ONE / (time.perf_counter() - start)
        await q.queries.clear_queue()
        start = time.perf_counter()
        await q.enqueue_many("noop", [None] * jobs)
        batch = jobs / (time.perf_counter() - start)

    config = WorkerConfig(
        url=url, concurrency=CONCURRENCY, prefetch=prefetch, metrics_interval=60.0
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    started = time.perf_counter()
    worker = asyncio.create_task(run_worker(config, stop, registry=registry, ready=ready))
    await asyncio.wait_for(all_done.wait(), timeout=300)
    wall = jobs / (time.perf_counter() - started)
    stop.set()
    await worker
    assert first is not None
    return Row(f"revenge.infra.jobs, prefetch {prefetch}", one, batch, jobs / (last - first), wall)


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
    """pytest-benchmark: one 2,000-job burn-down per round through ``run_worker``."""
    logging.disable(logging.WARNING)
    result: dict[str, float] = {}

    def round_() -> None:
        row = _once(lambda u: bench_revenge(u, 2_000))
        result["jobs_per_s"] = row.burn_down
        result["enqueue_one_per_s"] = row.enqueue_one

    benchmark.pedantic(round_, rounds=3, iterations=1)
    benchmark.extra_info.update(result)


if __name__ == "__main__":
    main()
