"""What a job body receives besides its payload: who it is, and where to report progress."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from revenge.infra.jobs.queue import Jobs
    from revenge.infra.jobs.worker import WorkerConfig


@dataclass(frozen=True)
class JobContext:
    """Handed to a job body on each run.

    ``attempt`` is 0 on the first run and grows with each retry. ``jobs`` enqueues
    follow-up work; ``resources`` is the mapping given to the worker (an app's pool,
    HTTP clients...), shared by all jobs of that worker.
    """

    job_id: int
    kind: str
    attempt: int
    jobs: Jobs
    config: WorkerConfig
    resources: Mapping[str, Any] = field(default_factory=dict)

    async def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        """Store how far this job is (readable by id through ``Jobs.progress``).

        Each call is one UPSERT: call it per batch of work, not per item.
        """
        await self.jobs.set_progress(self.job_id, self.kind, done, total, message)
