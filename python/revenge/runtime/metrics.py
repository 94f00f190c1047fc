"""Prometheus metrics of the offloading runtime, correct with several Granian workers.

Every metric of the design ("Metrics to Track") with Prometheus naming, plus
offloads and session-cache hits/misses. Rust-side numbers (cache bytes,
hits) and process numbers (RSS, pool connections) are *sampled*: before each
scrape in the scraping process and every pressure tick in every process, so a
scrape of one worker sees the whole process group.

Multi-process mode. ``prometheus_client`` picks its value store when it is
first imported, from ``PROMETHEUS_MULTIPROC_DIR``; so that variable must be
set before anything imports it. This module imports it lazily and offers:

* :func:`prepare_multiprocess_dir` for the serving process (``revenge serve``)
  before it starts the Granian workers: a fresh directory per serving process,
  stale ones of dead processes removed, the variable exported for the workers.
* :func:`setup_process` for the top of the served module (``revenge.app``): it
  keeps a directory already exported, or, when started by a bare
  ``granian --workers N revenge.app:app``, derives one shared by the siblings
  from the Granian master's pid. Outside Granian it leaves single-process mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger("revenge.runtime.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_BASE = Path(tempfile.gettempdir()) / "revenge-metrics"

LAZY_INIT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PRESSURE_LEVELS = {"normal": 0, "moderate": 1, "critical": 2}
# The classic text format, which every Prometheus 2.x and 3.x server parses.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# -- multi-process setup ----------------------------------------------------------


def _owner_tag(pid: int) -> str | None:
    """``<pid>-<start time>``: unique for a process even after its pid is reused."""
    try:
        return f"{pid}-{int(psutil.Process(pid).create_time())}"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _remove_stale_dirs(base: Path, keep: Path) -> None:
    for entry in base.glob("*-*"):
        if entry == keep or not entry.is_dir():
            continue
        pid_text = entry.name.split("-", 1)[0]
        if pid_text.isdigit() and _owner_tag(int(pid_text)) == entry.name:
            continue  # its serving process is alive
        shutil.rmtree(entry, ignore_errors=True)


def _owned_dir(base: Path, owner_pid: int, *, wipe: bool) -> Path:
    tag = _owner_tag(owner_pid) or str(owner_pid)
    path = base / tag
    path.mkdir(parents=True, exist_ok=True)
    if wipe:
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
    _remove_stale_dirs(base, keep=path)
    return path


def _export(path: Path) -> Path:
    if "prometheus_client" in sys.modules and os.environ.get(MULTIPROC_ENV) != str(path):
        log.warning(
            "prometheus_client was imported before %s was set; this process "
            "keeps single-process metrics",
            MULTIPROC_ENV,
        )
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def prepare_multiprocess_dir(base: Path | None = None) -> Path:
    """Serving process, before workers start: a clean metrics directory, exported.

    The directory is ``<base>/<pid>-<start time>`` of this process (default base
    is ``$TMPDIR/revenge-metrics``); directories of dead serving processes are
    removed. Workers forked or spawned afterwards inherit the variable.
    """
    return _export(_owned_dir(base or DEFAULT_BASE, os.getpid(), wipe=True))


def _parent_is_granian() -> bool:
    try:
        parent = psutil.Process(os.getppid())
        return any("granian" in part for part in parent.cmdline()[:3])
    except (psutil.Error, OSError):
        return False


def setup_process(base: Path | None = None) -> Path | None:
    """Top of the served module: choose the metrics mode before ``prometheus_client`` loads.

    Returns the multi-process directory, or ``None`` for single-process mode.
    """
    existing = os.environ.get(MULTIPROC_ENV)
    if existing:
        path = Path(existing)
        path.mkdir(parents=True, exist_ok=True)
    elif _parent_is_granian():
        # Siblings share the master's directory; none may wipe it (a respawned
        # worker would erase the counters of the living ones).
        path = _export(_owned_dir(base or DEFAULT_BASE, os.getppid(), wipe=False))
    else:
        return None
    _drop_dead_live_gauges(path)
    return path


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live(?:all|sum|max|min|mostrecent)_(\d+)\.db$")


def _drop_dead_live_gauges(path: Path) -> None:
    """A worker that crashed never said goodbye: drop its live gauges (its counters stay)."""
    for entry in path.glob("gauge_live*_*.db"):
        match = _LIVE_GAUGE_FILE.match(entry.name)
        if match and not psutil.pid_exists(int(match[1])):
            entry.unlink(missing_ok=True)


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def mark_process_dead(pid: int | None = None) -> None:
    """Drop a finished worker's live gauges (``livesum``/``livemax``) from the directory."""
    if multiprocess_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(os.getpid() if pid is None else pid)  # type: ignore[no-untyped-call]


