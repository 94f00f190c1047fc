"""How one job worker runs: ``WorkerConfig`` (the ``jobs`` section, plus per-worker overrides)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from croniter import croniter  # type: ignore[import-untyped]  # no stubs; pgqueuer dependency

from revenge.infra.jobs.kinds import JobKind

if TYPE_CHECKING:
    from revenge.config import Settings


@dataclass(frozen=True)
class WorkerConfig:
    """How one worker runs. :meth:`from_settings` reads the ``jobs`` section.

    - ``queues``: serve only kinds in these queues (``None``: all kinds with a body).
    - ``schedules``: cron expression per kind, overriding the kind's own ``schedule``
      (``""`` switches a kind's schedule off on this worker).
    - ``shutdown_grace``: seconds in-flight jobs get to finish on stop before they are
      released back to the queue.
    - ``prefetch``: jobs claimed beyond ``concurrency``, waiting for a free slot. 0 keeps
      every claimed job running (fair to other workers when jobs are long); more hides
      the claim round trip behind running jobs (short jobs).
    - ``poll_interval``: longest wait between polls when no NOTIFY arrives.
    """

    url: str
    concurrency: int = 10
    stalled_after: float = 300.0
    keep_finished: float = 7 * 86400.0
    schedules: Mapping[str, str] = field(default_factory=dict)
    queues: frozenset[str] | None = None
    shutdown_grace: float = 30.0
    prefetch: int = 0
    poll_interval: float = 5.0
    metrics_interval: float = 15.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.stalled_after <= 0:
            raise ValueError("stalled_after must be positive")
        if self.prefetch < 0:
            raise ValueError("prefetch must be >= 0")
        for kind, expression in self.schedules.items():
            if expression and not croniter.is_valid(expression):
                raise ValueError(
                    f"schedule of job kind {kind!r}: {expression!r} is not a cron expression "
                    "(5 fields, or 6 with seconds last)"
                )

    @property
    def claim_limit(self) -> int:
        """Most jobs this worker holds claimed at once."""
        return self.concurrency + self.prefetch

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WorkerConfig:
        jobs = settings.jobs
        config = cls(
            url=settings.database.url.get_secret_value(),
            concurrency=jobs.concurrency,
            stalled_after=jobs.stalled_after,
            keep_finished=jobs.keep_finished,
            schedules={"cleanup": jobs.cleanup_schedule},
        )
        return replace(config, **overrides)

    def schedule_for(self, kind: JobKind) -> str | None:
        return self.schedules.get(kind.name, kind.schedule) or None
