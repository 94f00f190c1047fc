"""HTTP face of jobs: ``GET /api/v1/jobs/{job_id}`` (administrators only)."""

from __future__ import annotations

from typing import Any

from revenge.http import Problem, Request, Response, Router, json_response
from revenge.infra.jobs import JobProgress, JobStatus
from revenge.modules.jobs.service import JobsService

_TAGS = ("jobs",)
_MAX_ID = 2**63 - 1  # job ids are bigint; a larger number cannot name a job


def parse_job_id(text: str) -> int:
    """The path's job id, or a 400 problem.

    >>> parse_job_id("42")
    42
    >>> parse_job_id("4x2")
    Traceback (most recent call last):
    ...
    revenge.http.errors.Problem: 400 invalid_job_id: job ids are positive integers
    """
    # isascii: str.isdigit also accepts other scripts' digits and superscripts.
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > _MAX_ID:
        raise Problem(
            400,
            "invalid_job_id",
            "Invalid job id",
            "job ids are positive integers",
            extra={"field": "job_id"},
        )
    return int(text)


def _progress_json(progress: JobProgress | None) -> dict[str, Any] | None:
    if progress is None:
        return None
    return {
        "done": progress.done,
        "total": progress.total,
        "fraction": progress.fraction,
        "message": progress.message,
        "updated_at": progress.updated,
    }


def job_json(status: JobStatus) -> dict[str, Any]:
    return {
        "id": status.job_id,
        "kind": status.kind,
        "state": status.state,
        "attempts": status.attempts,
        "updated_at": status.updated,
        "progress": _progress_json(status.progress),
        "error": status.error,
    }


def add_routes(router: Router, service: JobsService) -> None:
    async def show_job(request: Request) -> Response:
        """One job: state, attempts, progress (done/total/message) and last error. Admins only."""
        if not request.principal_or_raise.is_admin:
            # Jobs have no owner yet, so nobody but an administrator may read one.
            raise Problem(403, "forbidden", "Forbidden", "only administrators may read jobs")
        job_id = parse_job_id(request.path_params["job_id"])
        status = await service.status(job_id)
        if status is None:
            raise Problem(404, "job_not_found", "Job not found", f"no job {job_id}")
        return json_response(job_json(status))

    router.add("GET", "/api/v1/jobs/{job_id}", show_job, tags=_TAGS)
