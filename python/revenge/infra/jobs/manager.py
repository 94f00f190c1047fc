"""pgqueuer's ``QueueManager``, claiming only as many jobs as this worker has room for.

pgqueuer bounds a worker's claimed jobs in SQL (``max_concurrent_tasks``) and demands
that bound be at least twice the batch size, so a worker running 10 jobs at a time
either claims in batches of 5 (one round trip per 5 jobs: about 2.4k no-op jobs/s
here) or holds 10 claimed jobs idle while 10 run, which starves other workers when
jobs are long. This manager asks for ``min(batch, free slots)`` jobs, where the
free slots are counted locally (jobs dispatched and not yet finished), so a worker
never holds more than ``claim_limit`` jobs and still claims a full batch per round
trip when it is idle.

When every slot is taken, the manager waits for one of its own jobs to finish and
claims again at once, instead of waiting for the NOTIFY that the completion log
flush sends (one round trip and a wake-up later). That hook overrides pgqueuer's
private ``_effective_dequeue_timeout``; were it to disappear in a later release,
the worker falls back to pgqueuer's NOTIFY-driven wake-up, slower but correct.

A retry that cannot be queued (PostgreSQL away at that moment) is not a failure:
pgqueuer would record the job as failed for good, whatever its retry policy (a job
lost to an outage). The manager notes such a job and leaves it claimed instead; its
heartbeat stops with its run, so once ``stalled_after`` passes it is claimed and run
again, like the job of a worker that died.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import Any

from pgqueuer import QueueManager
from pgqueuer.core.buffers import JobStatusLogBuffer
from pgqueuer.executors import AbstractEntrypointExecutor
from pgqueuer.models import Context, Job, TracebackRecord
from pgqueuer.ports.repository import EntrypointExecutionParameter

log = logging.getLogger(__name__)


@dataclasses.dataclass
class SlotBoundQueueManager(QueueManager):
    """A ``QueueManager`` that never holds more than ``claim_limit`` claimed jobs."""

    claim_limit: int = 10
    _slot_freed: asyncio.Event = dataclasses.field(
        init=False, default_factory=asyncio.Event, repr=False
    )
    _not_requeued: set[Any] = dataclasses.field(init=False, default_factory=set, repr=False)

    def __post_init__(self) -> None:
        # This manager's own queries object (the worker builds one per manager): note the
        # jobs whose retry could not be written, for log_failure below.
        retry_job = self.queries.retry_job

        async def retry_or_note(
            job: Job, delay: timedelta, traceback_record: TracebackRecord | None
        ) -> None:
            try:
                await retry_job(job, delay, traceback_record)
            except Exception:
                self._not_requeued.add(job.id)
                raise

        self.queries.retry_job = retry_or_note  # type: ignore[method-assign]

    async def log_failure(
        self,
        job: Job,
        executor: AbstractEntrypointExecutor,
        exc: Exception,
        jbuff: JobStatusLogBuffer,
    ) -> None:
        if job.id in self._not_requeued:
            self._not_requeued.discard(job.id)
            log.warning(
                "job %s: its retry could not be queued (%s); it stays claimed and runs again "
                "once stalled",
                job.id,
                type(exc).__name__,
            )
            return
        await super().log_failure(job, executor, exc, jbuff)

    def free_slots(self) -> int:
        # job_context holds every dispatched job until its task is done
        return self.claim_limit - len(self.job_context)

    def forget_job(self, job_id: Any, context: Context, task: asyncio.Task[None]) -> None:
        super().forget_job(job_id, context, task)
        self._slot_freed.set()

    async def _effective_dequeue_timeout(self, dequeue_timeout: timedelta) -> timedelta:
        if self.free_slots() > 0:
            return await super()._effective_dequeue_timeout(dequeue_timeout)
        self._slot_freed.clear()
        if self.free_slots() <= 0:
            stop = asyncio.ensure_future(self.shutdown.wait())
            freed = asyncio.ensure_future(self._slot_freed.wait())
            try:
                await asyncio.wait({stop, freed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                freed.cancel()
        return timedelta(0)

    async def fetch_jobs(
        self,
        batch_size: int,
        global_concurrency_limit: int | None,
        heartbeat_timeout: timedelta,
    ) -> AsyncGenerator[Job, None]:
        entrypoints = {
            name: EntrypointExecutionParameter(
                concurrency_limit=executor.parameters.concurrency_limit
            )
            for name, executor in self.entrypoint_registry.items()
        }
        while not self.shutdown.is_set():
            free = self.free_slots()
            if free <= 0:
                return
            jobs = await self.queries.dequeue(
                batch_size=min(batch_size, free),
                entrypoints=entrypoints,
                queue_manager_id=self.queue_manager_id,
                global_concurrency_limit=None,
                heartbeat_timeout=heartbeat_timeout,
            )
            if not jobs:
                return
            for job in jobs:
                yield job
