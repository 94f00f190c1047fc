"""``Runtime``: the service registry and the one lifecycle of a process, by tier.

Each service is registered once under a typed :class:`ServiceKey` with a factory
(sync or async), an optional close hook and health check. ``await start()`` is the
one lifecycle of a process: it builds the hot, then warm, then background services
(registration order within a tier: register dependencies first), leaving cold ones
untouched unless ``lazy_init.<name>`` is false, then starts the runtime's own loops
(health refresh, offload sweeper, memory pressure), which are services too.
``await stop()`` closes everything that was started, in reverse, logging a failing
close instead of raising it. Cold services are reached through
:class:`~revenge.runtime.lazy.Lazy` and offloaded by the sweeper after ``idle_ttl``
without use, or at once under critical memory pressure.

>>> import asyncio
>>> CONFIG: ServiceKey[dict[str, int]] = ServiceKey("config", Tier.HOT)
>>> MAILER: ServiceKey[str] = ServiceKey("email", Tier.COLD)
>>> async def demo() -> tuple[str, bool]:
...     rt = Runtime(metrics=None)
...     rt.provide(CONFIG, lambda: {"answer": 42})
...     rt.provide(MAILER, lambda: "smtp client")
...     async with rt:
...         return rt.get(CONFIG)["answer"] == 42 and "ok", rt.lazy(MAILER).initialized
>>> asyncio.run(demo())
('ok', False)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from revenge.runtime.errors import ServiceUnavailable
from revenge.runtime.health import Category, Check, HealthChecker, HealthReport
from revenge.runtime.lazy import Lazy, call_maybe_async
from revenge.runtime.periodic import Periodic
from revenge.runtime.services import (
    START_ORDER,
    ServiceInfo,
    ServiceKey,
    ServiceReport,
    ServiceSpec,
    ServiceState,
    Tier,
)

if TYPE_CHECKING:
    from types import TracebackType

    from revenge._core import PressureLevel
    from revenge.config import Settings
    from revenge.runtime.metrics import RuntimeMetrics
    from revenge.runtime.pressure import PressureMonitor

T = TypeVar("T")

log = logging.getLogger("revenge.runtime")

_DEFAULT_METRICS: Any = object()


class _LazyEvents:
    """What a cold service reports: to metrics, and its offloading to health at once."""

    __slots__ = ("health", "metrics")

    def __init__(self, metrics: RuntimeMetrics | None, health: HealthChecker) -> None:
        self.metrics = metrics
        self.health = health

    def lazy_initialised(self, service: str, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.lazy_initialised(service, seconds)

    def lazy_init_failed(self, service: str) -> None:
        if self.metrics is not None:
            self.metrics.lazy_init_failed(service)

    def lazy_offloaded(self, service: str, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.lazy_offloaded(service, reason)
        self.health.mark_offloaded(service)


def cold_state(lazy: Lazy[Any]) -> str:
    """Where a cold service is: ``cold`` (never built), ``initialising``, ``ready``,
    ``offloaded`` (built before, dropped when idle) or ``degraded`` (its start failed)."""
    cell = lazy.state
    if cell == "ready":
        return "ready"
    if cell == "initialising":
        return "initialising"
    if cell == "failed":
        return "degraded"
    return "offloaded" if lazy.offload_count else "cold"


class Runtime:
    """One small core: registry, lifecycle, offload sweeper, health, pressure."""

    def __init__(
        self,
        *,
        lazy_init: Mapping[str, bool] | None = None,
        idle_ttl: float = 600.0,
        sweep_interval: float = 30.0,
        health_interval: float = 30.0,
        health_timeout: float = 5.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 30.0,
        metrics: RuntimeMetrics | None = _DEFAULT_METRICS,
        pressure: PressureMonitor | None = None,
    ) -> None:
        if metrics is _DEFAULT_METRICS:
            from revenge.runtime.metrics import get_metrics

            metrics = get_metrics()
        self.metrics: RuntimeMetrics | None = metrics
        self.pressure = pressure
        self.health = HealthChecker(interval=health_interval)
        self.idle_ttl = idle_ttl
        self.sweep_interval = sweep_interval
        self.health_timeout = health_timeout
        self._lazy_init = dict(lazy_init or {})
        self._backoff = (backoff_initial, backoff_max)
        self._specs: dict[str, ServiceSpec] = {}
        self._instances: dict[str, Any] = {}
        self._lazies: dict[str, Lazy[Any]] = {}
        self._start_errors: dict[str, BaseException] = {}
        self._started: list[ServiceSpec] = []
        self._spun_up: dict[str, tuple[float, float]] = {}
        """Per hot/warm/background service: (wall time started, seconds its factory took)."""
        self._reporters: dict[str, Callable[[], Any]] = {}
        self._running = False
        if metrics is not None:
            self.health.on_report(self._report_metrics)
        if pressure is not None:
            pressure.on_level_change(self._on_pressure)
            if metrics is not None:
                metrics.add_sampler(pressure.sample)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        metrics: RuntimeMetrics | None = _DEFAULT_METRICS,
        with_pressure: bool = True,
    ) -> Runtime:
        """A runtime configured by ``lazy_init``, ``offload``, ``health`` and ``memory``."""
        if metrics is _DEFAULT_METRICS:
            from revenge.runtime.metrics import get_metrics

            metrics = get_metrics()
        pressure = None
        if with_pressure:
            from revenge.runtime.pressure import PressureMonitor

            pressure = PressureMonitor.from_settings(settings, metrics=metrics)
        return cls(
            lazy_init=settings.lazy_init.model_dump(),
            idle_ttl=settings.offload.idle_ttl,
            sweep_interval=settings.offload.sweep_interval,
            health_interval=settings.health.interval,
            health_timeout=settings.health.timeout,
            metrics=metrics,
            pressure=pressure,
        )

    # -- registration ------------------------------------------------------------

    @overload
    def register(
        self,
        name: str,
        tier: Tier,
        factory: Callable[[], Awaitable[T]],
        *,
        close: Callable[[T], Any] | None = None,
        health: Callable[[T], Any] | None = None,
        idle_ttl: float | None = None,
        critical: bool | None = None,
        checked: bool = True,
    ) -> ServiceKey[T]: ...

    @overload
    def register(
        self,
        name: str,
        tier: Tier,
        factory: Callable[[], T],
        *,
        close: Callable[[T], Any] | None = None,
        health: Callable[[T], Any] | None = None,
        idle_ttl: float | None = None,
        critical: bool | None = None,
        checked: bool = True,
    ) -> ServiceKey[T]: ...

    def register(
        self,
        name: str,
        tier: Tier,
        factory: Callable[[], Any],
        *,
        close: Callable[[Any], Any] | None = None,
        health: Callable[[Any], Any] | None = None,
        idle_ttl: float | None = None,
        critical: bool | None = None,
        checked: bool = True,
    ) -> ServiceKey[Any]:
        """Register a service once. ``critical`` defaults to true for hot services only.

        ``health(instance)`` (sync or async) raises when the service is unwell.
        ``idle_ttl`` (cold only) overrides ``offload.idle_ttl``. ``checked=False``
        leaves the service out of the health report (the runtime's own loops).
        """
        if name in self._specs:
            raise ValueError(f"service {name!r} is already registered")
        if self._running:
            raise RuntimeError("register services before start()")
        tier = Tier(tier)
        if idle_ttl is not None and tier is not Tier.COLD:
            raise ValueError(f"idle_ttl applies to cold services only ({name!r} is {tier})")
        spec = ServiceSpec(
            name=name,
            tier=tier,
            factory=factory,
            close=close,
            health=health,
            idle_ttl=idle_ttl if idle_ttl is not None else self.idle_ttl,
            critical=(tier is Tier.HOT) if critical is None else critical,
            eager=tier is Tier.COLD and not self._lazy_init.get(name, True),
            checked=checked,
        )
        self._specs[name] = spec
        if tier is Tier.COLD:
            if self.metrics is not None:
                self.metrics.declare_cold(name)
            self._lazies[name] = Lazy(
                name,
                factory,
                close=close,
                idle_ttl=None if spec.eager else spec.idle_ttl,
                backoff_initial=self._backoff[0],
                backoff_max=self._backoff[1],
                observer=_LazyEvents(self.metrics, self.health),
            )
        if checked:
            self.health.add(self._check_for(spec))
        return ServiceKey(name, tier)

    def provide(
        self,
        key: ServiceKey[T],
        factory: Callable[[], Awaitable[T]] | Callable[[], T],
        *,
        close: Callable[[T], Any] | None = None,
        health: Callable[[T], Any] | None = None,
        idle_ttl: float | None = None,
        critical: bool | None = None,
    ) -> ServiceKey[T]:
        """Register the service named by ``key`` (see :meth:`register`)."""
        self.register(
            key.name,
            key.tier,
            factory,
            close=close,
            health=health,
            idle_ttl=idle_ttl,
            critical=critical,
        )
        return key

    def add_check(self, check: Check) -> None:
        """An extra health check that is not a registered service."""
        self.health.add(check)

    # -- access ----------------------------------------------------------------------

    @overload
    def get(self, key: ServiceKey[T]) -> T: ...

    @overload
    def get(self, key: str) -> Any: ...

    def get(self, key: ServiceKey[Any] | str) -> Any:
        """The instance of a hot/warm/background service (by key or name).

        By name, a cold service answers with its ``Lazy``; by key it must be asked
        for with :meth:`lazy`, so the type says whether a call may build it.
        Raises :class:`ServiceUnavailable` (503) before start or after a failed start.
        """
        if isinstance(key, ServiceKey):
            if key.tier is Tier.COLD:
                raise TypeError(f"{key.name!r} is cold: use runtime.lazy(key)")
            name = key.name
        else:
            name = key
        lazy = self._lazies.get(name)
        if lazy is not None:
            return lazy
        try:
            return self._instances[name]
        except KeyError:
            if name not in self._specs:
                raise KeyError(f"no service named {name!r}") from None
            error = self._start_errors.get(name)
            reason = f"failed to start ({type(error).__name__})" if error else "not started"
            raise ServiceUnavailable(name, reason) from error

    def lazy(self, key: ServiceKey[T]) -> Lazy[T]:
        """The :class:`Lazy` of a cold service: ``await runtime.lazy(KEY).get()`` builds it."""
        if key.tier is not Tier.COLD:
            raise TypeError(f"{key.name!r} is {key.tier}: use runtime.get(key)")
        try:
            return cast(Lazy[T], self._lazies[key.name])
        except KeyError:
            raise KeyError(f"no service named {key.name!r}") from None

    def provides(self, key: ServiceKey[Any] | str) -> bool:
        """Whether a service of that key (or name) is registered."""
        return (key.name if isinstance(key, ServiceKey) else key) in self._specs

    def services(self) -> list[ServiceInfo]:
        """Every registered service and its state, in registration order."""
        out = []
        for spec in self._specs.values():
            lazy = self._lazies.get(spec.name)
            if lazy is not None:
                initialized, state = lazy.initialized, lazy.state
            else:
                initialized = spec.name in self._instances
                state = (
                    "ready"
                    if initialized
                    else ("failed" if spec.name in self._start_errors else "empty")
                )
            out.append(ServiceInfo(spec.name, spec.tier, spec.critical, initialized, state))
        return out

    def report(self) -> list[ServiceReport]:
        """Every service as the operator's runtime page shows it, in registration order."""
        health = self.health.report
        statuses = health.services if health is not None else {}
        out = []
        for spec in self._specs.values():
            status = statuses.get(spec.name)
            unwell = status is not None and not status.healthy
            error = status.error if unwell and status is not None else None
            lazy = self._lazies.get(spec.name)
            state: ServiceState
            if lazy is not None:
                state = cast(ServiceState, cold_state(lazy))
                if state == "ready" and unwell:
                    state = "degraded"
                elif lazy.state == "failed":
                    failure = lazy.last_error
                    error = error or (type(failure).__name__ if failure is not None else None)
                idle = lazy.idle_seconds() if lazy.initialized else None
                out.append(
                    ServiceReport(
                        spec.name,
                        spec.tier,
                        state,
                        spec.critical,
                        lazy.last_init_seconds if lazy.init_count else None,
                        lazy.ready_at,
                        time.time() - idle if idle is not None else None,
                        lazy.idle_ttl,
                        lazy.offload_count,
                        lazy.init_count,
                        lazy.in_use,
                        error,
                    )
                )
                continue
            started = self._spun_up.get(spec.name)
            if spec.name in self._start_errors:
                state = "degraded"
                error = type(self._start_errors[spec.name]).__name__
            elif spec.name in self._instances:
                state = "degraded" if unwell else "ready"
            else:
                state = "stopped"
            out.append(
                ServiceReport(
                    spec.name,
                    spec.tier,
                    state,
                    spec.critical,
                    started[1] if started else None,
                    started[0] if started else None,
                    None,
                    None,
                    0,
                    1 if started else 0,
                    0,
                    error,
                )
            )
        return out

    def add_report(self, name: str, source: Callable[[], Any]) -> None:
        """A module's contribution to the operator's runtime view (active playback
        sessions, say): ``source()`` (sync or async) returns JSON-ready data."""
        if name in self._reporters:
            raise ValueError(f"report {name!r} is already registered")
        self._reporters[name] = source

    async def extra_reports(self) -> dict[str, Any]:
        """Each registered report's data; one that fails is left out (and logged)."""
        out: dict[str, Any] = {}
        for name, source in self._reporters.items():
            try:
                out[name] = await call_maybe_async(source)
            except Exception:
                log.exception("runtime report %s failed", name)
        return out

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Build hot/warm/background (and eager cold) services in registration order.

        A failing critical service aborts the start after closing what was
        built; a failing non-critical one is logged and reported unhealthy.
        """
        if self._running:
            raise RuntimeError("runtime already started")
        self._register_loops()
        self._running = True
        self._start_errors.clear()
        try:
            for spec in sorted(self._specs.values(), key=lambda s: START_ORDER[s.tier]):
                if spec.tier is Tier.COLD and not spec.eager:
                    continue
                await self._build(spec)
        except BaseException:
            await self._close_started()
            self._running = False
            raise
        if self.metrics is not None:
            self.metrics.worker_up.set(1)
        log.info(
            "runtime started: %s",
            ", ".join(
                f"{s.name}={s.tier}{'(eager)' if s.eager else ''}"
                for s in self._specs.values()
                if s.checked
            ),
        )

    def _register_loops(self) -> None:
        """The runtime's own loops, as background services started after every other."""
        if "runtime.health" in self._specs:
            return

        async def start_health() -> HealthChecker:
            await self.health.refresh()
            self.health.start()
            return self.health

        loop = Tier.BACKGROUND
        self.register("runtime.health", loop, start_health, close=lambda h: h.stop(), checked=False)
        if self._lazies:

            def start_sweeper() -> Periodic:
                sweeper = Periodic(
                    "revenge-offload-sweeper", self.sweep_interval, self.offload_idle
                )
                sweeper.start()
                return sweeper

            self.register(
                "runtime.offload", loop, start_sweeper, close=lambda p: p.stop(), checked=False
            )
        pressure = self.pressure
        if pressure is not None:

            def start_pressure() -> PressureMonitor:
                pressure.start()
                return pressure

            self.register(
                "runtime.pressure", loop, start_pressure, close=lambda p: p.stop(), checked=False
            )

    async def _build(self, spec: ServiceSpec) -> None:
        try:
            if spec.tier is Tier.COLD:
                await self._lazies[spec.name].get()
                return
            began = time.perf_counter()
            instance = await call_maybe_async(spec.factory)
            self._spun_up[spec.name] = (time.time(), time.perf_counter() - began)
        except Exception as exc:
            if spec.critical:
                raise
            self._start_errors[spec.name] = exc
            log.warning("%s service %s failed to start: %r", spec.tier, spec.name, exc)
            return
        self._instances[spec.name] = instance
        self._started.append(spec)

    async def stop(self) -> None:
        """Close everything that was started, in reverse; a failing close is logged."""
        if not self._running:
            return
        # The loops (started last) stop first, so no sweep or probe runs during the teardown.
        while self._started and self._started[-1].name.startswith("runtime."):
            await self._close_one(self._started.pop())
        # Cold services were built last (on first use), so they go first.
        for lazy in reversed(list(self._lazies.values())):
            try:
                await lazy.offload("shutdown", force=True)
            except Exception:
                log.exception("offloading %s at shutdown failed", lazy.name)
        await self._close_started()
        self._running = False
        if self.metrics is not None:
            from revenge.runtime.metrics import mark_process_dead

            self.metrics.worker_up.set(0)
            mark_process_dead()  # multi-process mode: drop this worker's live gauges

    async def _close_started(self) -> None:
        while self._started:
            await self._close_one(self._started.pop())

    async def _close_one(self, spec: ServiceSpec) -> None:
        instance = self._instances.pop(spec.name, None)
        if spec.close is None or instance is None:
            return
        try:
            await call_maybe_async(spec.close, instance)
        except Exception:
            log.exception("closing %s service %s failed", spec.tier, spec.name)

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- offloading --------------------------------------------------------------------

    async def offload_idle(
        self, reason: str = "idle", *, idle_ttl: float | None = None
    ) -> list[str]:
        """Offload every cold service idle for its ``idle_ttl`` (or ``idle_ttl`` given here)."""
        offloaded = []
        for lazy in list(self._lazies.values()):
            if lazy.idle_ttl is None:  # eager: built at start, never offloaded
                continue
            if lazy.offloadable(idle_ttl) and await lazy.offload(reason):
                offloaded.append(lazy.name)
        return offloaded

    async def _on_pressure(self, old: PressureLevel, new: PressureLevel) -> None:
        if new == "critical":
            names = await self.offload_idle("pressure", idle_ttl=0.0)
            if names:
                log.warning("memory pressure critical: offloaded %s", ", ".join(names))

    # -- health ------------------------------------------------------------------------

    def _check_for(self, spec: ServiceSpec) -> Check:
        category = (
            Category.CRITICAL
            if spec.critical
            else (Category.COLD if spec.tier is Tier.COLD else Category.WARM)
        )
        lazy = self._lazies.get(spec.name)
        if lazy is not None:
            return Check(
                spec.name,
                category,
                self._cold_probe(lazy, spec.health),
                timeout=self.health_timeout,
                initialized=lambda: lazy.peek() is not None,
                last_error=lambda: lazy.last_error if lazy.state == "failed" else None,
                tier=spec.tier.value,
                state=lambda: cold_state(lazy),
            )
        return Check(
            spec.name,
            category,
            self._probe(spec),
            timeout=self.health_timeout,
            initialized=lambda: spec.name in self._instances,
            last_error=lambda: (
                self._start_errors.get(spec.name)
                or (None if self._running else ServiceUnavailable(spec.name, "not started"))
            ),
            tier=spec.tier.value,
        )

    def _probe(self, spec: ServiceSpec) -> Callable[[], Awaitable[object]]:
        async def probe() -> None:
            instance = self._instances.get(spec.name)
            if instance is None:
                raise ServiceUnavailable(spec.name, "not running")
            if spec.health is not None:
                await call_maybe_async(spec.health, instance)

        return probe

    @staticmethod
    def _cold_probe(
        lazy: Lazy[Any], health: Callable[[Any], Any] | None
    ) -> Callable[[], Awaitable[object]]:
        async def probe() -> None:
            async with lazy.peek_leased() as instance:
                # Offloaded meanwhile: nothing to probe, and probes never build.
                if instance is not None and health is not None:
                    await call_maybe_async(health, instance)

        return probe

    def _report_metrics(self, report: HealthReport) -> None:
        if self.metrics is not None:
            levels = {"healthy": 0, "degraded": 1, "unhealthy": 2}
            self.metrics.health_status.set(levels[report.status])

    # HTTP-shaped answers, for the layer that mounts /health/live, /health/ready, /health
    def live(self) -> tuple[int, dict[str, Any]]:
        return self.health.live()

    def ready(self) -> tuple[int, dict[str, Any]]:
        return self.health.ready()

    def health_report(self) -> tuple[int, dict[str, Any]]:
        return self.health.full()
