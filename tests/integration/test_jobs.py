"""The job queue against the machine's PostgreSQL: enqueue, run, retry, progress, priorities."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from prometheus_client import REGISTRY as PROM

from revenge.infra.jobs import (
    JobContext,
    JobKind,
    Jobs,
    JobStatus,
    KindRegistry,
    Payload,
    RetryPolicy,
)
from tests.integration.jobs_support import config, running_worker, wait_for

pytestmark = pytest.mark.integration


def _finished(kind: str, outcome: str) -> float:
    return (
        PROM.get_sample_value("revenge_jobs_finished_total", {"kind": kind, "outcome": outcome})
        or 0.0
    )


async def _state(jobs: Jobs, job_id: int) -> JobStatus | None:
    return await jobs.status(job_id)


def _is(state: str):  # type: ignore[no-untyped-def]
    return lambda s: s is not None and s.state == state


async def test_enqueue_runs_each_job_with_its_payload(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("echo"),))
    seen: list[tuple[int, Payload]] = []

    @registry.handler("echo")
    async def echo(ctx: JobContext, payload: Payload) -> None:
        seen.append((ctx.job_id, payload))

    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        ids = [await jobs.enqueue("echo", {"n": n}) for n in range(3)]
        assert len(set(ids)) == 3
        assert (await jobs.status(ids[0])).state == "queued"  # type: ignore[union-attr]
        async with running_worker(config(fresh_pg_url), registry):
            for job_id in ids:
                status = await wait_for(
                    lambda j=job_id: _state(jobs, j), _is("succeeded"), f"job {job_id}"
                )
                assert status.attempts == 1 and status.kind == "echo" and status.error is None
    assert sorted(seen) == [(ids[n], {"n": n}) for n in range(3)]


async def test_failed_runs_are_retried_with_backoff_then_succeed(fresh_pg_url: str) -> None:
    policy = RetryPolicy(max_attempts=3, initial_delay=0.05, multiplier=2.0)
    registry = KindRegistry((JobKind("flaky", retry=policy),))
    attempts: list[int] = []

    @registry.handler("flaky")
    async def flaky(ctx: JobContext, payload: Payload) -> None:
        attempts.append(ctx.attempt)
        if ctx.attempt < 2:
            raise RuntimeError(f"transient failure {ctx.attempt}")

    retried_before = _finished("flaky", "retried")
    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        job_id = await jobs.enqueue("flaky")
        async with running_worker(config(fresh_pg_url), registry):
            status = await wait_for(lambda: _state(jobs, job_id), _is("succeeded"), "flaky job")
    assert attempts == [0, 1, 2]
    assert status.attempts == 3
    assert _finished("flaky", "retried") - retried_before == 2


async def test_job_fails_for_good_after_its_last_attempt(fresh_pg_url: str) -> None:
    registry = KindRegistry(
        (JobKind("doomed", retry=RetryPolicy(max_attempts=2, initial_delay=0.05)),)
    )
    runs: list[int] = []

    @registry.handler("doomed")
    async def doomed(ctx: JobContext, payload: Payload) -> None:
        runs.append(ctx.attempt)
        raise ValueError("the disk is on fire")

    failed_before = PROM.get_sample_value("revenge_job_failures_total", {"kind": "doomed"}) or 0.0
    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        job_id = await jobs.enqueue("doomed")
        async with running_worker(config(fresh_pg_url), registry):
            status = await wait_for(lambda: _state(jobs, job_id), _is("failed"), "doomed job")
        assert runs == [0, 1]
        assert status.attempts == 2
        assert status.error == "ValueError: the disk is on fire"
        assert (await jobs.queue_depth())[("doomed", "failed")] == 1
    failed_after = PROM.get_sample_value("revenge_job_failures_total", {"kind": "doomed"}) or 0.0
    assert failed_after - failed_before == 1


async def test_timeout_counts_as_a_failed_run(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("slow", timeout=0.2, retry=RetryPolicy(max_attempts=1)),))

    @registry.handler("slow")
    async def slow(ctx: JobContext, payload: Payload) -> None:
        await asyncio.Event().wait()  # never set: only the kind's timeout ends it

    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        job_id = await jobs.enqueue("slow")
        async with running_worker(config(fresh_pg_url), registry):
            status = await wait_for(lambda: _state(jobs, job_id), _is("failed"), "timed-out job")
    assert status.error == "TimeoutError: the job ran longer than its kind's timeout of 0.2 s"


async def test_no_job_lost_every_job_runs_exactly_once(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("count"),))
    ran: Counter[int] = Counter()

    @registry.handler("count")
    async def count(ctx: JobContext, payload: Payload) -> None:
        ran[payload["i"]] += 1

    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        batch = await jobs.enqueue_many("count", [{"i": i} for i in range(400)])
        async with running_worker(config(fresh_pg_url, concurrency=10), registry):
            # more arrive while the worker is busy, one by one
            singles = [await jobs.enqueue("count", {"i": i}) for i in range(400, 500)]
            await wait_for(lambda: _sum(ran), lambda n: n >= 500, "500 jobs done")
            await wait_for(jobs.queue_depth, lambda d: sum(d.values()) == 0, "an empty queue")
        async with jobs.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(DISTINCT job_id) FROM pgqueuer_log WHERE status = 'successful'"
            )
            logged = (await cur.fetchone() or (0,))[0]
    assert len(set(batch + singles)) == 500
    assert sorted(ran) == list(range(500)) and set(ran.values()) == {1}
    assert logged == 500


async def _sum(counter: Counter[int]) -> int:
    return sum(counter.values())


async def test_unique_kind_absorbs_duplicates_by_key(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("scan", unique=True), JobKind("plain")))
    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        first = await jobs.enqueue("scan", {"lib": 1}, key="1")
        again = await jobs.enqueue("scan", {"lib": 1}, key="1")
        other = await jobs.enqueue("scan", {"lib": 2}, key="2")
        many = await jobs.enqueue_many("scan", [{}, {}, {}], keys=["1", "3", "3"])
        plain = {await jobs.enqueue("plain", key="1") for _ in range(2)}
        depth = await jobs.queue_depth()
    assert again == first and other != first
    assert many[0] == first and many[1] == many[2] and many[1] not in (first, other)
    assert len(plain) == 2  # not unique: the key means nothing
    assert depth[("scan", "queued")] == 3


async def test_max_running_one_is_a_cluster_wide_lock(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("exclusive", max_running=1), JobKind("shared")))
    live = {"exclusive": 0, "shared": 0}
    peak = {"exclusive": 0, "shared": 0}
    both_shared_running = asyncio.Event()

    async def body(ctx: JobContext, payload: Payload) -> None:
        live[ctx.kind] += 1
        peak[ctx.kind] = max(peak[ctx.kind], live[ctx.kind])
        if ctx.kind == "shared" and live["shared"] >= 2:
            both_shared_running.set()
        try:
            if ctx.kind == "shared":
                await asyncio.wait_for(both_shared_running.wait(), timeout=10)
            else:
                await asyncio.sleep(0.05)
        finally:
            live[ctx.kind] -= 1

    registry.handler("exclusive")(body)
    registry.handler("shared")(body)
    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        ids = await jobs.enqueue_many("exclusive", [{}] * 6) + await jobs.enqueue_many(
            "shared", [{}] * 2
        )
        # two workers, so the cap must hold across processes' queue managers, not just locally
        async with (
            running_worker(config(fresh_pg_url), registry),
            running_worker(config(fresh_pg_url), registry),
        ):
            for job_id in ids:
                await wait_for(lambda j=job_id: _state(jobs, j), _is("succeeded"), f"job {job_id}")
    assert peak["exclusive"] == 1
    assert peak["shared"] == 2  # the same worker does run jobs side by side


async def test_higher_priority_runs_first(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("p"),))
    order: list[str] = []

    @registry.handler("p")
    async def record(ctx: JobContext, payload: Payload) -> None:
        order.append(payload["name"])

    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        for i in range(3):
            await jobs.enqueue("p", {"name": f"low{i}"}, priority=-5)
        for i in range(3):
            await jobs.enqueue("p", {"name": f"high{i}"}, priority=10)
        await jobs.enqueue("p", {"name": "normal"})
        async with running_worker(config(fresh_pg_url, concurrency=1), registry):
            await wait_for(jobs.queue_depth, lambda d: sum(d.values()) == 0, "an empty queue")
    assert order == ["high0", "high1", "high2", "normal", "low0", "low1", "low2"]


async def test_progress_is_readable_while_running_and_after(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("long"),))
    proceed = asyncio.Event()

    @registry.handler("long")
    async def long(ctx: JobContext, payload: Payload) -> None:
        await ctx.progress(30, total=120, message="walking /media/movies")
        await asyncio.wait_for(proceed.wait(), timeout=30)
        await ctx.progress(120, total=120, message="done")

    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        job_id = await jobs.enqueue("long")
        assert await jobs.progress(job_id) is None
        async with running_worker(config(fresh_pg_url), registry):
            progress = await wait_for(
                lambda: jobs.progress(job_id), lambda p: p is not None, "progress"
            )
            assert progress is not None
            assert (progress.done, progress.total, progress.message) == (
                30,
                120,
                "walking /media/movies",
            )
            assert progress.fraction == 0.25
            running = await jobs.status(job_id)
            assert (
                running is not None and running.state == "running" and running.progress == progress
            )
            proceed.set()
            status = await wait_for(lambda: _state(jobs, job_id), _is("succeeded"), "long job")
    assert status.progress is not None and status.progress.done == 120
    assert status.progress.message == "done"


async def test_stop_releases_a_running_job_back_to_the_queue(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("endless", retry=RetryPolicy(max_attempts=1)),))
    started = asyncio.Event()

    @registry.handler("endless")
    async def endless(ctx: JobContext, payload: Payload) -> None:
        started.set()
        await asyncio.Event().wait()

    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        job_id = await jobs.enqueue("endless")
        async with running_worker(config(fresh_pg_url, shutdown_grace=0.2), registry):
            await asyncio.wait_for(started.wait(), timeout=30)
        status = await jobs.status(job_id)
        assert status is not None and status.state == "queued"  # released, not failed
        async with jobs.pool.connection() as conn:
            cur = await conn.execute("SELECT attempts FROM pgqueuer WHERE id = %s", (job_id,))
            assert (await cur.fetchone()) == (0,)  # a release is not a failed attempt

        finisher = KindRegistry((JobKind("endless"),))

        @finisher.handler("endless")
        async def finish(ctx: JobContext, payload: Payload) -> None:
            return None

        async with running_worker(config(fresh_pg_url), finisher):
            await wait_for(lambda: _state(jobs, job_id), _is("succeeded"), "released job re-run")


async def test_queue_depth_metric_is_sampled_by_the_worker(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("gauge_me"), JobKind("unserved", queue="elsewhere")))

    @registry.handler("gauge_me")
    async def noop(ctx: JobContext, payload: Payload) -> None:
        return None

    registry.handler("unserved")(noop)

    def depth() -> float | None:
        return PROM.get_sample_value(
            "revenge_jobs_queue_depth", {"kind": "unserved", "state": "queued"}
        )

    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        await jobs.enqueue_many("unserved", [{}] * 3)
        cfg = config(fresh_pg_url, queues=frozenset({"default"}))
        async with running_worker(cfg, registry):

            async def probe() -> float | None:
                return depth()

            await wait_for(probe, lambda v: v == 3, "queue depth gauge")
        # the worker served only the default queue, so the other kind is still queued
        assert (await jobs.queue_depth())[("unserved", "queued")] == 3


async def test_a_busy_worker_leaves_unstarted_jobs_to_other_workers(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("long_haul"),))
    started: list[int] = []
    release = asyncio.Event()

    @registry.handler("long_haul")
    async def long_haul(ctx: JobContext, payload: Payload) -> None:
        started.append(ctx.job_id)
        await asyncio.wait_for(release.wait(), timeout=60)

    async def count() -> int:
        return len(started)

    cfg = config(fresh_pg_url, concurrency=2)  # prefetch 0: claim only free slots
    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        ids = await jobs.enqueue_many("long_haul", [{}] * 5)
        async with running_worker(cfg, registry):
            await wait_for(count, lambda n: n == 2, "the first worker's two slots")
            depth = await jobs.queue_depth()
            assert (depth.get(("long_haul", "running")), depth.get(("long_haul", "queued"))) == (
                2,
                3,
            )
            async with running_worker(cfg, registry):
                # a greedy first worker would hold the next jobs; here the second one runs them
                await wait_for(count, lambda n: n == 4, "the second worker's two slots")
                release.set()
                for job_id in ids:
                    await wait_for(
                        lambda j=job_id: _state(jobs, j), _is("succeeded"), f"job {job_id}"
                    )
    assert sorted(started) == sorted(ids)


async def test_the_apps_database_pool_can_enqueue_and_read_status(fresh_pg_url: str) -> None:
    from revenge.infra.db.pool import Database

    registry = KindRegistry((JobKind("via_app_pool"),))

    @registry.handler("via_app_pool")
    async def body(ctx: JobContext, payload: Payload) -> None:
        await ctx.progress(1, 1, payload["note"])

    async with Database(fresh_pg_url) as db:
        jobs = Jobs(db, registry=registry)  # conninfo read off db.url
        await jobs.install()
        job_id = await jobs.enqueue("via_app_pool", {"note": "from a request handler"})
        async with running_worker(config(fresh_pg_url), registry):
            status = await wait_for(lambda: _state(jobs, job_id), _is("succeeded"), "the job")
    assert status.progress is not None and status.progress.message == "from a request handler"


async def test_a_queue_installing_in_the_background_lets_callers_wait(fresh_pg_url: str) -> None:
    """What an application's queue does at start: no tables yet, enqueue waits for them."""
    from revenge.infra.db.pool import Database

    registry = KindRegistry((JobKind("early"),))
    async with Database(fresh_pg_url) as db:
        jobs = Jobs(db, registry=registry)
        jobs.install_soon()
        job_id = await jobs.enqueue("early")  # before the install could have finished
        status = await jobs.status(job_id)
    assert status is not None and status.state == "queued"
