"""HTTP face of jobs: ``GET /api/v1/jobs/{job_id}`` (administrators only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from revenge.http import Input, Output, Problem, Request, Response, Router, model_response
from revenge.infra.jobs import JobProgress, JobStatus
from revenge.infra.jobs.queue import JobState
from revenge.modules.jobs.service import JobsService

_TAGS = ("jobs",)
_MAX_ID = 2**63 - 1  # job ids are bigint; a larger number cannot name a job


class JobPath(Input):
    job_id: Annotated[int, Field(ge=0, le=_MAX_ID)]


class ProgressOut(Output):
    done: int
    total: int | None
    fraction: float | None
    message: str
    updated_at: datetime


class JobOut(Output):
    id: int
    kind: str
    state: JobState
    attempts: int
    updated_at: datetime
    progress: ProgressOut | None
    error: str | None


def _progress_out(progress: JobProgress | None) -> ProgressOut | None:
    if progress is None:
        return None
    return ProgressOut(
        done=progress.done,
        total=progress.total,
        fraction=progress.fraction,
        message=progress.message,
        updated_at=progress.updated,
    )


def job_out(status: JobStatus) -> JobOut:
    return JobOut(
        id=status.job_id,
        kind=status.kind,
        state=status.state,
        attempts=status.attempts,
        updated_at=status.updated,
        progress=_progress_out(status.progress),
        error=status.error,
    )


def add_routes(router: Router, service: JobsService) -> None:
    async def show_job(request: Request, *, params: JobPath) -> Response:
        """One job: state, attempts, progress (done/total/message) and last error. Admins only."""
        status = await service.status(params.job_id)
        if status is None:
            raise Problem(404, "job_not_found", "Job not found", f"no job {params.job_id}")
        return model_response(job_out(status))

    # Jobs have no owner yet, so nobody but an administrator may read one.
    router.add(
        "GET",
        "/api/v1/jobs/{job_id}",
        show_job,
        tags=_TAGS,
        params=JobPath,
        response=JobOut,
        admin=True,
    )
