"""Job queue burn-down of what we ship (``revenge.infra.jobs``) against its baselines, alike.

One worker (``run_worker``, concurrency 10), N no-op jobs (default 5,000), the machine's
PostgreSQL, every stack timed on the same clock boundaries (see ``bench_jobs_compare``):
body-to-body throughput and wall time from the first enqueue to the last completion,
every job checked as succeeded in the stack's own tables before it is counted.
Baselines, in the same interleaved rounds:

* pgqueuer with its own single-connection psycopg driver (the library as shipped);
* procrastinate 3.10 over psycopg (the issue's reference).

The target is a ratio, so it is computed from the same run: Revenge's body-to-body
throughput (shipped default, prefetch 0) >= ``TARGET_RATIO`` x procrastinate's, as the
median of the per-round ratios.

    python benches/bench_jobs.py                  # table and verdict, 3 rounds
    python benches/bench_jobs.py --jobs 2000 --repeat 1
    python benches/bench_jobs.py --no-procrastinate   # no baseline: no verdict
    pytest benches/bench_jobs.py                  # the burn-down under pytest-benchmark
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

# This folder (``bench_jobs_compare``) and the repository root (``benches.record``),
# however the file is run: as a script, or collected by pytest.
sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from benches.record import RunRecord

from bench_jobs_compare import (
    CONCURRENCY,
    ONE_BY_ONE,
    Clock,
    Result,
    Stack,
    _create_db,
    _drop_db,
    _rate,
    bench_pgqueuer,
    bench_procrastinate,
    count_succeeded,
    interleaved,
    per_round_ratio,
    print_table,
    setup_loop,
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

TARGET_RATIO = 5.0
"""Revenge's body-to-body jobs/s over procrastinate's, measured in the same run."""

SUCCEEDED_SQL = "SELECT count(DISTINCT job_id) FROM pgqueuer_log WHERE status = 'successful'"


def _registry(clock: Clock) -> KindRegistry:
    registry = KindRegistry((JobKind("noop"),))

    @registry.handler("noop")
    async def noop(ctx: JobContext, payload: Payload) -> None:
        clock.ran()

    return registry


async def _burn(url: str, clock: Clock, registry: KindRegistry, prefetch: int = 0) -> None:
    """One worker until the N-th body ran; then its clean stop (not timed)."""
    config = WorkerConfig(
        url=url, concurrency=CONCURRENCY, prefetch=prefetch, metrics_interval=60.0
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(config, stop, registry=registry))
    try:
        await clock.wait("revenge")
    finally:
        stop.set()
        await worker


async def bench_revenge(url: str, jobs: int, prefetch: int = 0) -> Result:
    """Our stack: ``Jobs.enqueue``/``enqueue_many`` and ``run_worker`` with concurrency 10."""
    clock = Clock(jobs)
    registry = _registry(clock)
    async with Jobs.open(url, registry=registry) as q:

        async def one_by_one() -> None:
            for _ in range(ONE_BY_ONE):
                await q.enqueue("noop")

        one = await _rate(ONE_BY_ONE, one_by_one)
        await q.queries.clear_queue()
        clock.enqueuing()
        batch = await _rate(jobs, lambda: q.enqueue_many("noop", [None] * jobs))
    await _burn(url, clock, registry, prefetch)
    succeeded = await count_succeeded(url, SUCCEEDED_SQL, jobs)
    return clock.result(f"revenge.infra.jobs, prefetch {prefetch}", one, batch, succeeded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--no-procrastinate", action="store_true")
    args = parser.parse_args()
    setup_loop()
    n = args.jobs
    stacks: list[Stack] = [
        ("revenge", lambda u: bench_revenge(u, n)),
        ("revenge prefetch", lambda u: bench_revenge(u, n, prefetch=CONCURRENCY)),
        ("pgqueuer", lambda u: bench_pgqueuer(u, n, CONCURRENCY, 2 * CONCURRENCY, pooled=False)),
    ]
    if not args.no_procrastinate:
        stacks.append(("procrastinate", lambda u: bench_procrastinate(u, n)))
    record = RunRecord("jobs")
    record.header()
    runs = interleaved(stacks, args.repeat, record)
    base = "procrastinate" if "procrastinate" in runs else "pgqueuer"
    print_table(
        record,
        runs,
        base,
        f"{n:,} no-op jobs, one worker, concurrency {CONCURRENCY}, median of {args.repeat} "
        "interleaved rounds\n",
    )
    verdicts: dict[str, Any] = {}
    if "procrastinate" in runs:
        ratio = per_round_ratio(runs["revenge"], runs["procrastinate"])
        met = ratio >= TARGET_RATIO
        verdicts["revenge >= 5x procrastinate, body-to-body"] = {"ratio": ratio, "met": met}
        wall_ratio = per_round_ratio(runs["revenge"], runs["procrastinate"], wall=True)
        record.print(
            f"\ntarget: revenge (shipped default, prefetch 0) body-to-body >= "
            f"{TARGET_RATIO:g}x procrastinate's in the same rounds: "
            f"{'met' if met else 'NOT met'} ({ratio:.2f}x; wall time {wall_ratio:.2f}x shorter)"
        )
    else:
        record.print("\ntarget: not computed (it is a ratio to procrastinate, which did not run)")
    record.finish(verdicts)


def test_job_burn_down(benchmark: Any) -> None:
    """pytest-benchmark: one worker working off 2,000 queued no-op jobs (start-up included)."""
    setup_loop()
    jobs = 2_000
    databases: list[str] = []

    def setup() -> tuple[tuple[str, Clock, KindRegistry], dict[str, Any]]:
        name, url = _create_db()
        databases.append(name)
        clock = Clock(jobs)
        registry = _registry(clock)

        async def fill() -> None:
            async with Jobs.open(url, registry=registry) as q:
                await q.enqueue_many("noop", [None] * jobs)

        asyncio.run(fill())
        return (url, clock, registry), {}

    def burn(url: str, clock: Clock, registry: KindRegistry) -> None:
        asyncio.run(_burn(url, clock, registry))
        assert asyncio.run(count_succeeded(url, SUCCEEDED_SQL, jobs)) == jobs

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
