"""Jobs survive their worker: SIGKILL mid-job, cron schedules, cleanup, concurrent installs."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import psycopg
import pytest

from revenge.config import load_settings
from revenge.infra.jobs import (
    JobContext,
    JobKind,
    Jobs,
    KindRegistry,
    Payload,
    RetryPolicy,
    WorkerConfig,
    builtin_registry,
    install_schema,
)
from tests.integration.jobs_support import config, running_worker, wait_for

pytestmark = pytest.mark.integration

WORKER_SCRIPT = Path(__file__).with_name("jobs_worker_proc.py")
DAY = 86400.0


async def test_job_of_a_sigkilled_worker_is_rerun_by_another(fresh_pg_url: str) -> None:
    finisher = KindRegistry((JobKind("sticky"),))
    finished_by: list[int] = []

    @finisher.handler("sticky")
    async def finish(ctx: JobContext, payload: Payload) -> None:
        finished_by.append(ctx.job_id)

    async with Jobs.open(fresh_pg_url, registry=finisher, stalled_after=1.0) as jobs:
        job_id = await jobs.enqueue("sticky")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER_SCRIPT), fresh_pg_url, "1.0"
        )
        try:
            progress = await wait_for(
                lambda: jobs.progress(job_id), lambda p: p is not None, "the subprocess to start"
            )
            assert progress is not None and f"pid {proc.pid}" in progress.message
            proc.send_signal(signal.SIGKILL)
            assert await proc.wait() == -signal.SIGKILL
            killed_at = time.monotonic()
            held = await jobs.status(job_id)
            assert held is not None and held.state in ("running", "stalled")

            async with running_worker(config(fresh_pg_url, stalled_after=1.0), finisher):
                status = await wait_for(
                    lambda: jobs.status(job_id),
                    lambda s: s is not None and s.state == "succeeded",
                    "the killed worker's job to be re-run",
                )
            print(
                f"\nrecovered {time.monotonic() - killed_at:.2f}s after SIGKILL (stalled_after=1s)"
            )
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert finished_by == [job_id]
    assert status.attempts == 2  # picked by the dead worker, then by ours


async def test_sigterm_stops_a_worker_process_and_releases_its_job(fresh_pg_url: str) -> None:
    async with Jobs.open(fresh_pg_url, registry=KindRegistry((JobKind("sticky"),))) as jobs:
        job_id = await jobs.enqueue("sticky")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER_SCRIPT), fresh_pg_url, "30", "0.3"
        )
        try:
            await wait_for(
                lambda: jobs.progress(job_id), lambda p: p is not None, "the subprocess to start"
            )
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        status = await jobs.status(job_id)
        # back in the queue at once, not left for the 30 s stall detection
        assert status is not None and status.state == "queued"
        assert (
            await _count(
                fresh_pg_url, "SELECT count(*) FROM pgqueuer WHERE queue_manager_id IS NOT NULL"
            )
            == 0
        )


async def test_cron_schedule_enqueues_the_kind_every_tick(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("tick", unique=True, schedule="* * * * * *"),))
    ticks: list[int] = []

    @registry.handler("tick")
    async def tick(ctx: JobContext, payload: Payload) -> None:
        ticks.append(ctx.job_id)

    async def count() -> int:
        return len(ticks)

    async with running_worker(config(fresh_pg_url), registry):
        await wait_for(count, lambda n: n >= 2, "two ticks of a per-second schedule")
    assert len(set(ticks)) == len(ticks)  # each tick is a job of its own


async def test_a_disabled_schedule_never_fires(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("tick", schedule="* * * * * *"), JobKind("probe")))
    ticks: list[int] = []
    probes: list[int] = []

    @registry.handler("tick")
    async def tick(ctx: JobContext, payload: Payload) -> None:
        ticks.append(ctx.job_id)

    @registry.handler("probe")
    async def probe(ctx: JobContext, payload: Payload) -> None:
        probes.append(ctx.job_id)

    cfg = config(fresh_pg_url, schedules={"tick": "", "probe": "* * * * * *"})

    async def count() -> int:
        return len(probes)

    async with running_worker(cfg, registry):
        await wait_for(count, lambda n: n >= 2, "the probe schedule to fire twice")
    assert ticks == []


def test_worker_config_reads_the_jobs_settings() -> None:
    settings = load_settings(
        env={
            "REVENGE_DATABASE__URL": "postgresql://db.example/revenge",
            "REVENGE_JOBS__CONCURRENCY": "3",
            "REVENGE_JOBS__CLEANUP_SCHEDULE": "5 4 * * *",
            "REVENGE_JOBS__KEEP_FINISHED": "2d",
            "REVENGE_JOBS__STALLED_AFTER": "90s",
        }
    )
    cfg = WorkerConfig.from_settings(settings, shutdown_grace=3.0)
    assert cfg.url == "postgresql://db.example/revenge"
    assert (cfg.concurrency, cfg.keep_finished, cfg.stalled_after) == (3, 2 * DAY, 90.0)
    assert cfg.schedule_for(builtin_registry().kind("cleanup")) == "5 4 * * *"
    assert cfg.schedule_for(JobKind("library_scan")) is None
    assert cfg.shutdown_grace == 3.0


async def _backdate(url: str, job_ids: list[int], days: float) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        age = f"{days} days"
        await conn.execute(
            "UPDATE pgqueuer_log SET created = now() - %s::interval WHERE job_id = ANY(%s)",
            (age, job_ids),
        )
        await conn.execute(
            "UPDATE pgqueuer SET updated = now() - %s::interval WHERE id = ANY(%s)", (age, job_ids)
        )
        await conn.execute(
            "UPDATE revenge_job_progress SET updated = now() - %s::interval WHERE job_id = ANY(%s)",
            (age, job_ids),
        )
        # Shifted, not set: rows from different seconds must stay in different seconds
        # (a unique index covers the second), or a slow run collides with itself.
        await conn.execute(
            "UPDATE pgqueuer_statistics SET created = created - %s::interval", (age,)
        )


async def _count(url: str, query: str, *params: object) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(query, params)
        return int((await cur.fetchone() or (0,))[0])


async def test_cleanup_deletes_old_finished_jobs_only(fresh_pg_url: str) -> None:
    registry = builtin_registry()
    registry.define(JobKind("work"))
    registry.define(JobKind("bad", retry=RetryPolicy(max_attempts=1)))
    registry.define(JobKind("pending"))  # no body here: stays queued

    @registry.handler("work")
    async def work(ctx: JobContext, payload: Payload) -> None:
        await ctx.progress(1, 1, "ok")

    @registry.handler("bad")
    async def bad(ctx: JobContext, payload: Payload) -> None:
        raise RuntimeError("broken")

    url = fresh_pg_url
    async with Jobs.open(url, registry=registry) as jobs:
        old_work, recent_work = (
            await jobs.enqueue_many("work", [{}] * 3),
            await jobs.enqueue_many("work", [{}] * 2),
        )
        failed = await jobs.enqueue("bad")
        pending = await jobs.enqueue("pending")
        async with running_worker(config(url), registry):
            for job_id in (*old_work, *recent_work, failed):
                await wait_for(
                    lambda j=job_id: jobs.status(j),
                    lambda s: s is not None and s.state in ("succeeded", "failed"),
                    f"job {job_id} to finish",
                )
        await jobs.queries.aggregate_logs()
        await _backdate(url, [*old_work, failed, pending], days=8)
        old_log_rows = await _count(
            url, "SELECT count(*) FROM pgqueuer_log WHERE job_id = ANY(%s)", [*old_work, failed]
        )

        report = await jobs.cleanup(keep_finished=7 * DAY)

        assert report.log_rows == old_log_rows > 0
        assert report.failed_jobs == 1 and report.progress_rows == 3
        assert report.statistics_rows > 0
        for job_id in (*old_work, failed):
            assert await jobs.status(job_id) is None  # history gone
        for job_id in recent_work:
            status = await jobs.status(job_id)
            assert status is not None and status.state == "succeeded"
            assert status.progress is not None
        still_pending = await jobs.status(pending)
        assert still_pending is not None and still_pending.state == "queued"
        assert still_pending.attempts == 0
        assert (
            await _count(url, "SELECT count(*) FROM pgqueuer_log WHERE job_id = %s", pending) == 1
        )

        again = await jobs.cleanup(keep_finished=7 * DAY)
        assert again.total == 0


async def test_scheduled_cleanup_runs_as_a_job(fresh_pg_url: str) -> None:
    registry = builtin_registry()
    registry.define(JobKind("work"))

    @registry.handler("work")
    async def work(ctx: JobContext, payload: Payload) -> None:
        return None

    url = fresh_pg_url
    async with Jobs.open(url, registry=registry) as jobs:
        done = await jobs.enqueue("work")
        async with running_worker(config(url), registry):
            await wait_for(
                lambda: jobs.status(done),
                lambda s: s is not None and s.state == "succeeded",
                "the work job",
            )
        await _backdate(url, [done], days=3)
        # keep_finished of 2 days, fired by a per-second cleanup schedule
        cfg = config(url, keep_finished=2 * DAY, schedules={"cleanup": "* * * * * *"})
        async with running_worker(cfg, registry):
            await wait_for(lambda: jobs.status(done), lambda s: s is None, "cleanup to remove it")
            cleanup_id = await _count(
                url, "SELECT max(job_id) FROM pgqueuer_log WHERE entrypoint = 'cleanup'"
            )
            progress = await wait_for(
                lambda: jobs.progress(cleanup_id), lambda p: p is not None, "cleanup progress"
            )
    assert progress is not None and "log rows" in progress.message


async def test_schema_install_is_idempotent_under_concurrency(fresh_pg_url: str) -> None:
    await asyncio.gather(*(install_schema(fresh_pg_url) for _ in range(4)))
    await install_schema(fresh_pg_url)
    tables = await _count(
        fresh_pg_url,
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ANY(%s)",
        [
            "pgqueuer",
            "pgqueuer_log",
            "pgqueuer_schedules",
            "pgqueuer_statistics",
            "revenge_job_progress",
        ],
    )
    assert tables == 5


async def _terminate(url: str, application_name: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            (application_name,),
        )
        return int((await cur.fetchone() or (0,))[0])


async def _backends(url: str, application_name: str) -> int:
    return await _count(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = %s",
        application_name,
    )


async def test_worker_relistens_after_its_listen_connection_is_killed(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("ping"),))
    ran: list[int] = []

    @registry.handler("ping")
    async def ping(ctx: JobContext, payload: Payload) -> None:
        ran.append(ctx.job_id)

    async def count() -> int:
        return len(ran)

    # polls so rarely that only a NOTIFY can wake the worker within the test's deadline
    cfg = config(fresh_pg_url, poll_interval=600.0)
    listen = "revenge-jobs-listen"
    async with (
        Jobs.open(fresh_pg_url, registry=registry) as jobs,
        running_worker(cfg, registry),
    ):
        await wait_for(lambda: _backends(fresh_pg_url, listen), lambda n: n == 1, "LISTEN")
        await jobs.enqueue("ping")
        await wait_for(count, lambda n: n == 1, "the first ping")
        assert await _terminate(fresh_pg_url, listen) == 1
        await wait_for(lambda: _backends(fresh_pg_url, listen), lambda n: n == 1, "re-LISTEN")
        await jobs.enqueue("ping")
        await wait_for(count, lambda n: n == 2, "a ping after the LISTEN connection died")


async def test_worker_recovers_when_all_its_connections_are_killed(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("ping"),))
    ran: list[int] = []

    @registry.handler("ping")
    async def ping(ctx: JobContext, payload: Payload) -> None:
        ran.append(ctx.job_id)

    async def count() -> int:
        return len(ran)

    async with running_worker(config(fresh_pg_url, poll_interval=0.5), registry):
        async with Jobs.open(fresh_pg_url, registry=registry, install=False) as jobs:
            await jobs.enqueue("ping")
            await wait_for(count, lambda n: n == 1, "the first ping")
        killed = await _terminate(fresh_pg_url, "revenge-jobs") + await _terminate(
            fresh_pg_url, "revenge-jobs-listen"
        )
        assert killed >= 2
        async with Jobs.open(fresh_pg_url, registry=registry, install=False) as jobs:
            later = await jobs.enqueue_many("ping", [{}] * 5)
            await wait_for(count, lambda n: n == 6, "pings after every connection was killed")
    assert set(later) <= set(ran)


async def test_worker_start_without_postgres_says_which_url_and_why() -> None:
    from revenge.infra.db.errors import DatabaseUnreachable
    from revenge.infra.jobs import run_worker

    url = "postgresql://revenge:s3cret@127.0.0.1:1/revenge"  # nothing listens on port 1
    with pytest.raises(DatabaseUnreachable) as caught:
        await run_worker(WorkerConfig(url=url), asyncio.Event(), registry=KindRegistry())
    message = str(caught.value)
    assert "127.0.0.1:1" in message and "s3cret" not in message


async def test_a_retry_that_cannot_be_queued_is_run_again_not_failed(fresh_pg_url: str) -> None:
    """PostgreSQL goes away as a body fails: its retry cannot be written. pgqueuer alone
    records the job as failed for good (the fault suite's PostgreSQL restart lost one so);
    the worker leaves it claimed instead, and it runs again once stalled."""
    from tests.integration.test_database_outage import Proxy

    proxy = Proxy(("127.0.0.1", 5432))
    await proxy.start()
    dbname = fresh_pg_url.rsplit("/", 1)[1]
    proxied = f"postgresql://postgres@127.0.0.1:{proxy.port}/{dbname}?sslmode=disable"
    registry = KindRegistry((JobKind("fragile", retry=RetryPolicy(max_attempts=5)),))
    runs: list[int] = []

    @registry.handler("fragile")
    async def fragile(ctx: JobContext, payload: Payload) -> None:
        runs.append(ctx.attempt)
        if len(runs) == 1:
            await proxy.stop()  # every connection of the worker is cut, then the body fails
            asyncio.get_running_loop().call_later(1.0, lambda: asyncio.ensure_future(proxy.start()))
            raise RuntimeError("failed while PostgreSQL was away")

    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        job_id = await jobs.enqueue("fragile")
        try:
            async with running_worker(config(proxied, stalled_after=1.0), registry):
                status = await wait_for(
                    lambda: jobs.status(job_id),
                    lambda s: s is not None and s.state in ("succeeded", "failed"),
                    "the job to end",
                )
        finally:
            await proxy.stop()
    assert status is not None and status.state == "succeeded", status
    assert len(runs) == 2
