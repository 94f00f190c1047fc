"""Jobs API: ``GET /api/v1/jobs/{job_id}``: state, attempts, progress and last error of one job.

Admin-only for now: jobs have no owner yet (a library scan belongs to the
server, not to the user who pressed the button), so only an administrator may
read them; when jobs record who queued them, owners can be let in here.

``MODULE`` installs the route over the platform's queue (the ``JOBS`` service,
looked up per request: it exists once the runtime has started).
"""

from __future__ import annotations

from revenge.contract import JOBS, Module, ModuleContext
from revenge.http import Router
from revenge.modules.jobs.routes import JobOut, JobPath, add_routes
from revenge.modules.jobs.service import JobQueue, JobQueueProvider, JobsService

__all__ = [
    "MODULE",
    "JobOut",
    "JobPath",
    "JobQueue",
    "JobQueueProvider",
    "JobsService",
    "add_jobs_routes",
    "install",
]


def add_jobs_routes(router: Router, jobs: JobQueueProvider) -> JobsService:
    """Add the jobs routes (authenticated, admin-only) to ``router``."""
    service = JobsService(jobs)
    add_routes(router, service)
    return service


def install(ctx: ModuleContext) -> None:
    services = ctx.services
    add_jobs_routes(ctx.router, lambda: services.get(JOBS))


MODULE = Module("jobs", install)
