"""Jobs API: ``GET /api/v1/jobs/{job_id}``: state, attempts, progress and last error of one job.

Admin-only for now: jobs have no owner yet (a library scan belongs to the
server, not to the user who pressed the button), so only an administrator may
read them; when jobs record who queued them, owners can be let in here.

One entry point wires it::

    install(router, lambda: runtime.get("jobs"))     # the runtime's warm ``Jobs``

The queue is passed as a provider because it is built when the runtime starts
(after the database URL is known), not when routes are registered.
"""

from __future__ import annotations

from revenge.http import Router
from revenge.modules.jobs.routes import add_routes, parse_job_id
from revenge.modules.jobs.service import JobQueue, JobQueueProvider, JobsService

__all__ = ["JobQueue", "JobQueueProvider", "JobsService", "install", "parse_job_id"]


def install(router: Router, jobs: JobQueueProvider) -> JobsService:
    """Add the jobs routes (authenticated, admin-only) to ``router``."""
    service = JobsService(jobs)
    add_routes(router, service)
    return service
