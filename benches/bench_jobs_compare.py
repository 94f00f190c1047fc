"""Job-queue stacks timed alike: procrastinate, pgqueuer and ``revenge.infra.jobs``.

One worker, concurrency 10, N no-op jobs (default 5,000), the machine's PostgreSQL;
each run gets its own throw-away database. Every stack goes through the same steps
on the same clock (``time.perf_counter`` in this process):

1. enqueue ``ONE_BY_ONE`` jobs one at a time (rate only; they are then deleted);
2. **first enqueue**: enqueue the N jobs in one batch, then start the worker;
3. each body notes when it ran; the worker stops after the N-th body (the stack's
   own way: procrastinate and pgqueuer's drain mode end on an empty queue, ours on
   its stop event); that shutdown is not timed;
4. the database must then show N jobs finished successfully, or the run is refused.

Reported per stack: enqueue rates, **body-to-body** throughput (N / (last body -
first body)) and **wall** time (first enqueue -> last body done: enqueue, worker
start-up and the whole burn-down; no drain tail after the last job is counted).

    python benches/bench_jobs_compare.py            # the library choice: 5,000 jobs
    python benches/bench_jobs_compare.py --jobs 2000 --repeat 3

``bench_jobs.py`` runs what we ship against the same baselines (and the target).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benches.record import RunRecord

ADMIN_URL = os.environ.get(
    "REVENGE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
CONCURRENCY = 10
ONE_BY_ONE = 1_000  # enqueue-one-by-one sample size (rate only; the burn-down uses the batch)
DEADLINE = 300.0  # seconds for N no-op jobs before a run counts as failed


@dataclass(frozen=True)
class Result:
    stack: str
    jobs: int
    enqueue_one: float
    """jobs/s, one ``enqueue`` call each."""
    enqueue_batch: float
    """jobs/s, one batch of N."""
    body_to_body: float
    """jobs/s between the first body's start and the last body's end."""
    wall_s: float
    """seconds from the batch enqueue's start to the last body's end."""
    succeeded: int
    """jobs the stack's own tables record as finished successfully (checked == jobs)."""

    @property
    def wall_rate(self) -> float:
        return self.jobs / self.wall_s


class Clock:
    """The boundaries every stack is timed by; bodies call :meth:`ran`."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.first_enqueue = 0.0
        self.first_body: float | None = None
        self.last_body = 0.0
        self.ran_count = 0
        self.all_ran = asyncio.Event()

    def enqueuing(self) -> None:
        self.first_enqueue = time.perf_counter()

    def ran(self) -> None:
        now = time.perf_counter()
        if self.first_body is None:
            self.first_body = now
        self.last_body = now
        self.ran_count += 1
        if self.ran_count == self.jobs:
            self.all_ran.set()

    async def wait(self, what: str) -> None:
        try:
            await asyncio.wait_for(self.all_ran.wait(), DEADLINE)
        except TimeoutError:
            raise RuntimeError(
                f"{what}: only {self.ran_count} of {self.jobs} bodies ran in {DEADLINE:g}s"
            ) from None

    def result(self, stack: str, one: float, batch: float, succeeded: int) -> Result:
        if succeeded != self.jobs:
            raise RuntimeError(f"{stack}: {succeeded} of {self.jobs} jobs recorded as succeeded")
        assert self.first_body is not None
        return Result(
            stack,
            self.jobs,
            one,
            batch,
            self.jobs / (self.last_body - self.first_body),
            self.last_body - self.first_enqueue,
            succeeded,
        )


def _create_db() -> tuple[str, str]:
    name = f"revenge_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def _drop_db(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _rate(n: int, body: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await body()
    return n / (time.perf_counter() - start)


async def count_succeeded(url: str, query: str, expected: int, within: float = 30.0) -> int:
    """The stack's own count of successful jobs, polled: some stacks write their log late."""
    deadline = time.monotonic() + within
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            cur = await conn.execute(query)
            count = int((await cur.fetchone() or (0,))[0])
            if count >= expected or time.monotonic() > deadline:
                return count
            await asyncio.sleep(0.2)


# -- the stacks ---------------------------------------------------------------------------


async def bench_procrastinate(url: str, jobs: int) -> Result:
    import procrastinate

    clock = Clock(jobs)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    async def noop() -> None:
        clock.ran()

    async with app.open_async():
        await app.schema_manager.apply_schema_async()

        async def one_by_one() -> None:
            for _ in range(ONE_BY_ONE):
                await noop.defer_async()

        one = await _rate(ONE_BY_ONE, one_by_one)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("DELETE FROM procrastinate_jobs")
        clock.ran_count, clock.first_body = 0, None  # the one-by-one jobs never ran; be sure

        clock.enqueuing()
        batch = await _rate(jobs, lambda: noop.batch_defer_async(*([{}] * jobs)))
        worker = asyncio.create_task(
            app.run_worker_async(concurrency=CONCURRENCY, wait=False, install_signal_handlers=False)
        )
        await clock.wait("procrastinate")
        await worker  # it ends once the queue is empty; that tail is not timed
    succeeded = await count_succeeded(
        url, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'", jobs
    )
    return clock.result("procrastinate 3.10", one, batch, succeeded)


