"""The job kinds of one application, their bodies and the cleanup steps modules added.

Built by the application from its module list (each module's ``ctx.job(...)``),
so ``revenge serve`` and ``revenge worker`` know the same kinds and bodies.

>>> registry = KindRegistry((JobKind("library_scan", queue="library", unique=True),))
>>> registry.kind("library_scan").queue, list(registry.runnable())
('library', [])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from psycopg import AsyncConnection

from revenge.infra.jobs.context import JobBody
from revenge.infra.jobs.kinds import JobKind, UnknownJobKind

CleanupStep = Callable[[AsyncConnection[Any]], Awaitable[int]]
"""``async step(conn) -> int``: deletes what is stale on one connection; returns the rows removed."""


class KindRegistry:
    """Job kinds and the bodies attached to them."""

    def __init__(self, kinds: Iterator[JobKind] | tuple[JobKind, ...] = ()) -> None:
        self._kinds: dict[str, JobKind] = {}
        self._handlers: dict[str, JobBody] = {}
        self._cleanup_steps: dict[str, CleanupStep] = {}
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

    def handler(self, name: str) -> Callable[[JobBody], JobBody]:
        """Decorator: attach the body that runs jobs of kind ``name`` (one body per kind).

        A body receives a :class:`JobContext` and the JSON payload (``{}`` when none).
        Delivery is at least once (a job whose worker died is run again), so bodies
        should be idempotent. They must not block the event loop (use
        ``asyncio.to_thread`` for file walks and hashing): a blocked loop stops the
        heartbeats, and after ``stalled_after`` another worker runs the job too.
        Raising fails the run; the kind's :class:`RetryPolicy` decides what follows.
        """
        self.kind(name)

        def attach(body: JobBody) -> JobBody:
            if name in self._handlers and self._handlers[name] is not body:
                raise ValueError(f"job kind {name!r} already has a body")
            self._handlers[name] = body
            return body

        return attach

    def body(self, name: str) -> JobBody | None:
        return self._handlers.get(name)

    def runnable(self, queues: frozenset[str] | None = None) -> dict[str, tuple[JobKind, JobBody]]:
        """Kinds with a body, limited to ``queues`` when given."""
        return {
            name: (kind, self._handlers[name])
            for name, kind in self._kinds.items()
            if name in self._handlers and (queues is None or kind.queue in queues)
        }

    def add_cleanup_step(self, name: str, step: CleanupStep) -> None:
        """Run ``step`` with every ``cleanup`` job (modules call ``ctx.cleanup_step``)."""
        if name in self._cleanup_steps:
            raise ValueError(f"cleanup step {name!r} is already added")
        self._cleanup_steps[name] = step

    def cleanup_steps(self) -> Mapping[str, CleanupStep]:
        return dict(self._cleanup_steps)

    def copy(self) -> KindRegistry:
        """A registry with the same kinds, bodies and steps (tests add their own kinds to it)."""
        clone = KindRegistry(tuple(self._kinds.values()))
        clone._handlers = dict(self._handlers)
        clone._cleanup_steps = dict(self._cleanup_steps)
        return clone
