"""The registry of job kinds: one place that says how each kind is queued, retried and locked.

Every caller that enqueues ``library_scan`` gets the same priority, uniqueness and
retry policy, because the options live here and not at the call sites. Content
modules attach a body to a kind with :func:`handler`::

    from revenge.infra import jobs

    @jobs.handler("library_scan")
    async def scan_library(ctx: jobs.JobContext, payload: jobs.Payload) -> None:
        await ctx.progress(0, total=120, message="walking /media/movies")

>>> REGISTRY.kind("cleanup").unique, REGISTRY.kind("library_scan").queue
(True, 'library')
>>> RetryPolicy(max_attempts=4, initial_delay=1.0, multiplier=2.0).delay(attempt=2)
4.0
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from revenge.infra.jobs.context import JobContext

Payload: TypeAlias = dict[str, Any]
Handler: TypeAlias = "Callable[[JobContext, Payload], Awaitable[None]]"

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


class KindRegistry:
    """Job kinds and the bodies attached to them."""

    def __init__(self, kinds: Iterator[JobKind] | tuple[JobKind, ...] = ()) -> None:
        self._kinds: dict[str, JobKind] = {}
        self._handlers: dict[str, Handler] = {}
        for kind in kinds:
            self.define(kind)

    def define(self, kind: JobKind) -> JobKind:
        """Add a kind; defining the same name twice is an error."""
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name!r} is already defined")
        self._kinds[kind.name] = kind
        return kind

    def kind(self, name: str) -> JobKind:
        try:
            return self._kinds[name]
        except KeyError:
            known = ", ".join(sorted(self._kinds))
            raise UnknownJobKind(f"unknown job kind {name!r}; known kinds: {known}") from None

    def kinds(self) -> Mapping[str, JobKind]:
        return dict(self._kinds)

    def handler(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator: attach the body that runs jobs of kind ``name`` (one body per kind).

        A body receives a :class:`JobContext` and the JSON payload (``{}`` when none).
        Delivery is at least once (a job whose worker died is run again), so bodies
        should be idempotent. They must not block the event loop (use
        ``asyncio.to_thread`` for file walks and hashing): a blocked loop stops the
        heartbeats, and after ``stalled_after`` another worker runs the job too.
        Raising fails the run; the kind's :class:`RetryPolicy` decides what follows.
        """
        self.kind(name)

        def attach(body: Handler) -> Handler:
            if name in self._handlers and self._handlers[name] is not body:
                raise ValueError(f"job kind {name!r} already has a body")
            self._handlers[name] = body
            return body

        return attach

    def body(self, name: str) -> Handler | None:
        return self._handlers.get(name)

    def runnable(self, queues: frozenset[str] | None = None) -> dict[str, tuple[JobKind, Handler]]:
        """Kinds with a body, limited to ``queues`` when given."""
        return {
            name: (kind, self._handlers[name])
            for name, kind in self._kinds.items()
            if name in self._handlers and (queues is None or kind.queue in queues)
        }

    def copy(self) -> KindRegistry:
        """A registry with the same kinds and bodies (tests add their own kinds to it)."""
        clone = KindRegistry(tuple(self._kinds.values()))
        clone._handlers = dict(self._handlers)
        return clone


#: The kinds the design names. Bodies come with the content modules, except cleanup.
DEFAULT_KINDS: tuple[JobKind, ...] = (
    JobKind(
        "library_scan",
        queue="library",
        priority=50,
        unique=True,  # key: the library id; a rescan request while one is queued is absorbed
        retry=RetryPolicy(max_attempts=3, initial_delay=30.0, max_delay=900.0),
        timeout=6 * 3600.0,
    ),
    JobKind(
        "metadata_fetch",
        queue="metadata",
        priority=40,
        unique=True,  # key: the item id
        retry=RetryPolicy(max_attempts=6, initial_delay=10.0, max_delay=3600.0, multiplier=3.0),
        timeout=120.0,
    ),
    JobKind(
        "image_processing",
        queue="media",
        priority=30,
        unique=True,  # key: the image path or hash
        retry=RetryPolicy(max_attempts=3, initial_delay=5.0),
        timeout=300.0,
    ),
    JobKind(
        "search_reindex",
        queue="default",
        priority=20,
        unique=True,  # key: the index name ("" = everything)
        max_running=1,  # a reindex competes with itself for the same rows
        retry=RetryPolicy(max_attempts=4, initial_delay=30.0),
        timeout=3600.0,
    ),
    JobKind(
        "cleanup",
        queue="maintenance",
        priority=0,
        unique=True,
        max_running=1,
        retry=RetryPolicy(max_attempts=3, initial_delay=60.0),
        timeout=1800.0,
        schedule="17 3 * * *",  # overridden by jobs.cleanup_schedule
    ),
    JobKind(
        "analytics",
        queue="maintenance",
        priority=-10,  # batch work: after everything a user is waiting for
        retry=RetryPolicy(max_attempts=3, initial_delay=60.0),
        timeout=1800.0,
    ),
)

#: The process-wide registry that modules attach their bodies to.
REGISTRY = KindRegistry(DEFAULT_KINDS)
handler = REGISTRY.handler
