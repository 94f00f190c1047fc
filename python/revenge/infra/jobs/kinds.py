"""What a job kind is: how jobs of it are queued, retried, locked and scheduled.

Every caller that enqueues a kind gets the same priority, uniqueness and retry
policy, because the options live in its :class:`JobKind` (declared once, by the
module that owns the kind: ``ctx.job(JobKind(...), body)``), not at the call sites.

>>> RetryPolicy(max_attempts=4, initial_delay=1.0, multiplier=2.0).delay(attempt=2)
4.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, TypeAlias

Payload: TypeAlias = dict[str, Any]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class UnknownJobKind(LookupError):
    """A kind name that the registry does not define."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off: attempt ``n`` (0-based) waits ``initial * multiplier**n``, capped.

    ``max_attempts`` counts runs, so ``max_attempts=1`` never retries.
    """

    max_attempts: int = 5
    initial_delay: float = 2.0
    max_delay: float = 600.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("delays must be >= 0 and the multiplier >= 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before the run after ``attempt`` failed (0-based)."""
        return float(min(self.initial_delay * self.multiplier**attempt, self.max_delay))

    def gives_up_after(self, attempt: int) -> bool:
        """True when the run numbered ``attempt`` (0-based) was the last one allowed."""
        return attempt + 1 >= self.max_attempts


@dataclass(frozen=True)
class JobKind:
    """How one kind of job is queued, locked, retried and bounded.

    - ``queue``: a group of kinds; a worker may serve only some queues.
    - ``priority``: higher runs first.
    - ``unique``: at most one queued-or-running job per (kind, key); enqueueing a
      duplicate returns the id of the job already there.
    - ``max_running``: cluster-wide cap on running jobs of this kind (0 = no cap);
      ``1`` makes the kind a mutex across all workers.
    - ``timeout``: seconds a run may take before it counts as failed (``None``: no limit).
    - ``schedule``: cron expression at which the worker's scheduler enqueues the kind
      (5 fields, or 6 with seconds last); at most one enqueue per tick cluster-wide.
    """

    name: str
    queue: str = "default"
    priority: int = 0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    unique: bool = False
    max_running: int = 0
    timeout: float | None = None
    schedule: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"job kind name {self.name!r}: expected lower_snake_case")
        if self.max_running < 0:
            raise ValueError("max_running must be >= 0")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("timeout must be positive")

    def dedupe_key(self, key: str | None) -> str | None:
        """The queue's uniqueness key for ``key``; ``None`` when this kind is not unique.

        >>> JobKind("library_scan", unique=True).dedupe_key("lib-7")
        'library_scan:lib-7'
        >>> JobKind("analytics").dedupe_key("x") is None
        True
        """
        if not self.unique:
            return None
        return f"{self.name}:{key or ''}"


#: The platform's own kind (its body is :mod:`revenge.infra.jobs.cleanup`); modules declare theirs.
CLEANUP = JobKind(
    "cleanup",
    queue="maintenance",
    priority=0,
    unique=True,
    max_running=1,
    retry=RetryPolicy(max_attempts=3, initial_delay=60.0),
    timeout=1800.0,
    schedule="17 3 * * *",  # overridden by jobs.cleanup_schedule
)
