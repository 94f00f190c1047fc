"""``Lazy[T]``: a cold service built on first use, offloaded again when idle.

Built on :class:`revenge._core.LazyCell`, whose atomic state machine
(``empty -> initialising -> ready | failed``) owns the value, the back-off after
a failure and the last-use clock. This module adds what only Python can do:
asynchronous single flight (one shared task per attempt, so 1,000 concurrent
``await lazy.get()`` run the factory once), shielding that task from callers
that are cancelled, leases for long uses, and the close hook on offload.

>>> import asyncio
>>> lazy = Lazy("answer", lambda: 42)
>>> asyncio.run(lazy.get())
42
>>> lazy.initialized, lazy.init_count
(True, 1)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from revenge._core import LazyCell, LazyInitBackoff
from revenge.runtime.errors import ServiceInitFailed

if TYPE_CHECKING:
    from revenge._core import LazyState

T = TypeVar("T")

log = logging.getLogger("revenge.runtime.lazy")

# While another thread (sync ``get_or_init``) holds the attempt, an asyncio
# caller has no future to await; it polls the cell at this period instead.
_FOREIGN_ATTEMPT_POLL = 0.005


class LazyObserver(Protocol):
    """What a :class:`Lazy` reports (metrics implement this; ``None`` reports nothing)."""

    def lazy_initialised(self, service: str, seconds: float) -> None: ...
    def lazy_init_failed(self, service: str) -> None: ...
    def lazy_offloaded(self, service: str, reason: str) -> None: ...


async def call_maybe_async(fn: Callable[..., object], *args: object) -> object:
    """Call a sync or async callable and return its (awaited) result."""
    result = fn(*args)
    if inspect.isawaitable(result):
        return await result
    return result


class Lazy(Generic[T]):
    """A service built by ``factory`` on first ``await get()``; ``offload()`` drops it again.

    * Single flight: concurrent callers share one initialisation task.
    * A cancelled caller never cancels the shared initialisation (it is shielded).
    * A failed initialisation raises :class:`ServiceInitFailed` (a
      ``ServiceUnavailable`` with ``retry_after``) and is retried after the
      cell's exponential back-off instead of being cached forever.
    * ``get()`` restarts the idle clock; a use longer than the idle time should
      hold a lease (``async with lazy.use() as svc``) so the sweeper leaves it alone.

    The factory may be sync or async; a sync factory runs on the event loop, so
    one that blocks must be wrapped (``asyncio.to_thread``) by its owner. It must
    not return ``None`` (the cell uses ``None`` for "not ready").
    """

    __slots__ = (
        "_cell",
        "_close",
        "_factory",
        "_leases",
        "_observer",
        "_offloads",
        "_pending",
        "_ready_at",
        "_value",
        "idle_ttl",
        "name",
    )

    def __init__(
        self,
        name: str,
        factory: Callable[[], T | Awaitable[T]],
        *,
        close: Callable[[T], object] | None = None,
        idle_ttl: float | None = None,
        backoff_initial: float = 0.1,
        backoff_max: float = 30.0,
        observer: LazyObserver | None = None,
    ) -> None:
        self.name = name
        self.idle_ttl = idle_ttl
        self._factory = factory
        self._close = close
        self._observer = observer
        self._cell: LazyCell[T] = LazyCell(backoff_initial=backoff_initial, backoff_max=backoff_max)
        self._pending: asyncio.Future[T] | None = None
        self._leases = 0
        # A mirror of the ready value, read by health probes and offload: reading
        # the cell would restart its idle clock and keep the service alive forever.
        self._value: T | None = None
        self._offloads = 0
        self._ready_at: float | None = None

    # -- reading ---------------------------------------------------------------

    async def get(self) -> T:
        """The service, building it first if needed (single flight)."""
        value = self._cell.get()
        if value is not None:
            return value
        return await self._get_slow()

    def peek(self) -> T | None:
        """The service if it is built, without building it or touching its idle clock."""
        return self._value

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[T]:
        """Lease the service for a long use: the sweeper does not offload it meanwhile."""
        self._leases += 1
        try:
            yield await self.get()
        finally:
            self._leases -= 1

    @contextlib.asynccontextmanager
    async def peek_leased(self) -> AsyncIterator[T | None]:
        """The built service (or ``None``) under a lease, without touching its idle clock.

        Health probes use it: the service is neither built by the probe nor
        offloaded while the probe runs, and the probe does not keep it alive.
        """
        self._leases += 1
        try:
            yield self._value
        finally:
            self._leases -= 1

    @property
    def state(self) -> LazyState:
        return self._cell.state

    @property
    def initialized(self) -> bool:
        return self._cell.is_ready

    @property
    def in_use(self) -> int:
        """Leases currently held."""
        return self._leases

    @property
    def init_count(self) -> int:
        return self._cell.init_count

    @property
    def failure_count(self) -> int:
        return self._cell.failure_count

    @property
    def last_init_seconds(self) -> float:
        return self._cell.last_init_seconds

    @property
    def last_error(self) -> BaseException | None:
        return self._cell.last_error

    @property
    def offload_count(self) -> int:
        """Times the service was offloaded (idle, pressure, shutdown) since the process began."""
        return self._offloads

    @property
    def ready_at(self) -> float | None:
        """Wall-clock time (epoch seconds) the last successful spin-up finished."""
        return self._ready_at

    def idle_seconds(self) -> float:
        """Seconds since the service was last handed out; 0.0 when not built."""
        return self._cell.idle_seconds()

    # -- initialising ----------------------------------------------------------

    async def _get_slow(self) -> T:
        while True:
            pending = self._pending
            if pending is not None:
                return await asyncio.shield(pending)
            try:
                attempt = self._cell.try_begin()
            except LazyInitBackoff as exc:
                raise self._backoff_error(exc) from exc.__cause__
            if attempt is not None:
                # No await between try_begin and publishing the future: every
                # other coroutine of this loop sees either the claim or the future.
                future = asyncio.get_running_loop().create_task(
                    self._initialise(attempt), name=f"revenge-lazy-init:{self.name}"
                )
                future.add_done_callback(_consume_exception)
                future.add_done_callback(functools.partial(self._attempt_ended, attempt))
                self._pending = future
                return await asyncio.shield(future)
            value = self._cell.get()
            if value is not None:
                return value
            await asyncio.sleep(_FOREIGN_ATTEMPT_POLL)

    async def _initialise(self, attempt: int) -> T:
        started = time.perf_counter()
        try:
            value = await call_maybe_async(self._factory)
            if value is None:
                raise TypeError(f"the factory of {self.name!r} returned None")
        except BaseException as exc:
            self._pending = None
            self._cell.fail(attempt, exc)
            if self._observer is not None:
                self._observer.lazy_init_failed(self.name)
            if not isinstance(exc, Exception):
                raise
            log.warning("cold service %s failed to start: %r", self.name, exc)
            raise ServiceInitFailed(
                self.name, f"failed to start ({type(exc).__name__})", retry_after=1
            ) from exc
        typed: T = value  # type: ignore[assignment]
        self._cell.finish(attempt, typed)
        self._value = typed
        self._ready_at = time.time()
        self._pending = None
        if self._observer is not None:
            self._observer.lazy_initialised(self.name, time.perf_counter() - started)
        return typed

    def _attempt_ended(self, attempt: int, future: asyncio.Future[T]) -> None:
        # An attempt must always end. A task cancelled before its first step
        # never runs `_initialise`, so neither `finish` nor `fail` was called:
        # abandon the attempt (no failure, no back-off) or the cell would stay
        # `initialising` and every later caller would meet the dead task.
        if self._pending is future:
            self._pending = None
        if self._cell.attempt == attempt:
            self._cell.abandon(attempt)

    def _backoff_error(self, exc: LazyInitBackoff) -> ServiceInitFailed:
        retry_after = float(exc.args[1]) if len(exc.args) > 1 else 1.0
        cause = exc.__cause__ or self._cell.last_error
        kind = type(cause).__name__ if cause is not None else "error"
        return ServiceInitFailed(
            self.name,
            f"failed to start ({kind}); retrying after back-off",
            retry_after=max(1, math.ceil(retry_after)),
        )

    # -- offloading ------------------------------------------------------------

    def offloadable(self, idle_ttl: float | None = None) -> bool:
        """Whether the sweeper may offload now: built, no lease, idle for ``idle_ttl``."""
        ttl = self.idle_ttl if idle_ttl is None else idle_ttl
        return (
            self._pending is None
            and self._leases == 0
            and self._value is not None
            and self._cell.is_ready
            and (ttl is not None and self._cell.idle_seconds() >= ttl)
        )

    async def offload(self, reason: str = "manual", *, force: bool = False) -> bool:
        """Drop the service and await its close hook; the next ``get()`` builds it again.

        Without ``force`` a leased service is left alone (returns ``False``). With
        ``force`` (shutdown) an initialisation in flight is cancelled too.
        """
        if self._pending is not None:
            if not force:
                return False
            self._pending.cancel()
            with contextlib.suppress(BaseException):
                await self._pending
        if self._leases and not force:
            return False
        if not self._cell.is_ready:
            return False
        # reset() and the mirror are cleared before the first await, so no caller
        # can be handed the instance that is about to be closed.
        value = self._cell.reset()
        self._value = None
        self._offloads += 1
        if self._observer is not None:
            self._observer.lazy_offloaded(self.name, reason)
        if value is not None and self._close is not None:
            try:
                await call_maybe_async(self._close, value)
            except Exception:
                log.exception("closing cold service %s failed", self.name)
        log.info("offloaded cold service %s (%s)", self.name, reason)
        return True

    def __repr__(self) -> str:
        return f"<Lazy {self.name} {self.state}>"


def _consume_exception(future: asyncio.Future[Any]) -> None:
    # Callers that were all cancelled never read the failure; reading it here
    # keeps asyncio from logging "exception was never retrieved".
    if not future.cancelled():
        future.exception()
