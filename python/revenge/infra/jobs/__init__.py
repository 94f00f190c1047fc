"""Background jobs on PostgreSQL (pgqueuer), with one registry of job kinds per application.

Declare a kind and its body (a module's ``install``; the application collects them)::

    async def scan(ctx: JobContext, payload: Payload) -> None:
        await ctx.progress(10, total=100, message="scanning")

    ctx.job(JobKind("library_scan", queue="library", unique=True), scan)

Enqueue (the application's queue is the ``JOBS`` service)::

    job_id = await jobs.enqueue("library_scan", {"library_id": 7}, key="7")
    status = await jobs.status(job_id)      # state, attempts, progress, error

Run a worker (``revenge worker``, or in-process under ``revenge serve``)::

    await run_worker(WorkerConfig.from_settings(settings), stop_event, registry=registry)
"""

from revenge.infra.jobs.cleanup import builtin_registry
from revenge.infra.jobs.config import WorkerConfig
from revenge.infra.jobs.context import JobBody, JobContext, JobQueue
from revenge.infra.jobs.kinds import CLEANUP, JobKind, Payload, RetryPolicy, UnknownJobKind
from revenge.infra.jobs.metrics import JobMetrics, get_job_metrics
from revenge.infra.jobs.queue import CleanupReport, JobProgress, Jobs, JobState, JobStatus
from revenge.infra.jobs.registry import CleanupStep, KindRegistry
from revenge.infra.jobs.schema import install_schema
from revenge.infra.jobs.worker import run_worker, run_worker_until_signal

__all__ = [
    "CLEANUP",
    "CleanupReport",
    "CleanupStep",
    "JobBody",
    "JobContext",
    "JobKind",
    "JobMetrics",
    "JobProgress",
    "JobQueue",
    "JobState",
    "JobStatus",
    "Jobs",
    "KindRegistry",
    "Payload",
    "RetryPolicy",
    "UnknownJobKind",
    "WorkerConfig",
    "builtin_registry",
    "get_job_metrics",
    "install_schema",
    "run_worker",
    "run_worker_until_signal",
]
