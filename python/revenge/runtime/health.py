"""Health and readiness: bounded concurrent checks, a cached report, HTTP-shaped answers.

Checks run together, each bounded by its own timeout; a background task
refreshes the report every ``interval`` so a probe only reads it. Overall
status: ``unhealthy`` if a critical check fails, ``degraded`` if a warm or cold
one fails, else ``healthy``. A cold service that is not built reports
``initialized: false`` and is never built by a probe.

The answers are ``(http_status, body)`` pairs so any HTTP layer can mount them
(``/health/live``, ``/health/ready``, ``/health``) without this package knowing
about routes.

>>> import asyncio
>>> async def ok() -> None: ...
>>> checker = HealthChecker([Check("config", Category.CRITICAL, ok, timeout=1.0)])
>>> report = asyncio.run(checker.refresh())
>>> report.status, report.services["config"].healthy
('healthy', True)
>>> checker.ready()[0]
200
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from revenge.runtime.periodic import Periodic

log = logging.getLogger("revenge.runtime.health")

OverallStatus = Literal["healthy", "degraded", "unhealthy"]


class Category(StrEnum):
    """How much a failing check matters: critical makes the process unhealthy."""

    CRITICAL = "critical"
    WARM = "warm"
    COLD = "cold"


@dataclass(frozen=True, slots=True)
class Check:
    """One named probe. ``probe`` raises (or times out) when the dependency is unwell.

    ``initialized`` tells whether there is anything to probe: a cold service that
    is offloaded returns ``False`` and its probe is skipped. ``last_error`` reports
    why an offloaded service last failed to start (then it counts as failing).
    """

    name: str
    category: Category
    probe: Callable[[], Awaitable[object]]
    timeout: float = 5.0
    initialized: Callable[[], bool] | None = None
    last_error: Callable[[], BaseException | None] | None = None
    tier: str | None = None
    disabled: str | None = None
    """Why an optional service is off (not configured): reported as such, never probed."""
    state: Callable[[], str] | None = None
    """A cold service's word for where it is (``cold``, ``ready``, ``offloaded``,
    ``disabled``...); a failing probe makes it ``degraded`` whatever it says."""


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """The design's per-service ``Status`` (plus its category and, for services, tier)."""

    healthy: bool
    initialized: bool
    latency_ms: float
    category: Category
    error: str | None = None
    tier: str | None = None
    disabled: str | None = None
    state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "healthy": self.healthy,
            "initialized": self.initialized,
            "latency_ms": round(self.latency_ms, 3),
            "category": self.category.value,
        }
        if self.tier is not None:
            body["tier"] = self.tier
        if self.state is not None:
            body["state"] = self.state
        if self.error is not None:
            body["error"] = self.error
        if self.disabled is not None:
            body["disabled"] = self.disabled
        return body


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The design's ``HealthStatus``: overall status plus one status per service."""

    status: OverallStatus
    services: Mapping[str, ServiceStatus] = field(default_factory=dict)
    checked_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checked_at": self.checked_at,
            "services": {name: s.to_dict() for name, s in self.services.items()},
        }


def overall_status(services: Iterable[ServiceStatus]) -> OverallStatus:
    """Aggregate: any critical failure -> unhealthy; any other failure -> degraded.

    >>> up = ServiceStatus(True, True, 0.1, Category.CRITICAL)
    >>> down = ServiceStatus(False, True, 0.1, Category.COLD, "boom")
    >>> overall_status([up]), overall_status([up, down])
    ('healthy', 'degraded')
    """
    status: OverallStatus = "healthy"
    for service in services:
        if service.healthy:
            continue
        if service.category is Category.CRITICAL:
            return "unhealthy"
        status = "degraded"
    return status


