"""Reading jobs for the API; the queue (``revenge.infra.jobs.Jobs``) is the repository."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from revenge.infra.jobs import JobStatus


class JobQueue(Protocol):
    """What the API needs of :class:`revenge.infra.jobs.Jobs`."""

    async def status(self, job_id: int) -> JobStatus | None: ...


JobQueueProvider = Callable[[], JobQueue]
"""Returns the running queue, or raises ``ServiceUnavailable`` (503) before start-up."""


class JobsService:
    def __init__(self, jobs: JobQueueProvider) -> None:
        self._jobs = jobs

    async def status(self, job_id: int) -> JobStatus | None:
        """The job's state, attempts, progress and last error; ``None`` when unknown or purged."""
        return await self._jobs().status(job_id)
