"""What a job body receives besides its payload: who it is, the services, where to report progress."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias

from revenge.infra.jobs.kinds import Payload

if TYPE_CHECKING:
    from revenge.infra.jobs.config import WorkerConfig
    from revenge.runtime import Runtime


class JobQueue(Protocol):
    """What a body may do with the queue (``revenge.infra.jobs.Jobs`` implements it)."""

    async def enqueue(
        self,
        kind: str,
        payload: Payload | None = None,
        *,
        key: str | None = None,
        priority: int | None = None,
        delay: float = 0.0,
    ) -> int: ...

    async def set_progress(
        self, job_id: int, kind: str, done: int, total: int | None = None, message: str = ""
    ) -> None: ...


@dataclass(frozen=True)
class JobContext:
    """Handed to a job body on each run.

    ``attempt`` is 0 on the first run and grows with each retry. ``jobs`` enqueues
    follow-up work. ``services`` is the runtime built from the application's module
    list, the same in ``revenge worker`` and in a serving process's in-process worker:
    ``ctx.services.get(DATABASE)``, ``await ctx.services.lazy(TRANSCODER).get()``.
    """

    job_id: int
    kind: str
    attempt: int
    jobs: JobQueue
    config: WorkerConfig
    services: Runtime

    async def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        """Store how far this job is (readable by id through ``Jobs.progress``).

        Each call is one UPSERT: call it per batch of work, not per item.
        """
        await self.jobs.set_progress(self.job_id, self.kind, done, total, message)


JobBody: TypeAlias = Callable[[JobContext, Payload], Awaitable[None]]
"""``async body(ctx, payload)``: runs one job of a kind; raising fails the run (see RetryPolicy)."""