# -- the metrics ----------------------------------------------------------------------


class DeltaCounter:
    """Feeds a monotonic external total (Rust stats) into a Prometheus counter.

    A total that goes down (the cache was replaced) starts a new baseline.
    """

    __slots__ = ("_counter", "_last")

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._last: int | None = None

    def update(self, total: int) -> None:
        last, self._last = self._last, total
        delta = total if last is None or total < last else total - last
        if delta > 0:
            self._counter.inc(delta)


#: Outcomes of ``revenge_lazy_init_total`` and reasons of ``revenge_offload_total``.
LAZY_OUTCOMES = ("success", "failure")
OFFLOAD_REASONS = ("idle", "pressure", "manual", "shutdown", "close")


class RuntimeMetrics:
    """The runtime's metric objects; implements the Lazy and Degradable observers."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.lazy_init: Counter = Counter(
            "revenge_lazy_init_total",
            "Initialisations of cold services, by outcome",
            ["service", "outcome"],
        )
        self.lazy_init_seconds: Histogram = Histogram(
            "revenge_lazy_init_seconds",
            "Time to build a cold service on first use",
            ["service"],
            buckets=LAZY_INIT_BUCKETS,
        )
        self.offload: Counter = Counter(
            "revenge_offload_total",
            "Cold services closed and dropped, by reason (idle, pressure, manual, shutdown)",
            ["service", "reason"],
        )
        self.service_initialized: Gauge = Gauge(
            "revenge_service_initialized",
            "1 while a cold service is built (summed over workers)",
            ["service"],
            multiprocess_mode="livesum",
        )
        self.pool_active: Gauge = Gauge(
            "revenge_pool_active_connections",
            "Connections checked out of a pool",
            ["pool"],
            multiprocess_mode="livesum",
        )
        self.pool_idle: Gauge = Gauge(
            "revenge_pool_idle_connections",
            "Idle connections in a pool",
            ["pool"],
            multiprocess_mode="livesum",
        )
        self.pool_max: Gauge = Gauge(
            "revenge_pool_max_connections",
            "Most connections a pool may open",
            ["pool"],
            multiprocess_mode="livesum",
        )
        self.pool_wait: Counter = Counter(
            "revenge_pool_wait_total",
            "Requests that had to wait for a pooled connection",
            ["pool"],
        )
        self.pool_waiting: Gauge = Gauge(
            "revenge_pool_waiting_clients",
            "Clients queued for a pooled connection right now",
            ["pool"],
            multiprocess_mode="livesum",
        )
        self.pool_scale_events: Counter = Counter(
            "revenge_pool_scale_events",
            "Adaptive pool resizes, by direction (up, down)",
            ["pool", "direction"],
        )
        self.heap_in_use: Gauge = Gauge(
            "revenge_heap_in_use_bytes",
            "Resident memory of the worker processes (the Python heap is not measured apart)",
            multiprocess_mode="livesum",
        )
        self.transcode_cache_bytes: Gauge = Gauge(
            "revenge_transcode_cache_bytes",
            "Bytes held by the transcode segment cache",
            multiprocess_mode="livesum",
        )
        self.transcode_cache_budget: Gauge = Gauge(
            "revenge_transcode_cache_budget_bytes",
            "Effective byte budget of the transcode cache after memory pressure",
            multiprocess_mode="livesum",
        )
        self.session_cache_hits: Counter = Counter(
            "revenge_session_cache_hits", "Session lookups answered by the in-process cache"
        )
        self.session_cache_misses: Counter = Counter(
            "revenge_session_cache_misses", "Session lookups the in-process cache could not answer"
        )
        self.session_cache_entries: Gauge = Gauge(
            "revenge_session_cache_entries",
            "Sessions held by the in-process cache",
            multiprocess_mode="livesum",
        )
        self.session_cache_bytes: Gauge = Gauge(
            "revenge_session_cache_bytes",
            "Bytes held by the in-process session cache",
            multiprocess_mode="livesum",
        )
        self.pressure_evicted: Counter = Counter(
            "revenge_pressure_evicted_bytes",
            "Bytes evicted from caches in reaction to memory pressure",
            ["cache"],
        )
        self.degraded_services: Gauge = Gauge(
            "revenge_degraded_services",
            "1 while a service runs on its fallback (max over workers)",
            ["service"],
            multiprocess_mode="livemax",
        )
        self.fallback: Counter = Counter(
            "revenge_fallback_total", "Operations answered by a fallback", ["service"]
        )
        self.pressure_ratio: Gauge = Gauge(
            "revenge_memory_pressure_ratio",
            "Memory in use over the memory limit (cgroup or host), 0..1",
            multiprocess_mode="livemax",
        )
        self.pressure_level: Gauge = Gauge(
            "revenge_memory_pressure_level",
            "Memory pressure level: 0 normal, 1 moderate, 2 critical",
            multiprocess_mode="livemax",
        )
        self.memory_budget: Gauge = Gauge(
            "revenge_memory_budget_bytes",
            "Memory budget per category (configuration)",
            ["category"],
            multiprocess_mode="livemax",
        )
        self.memory_used: Gauge = Gauge(
            "revenge_memory_used_bytes",
            "Measured memory use per budget category",
            ["category"],
            multiprocess_mode="livesum",
        )
        self.worker_up: Gauge = Gauge(
            "revenge_worker_up",
            "1 per live worker process whose runtime is started (one series per pid)",
            multiprocess_mode="liveall",
        )
        self.health_status: Gauge = Gauge(
            "revenge_health_status",
            "Overall health: 0 healthy, 1 degraded, 2 unhealthy (max over workers)",
            multiprocess_mode="livemax",
        )
        self._samplers: list[Callable[[], None]] = []

    # Labelled families start at zero for every known label set, so dashboards and
    # alerts see 0 from the first scrape instead of a missing series.
    def declare_cold(self, service: str) -> None:
        """A cold service exists: its init, offload and initialised series start at zero."""
        for outcome in LAZY_OUTCOMES:
            self.lazy_init.labels(service, outcome)
        self.lazy_init_seconds.labels(service)
        for reason in OFFLOAD_REASONS:
            self.offload.labels(service, reason)
        self.service_initialized.labels(service).set(0)

    def declare_degradable(self, service: str) -> None:
        """A service with a fallback exists: not degraded, no fallback used yet."""
        self.degraded_services.labels(service).set(0)
        self.fallback.labels(service)

    # LazyObserver
    def lazy_initialised(self, service: str, seconds: float) -> None:
        self.lazy_init.labels(service, "success").inc()
        self.lazy_init_seconds.labels(service).observe(seconds)
        self.service_initialized.labels(service).set(1)

    def lazy_init_failed(self, service: str) -> None:
        self.lazy_init.labels(service, "failure").inc()

    def lazy_offloaded(self, service: str, reason: str) -> None:
        self.offload.labels(service, reason).inc()
        self.service_initialized.labels(service).set(0)

    # DegradeObserver
    def degraded_changed(self, service: str, degraded: bool) -> None:
        self.degraded_services.labels(service).set(1 if degraded else 0)

    def fallback_used(self, service: str) -> None:
        self.fallback.labels(service).inc()

    # sampling
    def add_sampler(self, sampler: Callable[[], None]) -> None:
        """Run ``sampler`` before each scrape (it sets gauges from live sources)."""
        self._samplers.append(sampler)

    def remove_sampler(self, sampler: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._samplers.remove(sampler)

    def sample(self) -> None:
        for sampler in list(self._samplers):
            try:
                sampler()
            except Exception:
                log.exception("metrics sampler failed")


_metrics: RuntimeMetrics | None = None


def get_metrics() -> RuntimeMetrics:
    """This process's :class:`RuntimeMetrics` (created on first use)."""
    global _metrics
    if _metrics is None:
        _metrics = RuntimeMetrics()
    return _metrics


def render() -> tuple[bytes, str]:
    """``/metrics``: (body, content type) for the whole process group.

    In multi-process mode this reads every worker's files (small, but file
    I/O): call it through :func:`render_async` on an event loop.
    """
    from prometheus_client import REGISTRY, generate_latest

    if _metrics is not None:
        _metrics.sample()
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY), CONTENT_TYPE
    return _render_files()


async def render_async() -> tuple[bytes, str]:
    """:func:`render` with this process's sampling on the loop and the file reading off it."""
    if _metrics is not None:
        _metrics.sample()
    if multiprocess_dir() is None:
        return render()
    return await asyncio.to_thread(_render_files)


def _render_files() -> tuple[bytes, str]:
    from prometheus_client import (
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=os.environ[MULTIPROC_ENV])  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE
