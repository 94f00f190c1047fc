"""Choose the job-queue library by measuring it: procrastinate vs pgqueuer, both over psycopg 3.

One worker, concurrency 10, N no-op jobs (default 5,000), the machine's PostgreSQL.
Each library gets its own throw-away database so neither sees the other's tables.

    python benches/bench_jobs_compare.py            # 5,000 jobs
    python benches/bench_jobs_compare.py --jobs 2000 --repeat 3

Prints a table: enqueue one by one (jobs/s), enqueue batched (jobs/s), burn-down (jobs/s).
The median of ``--repeat`` runs is shown; the ratio column is against procrastinate.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import psycopg

ADMIN_URL = os.environ.get(
    "REVENGE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
CONCURRENCY = 10
ONE_BY_ONE = 1_000  # enqueue-one-by-one sample size (rate only; the burn-down uses the batch)


@dataclass(frozen=True)
class Result:
    library: str
    enqueue_one: float
    enqueue_batch: float
    burn_down: float


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


async def bench_procrastinate(url: str, jobs: int) -> Result:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    async def noop() -> None:
        return None

    async with app.open_async():
        await app.schema_manager.apply_schema_async()

        async def one_by_one() -> None:
            for _ in range(ONE_BY_ONE):
                await noop.defer_async()

        one = await _rate(ONE_BY_ONE, one_by_one)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("DELETE FROM procrastinate_jobs")

        batch = await _rate(jobs, lambda: noop.batch_defer_async(*([{}] * jobs)))
        burn = await _rate(
            jobs,
            lambda: app.run_worker_async(
                concurrency=CONCURRENCY, wait=False, install_signal_handlers=False
            ),
        )
        async with await psycopg.AsyncConnection.connect(url) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
            )
            done = (await cur.fetchone() or (0,))[0]
        if done != jobs:
            raise RuntimeError(f"procrastinate finished {done} of {jobs} jobs")
    return Result("procrastinate 3.10", one, batch, burn)


async def bench_pgqueuer(
    url: str, jobs: int, batch_size: int, max_tasks: int | None, *, pooled: bool
) -> Result:
    """``pooled=False``: pgqueuer's own single-connection psycopg driver; ``True``: ours."""
    from pgqueuer import Job, Queries, QueueManager
    from pgqueuer.adapters.drivers.psycopg import PsycopgDriver
    from pgqueuer.domain.types import QueueExecutionMode
    from psycopg_pool import AsyncConnectionPool

    from revenge.infra.jobs.driver import PsycopgPoolDriver

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        queries = Queries(PsycopgDriver(conn))
        await queries.install()

        async def one_by_one() -> None:
            for _ in range(ONE_BY_ONE):
                await queries.enqueue("noop", None)

        one = await _rate(ONE_BY_ONE, one_by_one)
        await queries.clear_queue()
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
            return None

        burn = await _rate(
            jobs,
            lambda: qm.run(
                batch_size=batch_size,
                max_concurrent_tasks=max_tasks,
                mode=QueueExecutionMode.drain,
            ),
        )
        cur = await conn.execute("SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'")
        done = (await cur.fetchone() or (0,))[0]
        if done != jobs:
            raise RuntimeError(f"pgqueuer finished {done} of {jobs} jobs")
    driver_name = "pool driver" if pooled else "own psycopg driver"
    label = f"pgqueuer 1.6, {driver_name}, batch {batch_size}, max {max_tasks or 'inf'}"
    return Result(label, one, batch, burn)


def _run(factory: Callable[[str], Awaitable[Result]]) -> Result:
    name, url = _create_db()
    try:
        return asyncio.run(factory(url))
    finally:
        _drop_db(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", choices=["procrastinate", "pgqueuer"], default=None)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    candidates: list[tuple[str, Callable[[str], Awaitable[Result]]]] = []
    if args.only in (None, "procrastinate"):
        candidates.append(("procrastinate", lambda u: bench_procrastinate(u, args.jobs)))
    if args.only in (None, "pgqueuer"):
        for pooled in (False, True):
            for batch, max_tasks in ((10, None), (5, CONCURRENCY)):
                candidates.append(
                    (
                        "pgqueuer",
                        lambda u, p=pooled, b=batch, m=max_tasks: bench_pgqueuer(
                            u, args.jobs, b, m, pooled=p
                        ),
                    )
                )
    rows: list[Result] = []
    for _, factory in candidates:
        runs = [_run(factory) for _ in range(args.repeat)]
        rows.append(
            Result(
                runs[0].library,
                statistics.median(r.enqueue_one for r in runs),
                statistics.median(r.enqueue_batch for r in runs),
                statistics.median(r.burn_down for r in runs),
            )
        )
    base = rows[0].burn_down
    print(
        f"\n{args.jobs} no-op jobs, one worker, concurrency {CONCURRENCY}, median of {args.repeat}"
    )
    header = f"{'library':<52} {'enqueue 1-by-1/s':>17} {'enqueue batch/s':>16} {'processed/s':>12} {'x base':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.library:<52} {r.enqueue_one:>17,.0f} {r.enqueue_batch:>16,.0f} "
            f"{r.burn_down:>12,.0f} {r.burn_down / base:>7.2f}"
        )


if __name__ == "__main__":
    main()
