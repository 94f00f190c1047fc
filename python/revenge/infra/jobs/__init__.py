"""Background jobs on PostgreSQL (pgqueuer), with one registry of job kinds.

Enqueue (anywhere with a pool)::

    jobs = Jobs(pool)                       # or: async with Jobs.open(url) as jobs
    job_id = await jobs.enqueue("library_scan", {"library_id": 7}, key="7")
    status = await jobs.status(job_id)      # state, attempts, progress, error

Attach a body (content modules, at import time)::

    @handler("library_scan")
    async def scan(ctx: JobContext, payload: Payload) -> None:
        await ctx.progress(10, total=100, message="scanning")

Run a worker (``revenge worker``, or in-process under ``revenge serve``)::

    await run_worker(WorkerConfig.from_settings(settings), stop_event)
"""

from revenge.infra.jobs.cleanup import CleanupStep, add_cleanup_step
from revenge.infra.jobs.context import JobContext
from revenge.infra.jobs.kinds import (
    DEFAULT_KINDS,
    REGISTRY,
    Handler,
    JobKind,
    KindRegistry,
    Payload,
    RetryPolicy,
    UnknownJobKind,
    handler,
)
from revenge.infra.jobs.metrics import JobMetrics, get_job_metrics
from revenge.infra.jobs.queue import CleanupReport, JobProgress, Jobs, JobState, JobStatus
from revenge.infra.jobs.schema import install_schema
from revenge.infra.jobs.worker import WorkerConfig, run_worker, run_worker_until_signal

__all__ = [
    "DEFAULT_KINDS",
    "REGISTRY",
    "CleanupReport",
    "CleanupStep",
    "Handler",
    "JobContext",
    "JobKind",
    "JobMetrics",
    "JobProgress",
    "JobState",
    "JobStatus",
    "Jobs",
    "KindRegistry",
    "Payload",
    "RetryPolicy",
    "UnknownJobKind",
    "WorkerConfig",
    "add_cleanup_step",
    "get_job_metrics",
    "handler",
    "install_schema",
    "run_worker",
    "run_worker_until_signal",
]
