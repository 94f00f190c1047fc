"""Graceful degradation: switch to a fallback on a critical error, switch back on recovery.

``Degradable(name, primary, fallback, is_critical_error)`` runs operations
against the primary. A critical error marks it degraded, answers from the
fallback and starts a recovery task that probes the primary with exponential
back-off; when a probe passes, operations go to the primary again.
Non-critical errors pass through to the caller unchanged.

Without a ``probe`` the recovery is half-open: after the back-off the next
operation tries the primary again, and a new critical error doubles the wait.

>>> import asyncio
>>> async def demo() -> list[str]:
...     d = Degradable("search", "typesense", "postgres", lambda e: isinstance(e, OSError))
...     async def op(backend: str) -> str:
...         if backend == "typesense":
...             raise ConnectionError("down")
...         return backend
...     out = [await d.call(op), str(d.degraded)]
...     await d.close()
...     return out
>>> asyncio.run(demo())
['postgres', 'True']
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

S = TypeVar("S")
R = TypeVar("R")

log = logging.getLogger("revenge.runtime.degrade")


class DegradeObserver(Protocol):
    """What a :class:`Degradable` reports (metrics implement this)."""

    def degraded_changed(self, service: str, degraded: bool) -> None: ...
    def fallback_used(self, service: str) -> None: ...


class Degradable(Generic[S]):
    """A primary service with a fallback; the switch is per process and lock-free."""

    def __init__(
        self,
        name: str,
        primary: S,
        fallback: S,
        is_critical_error: Callable[[BaseException], bool],
        *,
        probe: Callable[[S], Awaitable[object]] | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        observer: DegradeObserver | None = None,
    ) -> None:
        if backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("need 0 < backoff_initial <= backoff_max")
        self.name = name
        self.primary = primary
        self.fallback = fallback
        self._is_critical = is_critical_error
        self._probe = probe
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._delay = backoff_initial
        self._observer = observer
        self._degraded = False
        self._last_error: BaseException | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._half_open = False

    @property
    def degraded(self) -> bool:
        return self._degraded

    @property
    def last_error(self) -> BaseException | None:
        """The critical error that caused the current degradation."""
        return self._last_error if self._degraded else None

    @property
    def current(self) -> S:
        """The service the next operation goes to (the primary again once half-open)."""
        return self.fallback if self._degraded and not self._half_open else self.primary

    @property
    def retry_delay(self) -> float:
        """The current back-off before the next recovery probe, in seconds."""
        return self._delay

    async def call(self, operation: Callable[[S], Awaitable[R]]) -> R:
        """Run ``operation`` on the primary, or on the fallback while degraded."""
        if self._degraded and not self._half_open:
            self._note_fallback()
            return await operation(self.fallback)
        trial = self._half_open
        try:
            result = await operation(self.primary)
        except Exception as exc:
            if not self._is_critical(exc):
                raise
            if trial:
                self._delay = min(self._delay * 2, self._backoff_max)
            self._degrade(exc)
            self._note_fallback()
            return await operation(self.fallback)
        if trial:
            self._recover()
        return result

    async def health_probe(self) -> None:
        """A health check: raises while degraded, so the health report shows it."""
        if self._degraded:
            raise RuntimeError(f"degraded to fallback after {type(self._last_error).__name__}")

    async def close(self) -> None:
        """Stop the recovery task (the services themselves belong to their owners)."""
        task, self._recovery = self._recovery, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- switching ---------------------------------------------------------------

    def _degrade(self, exc: BaseException) -> None:
        self._last_error = exc
        self._half_open = False
        if not self._degraded:
            self._degraded = True
            log.warning("%s degraded to its fallback: %r", self.name, exc)
            if self._observer is not None:
                self._observer.degraded_changed(self.name, True)
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.get_running_loop().create_task(
                self._recover_loop(), name=f"revenge-recover:{self.name}"
            )

    def _recover(self) -> None:
        self._half_open = False
        self._delay = self._backoff_initial
        if self._degraded:
            self._degraded = False
            log.info("%s recovered; back on its primary", self.name)
            if self._observer is not None:
                self._observer.degraded_changed(self.name, False)

    def _note_fallback(self) -> None:
        if self._observer is not None:
            self._observer.fallback_used(self.name)

    async def _recover_loop(self) -> None:
        while self._degraded:
            await asyncio.sleep(self._delay)
            if self._probe is None:
                # Half-open: the next operation is the probe; _degrade restarts us.
                self._half_open = True
                return
            try:
                await self._probe(self.primary)
            except Exception as exc:
                self._last_error = exc
                self._delay = min(self._delay * 2, self._backoff_max)
                log.debug("%s still failing: %r (next probe in %.1fs)", self.name, exc, self._delay)
            else:
                self._recover()
