"""What a worker's stop does to claimed jobs, and how a stale heartbeat reads: pinned down
because one-line mutations of each went unnoticed (scripts/mutate.py J5, J9, J10)."""

from __future__ import annotations

import asyncio

import pytest

from revenge.infra.jobs import (
    JobContext,
    JobKind,
    Jobs,
    KindRegistry,
    Payload,
    RetryPolicy,
    run_worker,
)
from tests.integration.jobs_support import config, running_worker, wait_for

pytestmark = pytest.mark.integration


async def test_a_stale_heartbeat_reads_as_stalled_and_a_fresh_one_as_running(
    fresh_pg_url: str,
) -> None:
    async with Jobs.open(
        fresh_pg_url, registry=KindRegistry((JobKind("k"),)), stalled_after=60
    ) as jobs:
        job_id = await jobs.enqueue("k")
        async with jobs.pool.connection() as conn:  # as a worker that died an hour ago left it
            await conn.execute(
                "UPDATE pgqueuer SET status = 'picked', heartbeat = now() - interval '1 hour' "
                "WHERE id = %s",
                (job_id,),
            )
        status = await jobs.status(job_id)
        assert status is not None and status.state == "stalled"
        assert (await jobs.queue_depth())[("k", "stalled")] == 1
        async with jobs.pool.connection() as conn:
            await conn.execute("UPDATE pgqueuer SET heartbeat = now() WHERE id = %s", (job_id,))
        status = await jobs.status(job_id)
        assert status is not None and status.state == "running"


async def test_a_claimed_job_not_started_when_the_stop_came_goes_back_unrun(
    fresh_pg_url: str,
) -> None:
    registry = KindRegistry((JobKind("step"),))
    started: list[int] = []
    gate = asyncio.Event()

    @registry.handler("step")
    async def step(ctx: JobContext, payload: Payload) -> None:
        started.append(ctx.job_id)
        await gate.wait()

    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        first, second = await jobs.enqueue("step"), await jobs.enqueue("step")
        stop, ready = asyncio.Event(), asyncio.Event()
        cfg = config(fresh_pg_url, concurrency=1, prefetch=1)  # one runs, one waits claimed
        worker = asyncio.create_task(run_worker(cfg, stop, registry=registry, ready=ready))
        try:
            await wait_for(lambda: _value(len(started)), lambda n: n == 1, "the first to start")
            waiting = second if started == [first] else first
            await wait_for(
                lambda: jobs.status(waiting),
                lambda s: s is not None and s.state == "running",
                "the second to be claimed",
            )
            stop.set()
            for _ in range(100):  # loop turns, not wall time: the stop is seen by now
                await asyncio.sleep(0)
            gate.set()  # the running body ends; a slot frees up for the claimed one
            await asyncio.wait_for(worker, timeout=30)
        finally:
            stop.set()
            gate.set()
            if not worker.done():
                worker.cancel()
        assert len(started) == 1  # the claimed job never ran after the stop
        status = await jobs.status(waiting)
        assert status is not None and status.state == "queued"


async def test_a_job_released_at_shutdown_is_not_charged_an_attempt(fresh_pg_url: str) -> None:
    registry = KindRegistry((JobKind("hang", retry=RetryPolicy(max_attempts=1)),))
    attempts: list[int] = []

    @registry.handler("hang")
    async def hang(ctx: JobContext, payload: Payload) -> None:
        attempts.append(ctx.attempt)
        if len(attempts) == 1:
            await asyncio.Event().wait()  # the first run outlives the grace: released

    async with Jobs.open(fresh_pg_url, registry=registry) as jobs:
        job_id = await jobs.enqueue("hang")
        async with running_worker(config(fresh_pg_url, shutdown_grace=0.2), registry):
            await wait_for(lambda: _value(len(attempts)), lambda n: n == 1, "the first run")
        status = await jobs.status(job_id)
        assert status is not None and status.state == "queued"
        async with running_worker(config(fresh_pg_url), registry):
            await wait_for(
                lambda: jobs.status(job_id),
                lambda s: s is not None and s.state == "succeeded",
                "the run after the release",
            )
    assert attempts == [0, 0]  # a release is not a failed attempt (max_attempts=1 allows one)


async def _value(value: int) -> int:
    return value