async def run_check(check: Check) -> ServiceStatus:
    """Run one check within its timeout; never raises."""
    if check.disabled is not None:  # off by configuration: healthy, nothing to probe
        return ServiceStatus(True, False, 0.0, check.category, tier=check.tier,
                             disabled=check.disabled, state="disabled")  # fmt: skip
    if check.initialized is not None and not check.initialized():
        error = check.last_error() if check.last_error is not None else None
        return ServiceStatus(
            healthy=error is None,
            initialized=False,
            latency_ms=0.0,
            category=check.category,
            error=_describe(error) if error is not None else None,
            tier=check.tier,
            state=_state_of(check, error is None),
        )
    started = time.perf_counter()
    try:
        async with asyncio.timeout(check.timeout):
            await check.probe()
    except TimeoutError:
        error_text: str | None = f"timed out after {check.timeout:g}s"
    except Exception as exc:
        error_text = _describe(exc)
    else:
        error_text = None
    return ServiceStatus(
        healthy=error_text is None,
        initialized=True,
        latency_ms=(time.perf_counter() - started) * 1000.0,
        category=check.category,
        error=error_text,
        tier=check.tier,
        state=_state_of(check, error_text is None),
    )


def _state_of(check: Check, healthy: bool) -> str | None:
    if check.state is None:
        return None
    return check.state() if healthy else "degraded"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class HealthChecker:
    """Holds the checks and the latest report; refreshes it in the background."""

    def __init__(self, checks: Iterable[Check] = (), *, interval: float = 30.0) -> None:
        self._checks: dict[str, Check] = {}
        for check in checks:
            self.add(check)
        self.interval = interval
        self._refresher = Periodic("revenge-health-refresh", interval, self.refresh, run_first=True)
        self._report: HealthReport | None = None
        # Built once per report, so a probe only returns them (treat as read-only).
        self._full: tuple[int, dict[str, Any]] = (503, {"status": "starting", "services": {}})
        self._ready: tuple[int, dict[str, Any]] = (503, {"status": "starting"})
        self._on_report: list[Callable[[HealthReport], None]] = []

    def add(self, check: Check) -> None:
        if check.name in self._checks:
            raise ValueError(f"a health check named {check.name!r} already exists")
        self._checks[check.name] = check

    def on_report(self, callback: Callable[[HealthReport], None]) -> None:
        """Call ``callback`` with every new report (metrics use it)."""
        self._on_report.append(callback)

    @property
    def checks(self) -> Mapping[str, Check]:
        return self._checks

    @property
    def report(self) -> HealthReport | None:
        """The latest report; ``None`` until the first refresh has finished."""
        return self._report

    async def refresh(self) -> HealthReport:
        """Run every check concurrently and store the new report."""
        checks = list(self._checks.values())
        results = await asyncio.gather(*(run_check(check) for check in checks))
        services = {check.name: result for check, result in zip(checks, results, strict=True)}
        return self._store(HealthReport(overall_status(services.values()), services, time.time()))

    def mark_offloaded(self, name: str) -> None:
        """A cold service was just offloaded: say so now, not at the next refresh.

        Offloading is not a fault: the entry becomes healthy and not initialised (a
        probe of an offloaded service has nothing to check and never builds it).
        """
        report = self._report
        old = report.services.get(name) if report is not None else None
        if report is None or old is None:
            return
        services = dict(report.services)
        state = None if old.state is None else "offloaded"
        services[name] = ServiceStatus(True, False, 0.0, old.category, None, old.tier, state=state)
        self._store(HealthReport(overall_status(services.values()), services, time.time()))

    def _store(self, report: HealthReport) -> HealthReport:
        code = 503 if report.status == "unhealthy" else 200
        self._full = (code, report.to_dict())
        self._ready = (code, {"status": report.status})
        self._report = report
        for callback in self._on_report:
            try:
                callback(report)
            except Exception:
                log.exception("health report callback failed")
        return report

    def start(self) -> None:
        """Refresh every ``interval`` seconds in the background (idempotent)."""
        self._refresher.interval = self.interval
        self._refresher.start()

    async def stop(self) -> None:
        await self._refresher.stop()

    # -- HTTP-shaped answers ---------------------------------------------------

    def live(self) -> tuple[int, dict[str, Any]]:
        """``/health/live``: the process is up and its event loop answers."""
        return 200, {"status": "alive"}

    def ready(self) -> tuple[int, dict[str, Any]]:
        """``/health/ready``: 503 while unhealthy or before the first report."""
        return self._ready

    def full(self) -> tuple[int, dict[str, Any]]:
        """``/health``: the whole cached report; 503 when unhealthy or not yet checked.

        The body is shared by every probe until the next refresh: do not mutate it.
        """
        return self._full