async def bench_pgqueuer(
    url: str, jobs: int, batch_size: int, max_tasks: int | None, *, pooled: bool
) -> Result:
    """``pooled=False``: pgqueuer's own single-connection psycopg driver; ``True``: ours."""
    from pgqueuer import Job, Queries, QueueManager
    from pgqueuer.adapters.drivers.psycopg import PsycopgDriver
    from pgqueuer.domain.types import QueueExecutionMode
    from psycopg_pool import AsyncConnectionPool

    from revenge.infra.jobs.driver import PsycopgPoolDriver

    clock = Clock(jobs)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        queries = Queries(PsycopgDriver(conn))
        await queries.install()

        async def one_by_one() -> None:
            for _ in range(ONE_BY_ONE):
                await queries.enqueue("noop", None)

        one = await _rate(ONE_BY_ONE, one_by_one)
        await queries.clear_queue()
        clock.enqueuing()
        batch = await _rate(
            jobs, lambda: queries.enqueue(["noop"] * jobs, [None] * jobs, [0] * jobs)
        )

    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
        AsyncConnectionPool(
            url, min_size=4, max_size=4, kwargs={"autocommit": True}, open=False
        ) as pool,
    ):
        driver = PsycopgPoolDriver(pool) if pooled else PsycopgDriver(conn)
        qm = QueueManager(Queries(driver))

        @qm.entrypoint("noop")
        async def noop(job: Job) -> None:
            clock.ran()

        worker = asyncio.create_task(
            qm.run(
                batch_size=batch_size,
                max_concurrent_tasks=max_tasks,
                mode=QueueExecutionMode.drain,
            )
        )
        await clock.wait("pgqueuer")
        await worker  # drain mode ends by itself after an idle spell; that tail is not timed
    succeeded = await count_succeeded(
        url,
        "SELECT count(DISTINCT job_id) FROM pgqueuer_log WHERE status = 'successful'",
        jobs,
    )
    driver_name = "pool driver" if pooled else "own psycopg driver"
    label = f"pgqueuer 1.6, {driver_name}, batch {batch_size}, max {max_tasks or 'inf'}"
    return clock.result(label, one, batch, succeeded)


def run_in_fresh_db(factory: Callable[[str], Awaitable[Result]]) -> Result:
    name, url = _create_db()
    try:
        return asyncio.run(factory(url))
    finally:
        _drop_db(name)


# -- running and printing -----------------------------------------------------------------

Stack = tuple[str, Callable[[str], Awaitable[Result]]]


def interleaved(stacks: list[Stack], repeat: int, record: RunRecord) -> dict[str, list[Result]]:
    """``repeat`` rounds over every stack, each round starting one stack later."""
    runs: dict[str, list[Result]] = {key: [] for key, _ in stacks}
    for round_ in range(repeat):
        shift = round_ % len(stacks)
        for key, factory in stacks[shift:] + stacks[:shift]:
            result = run_in_fresh_db(factory)
            runs[key].append(result)
            record.round(round=round_, key=key, **asdict(result))
    return runs


def median(results: list[Result]) -> Result:
    first = results[0]
    return Result(
        first.stack,
        first.jobs,
        statistics.median(r.enqueue_one for r in results),
        statistics.median(r.enqueue_batch for r in results),
        statistics.median(r.body_to_body for r in results),
        statistics.median(r.wall_s for r in results),
        min(r.succeeded for r in results),
    )


def per_round_ratio(ours: list[Result], base: list[Result], *, wall: bool = False) -> float:
    """The median over rounds of this round's ratio (same minute, same neighbours)."""
    if wall:
        return statistics.median(b.wall_s / o.wall_s for o, b in zip(ours, base, strict=True))
    return statistics.median(
        o.body_to_body / b.body_to_body for o, b in zip(ours, base, strict=True)
    )


def print_table(
    record: RunRecord, runs: dict[str, list[Result]], base_key: str, title: str
) -> None:
    record.print(title)
    record.print(
        "| stack | enqueue 1-by-1/s | enqueue batch/s | body-to-body/s | wall s "
        "| wall jobs/s | succeeded | x base, body | x base, wall |"
    )
    record.print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for results in runs.values():
        r = median(results)
        body_x = per_round_ratio(results, runs[base_key])
        wall_x = per_round_ratio(results, runs[base_key], wall=True)
        record.print(
            f"| {r.stack} | {r.enqueue_one:,.0f} | {r.enqueue_batch:,.0f} | "
            f"{r.body_to_body:,.0f} | {r.wall_s:.2f} | {r.wall_rate:,.0f} | "
            f"{r.succeeded:,}/{r.jobs:,} | {body_x:.2f} | {wall_x:.2f} |"
        )
    record.print(
        "\nbody-to-body = jobs / (last body - first body); wall = first enqueue -> last body "
        "(enqueue + worker start-up + burn-down); x base = median over rounds of the "
        f"per-round ratio to `{base_key}`; every job of every run checked as succeeded"
    )


def setup_loop() -> None:
    logging.disable(logging.WARNING)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", choices=["procrastinate", "pgqueuer"], default=None)
    args = parser.parse_args()
    setup_loop()
    stacks: list[Stack] = []
    if args.only in (None, "procrastinate"):
        stacks.append(("procrastinate", lambda u: bench_procrastinate(u, args.jobs)))
    if args.only in (None, "pgqueuer"):
        for pooled in (False, True):
            for batch, max_tasks in ((10, None), (5, CONCURRENCY)):
                stacks.append(
                    (
                        f"pgqueuer {'pool' if pooled else 'own'} {batch}/{max_tasks}",
                        lambda u, p=pooled, b=batch, m=max_tasks: bench_pgqueuer(
                            u, args.jobs, b, m, pooled=p
                        ),
                    )
                )
    record = RunRecord("jobs-compare")
    record.header()
    runs = interleaved(stacks, args.repeat, record)
    print_table(
        record,
        runs,
        stacks[0][0],
        f"{args.jobs:,} no-op jobs, one worker, concurrency {CONCURRENCY}, "
        f"median of {args.repeat} interleaved rounds\n",
    )
    record.finish()


if __name__ == "__main__":
    main()
