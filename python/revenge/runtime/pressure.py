"""Memory budget and the reaction to memory pressure.

The budget table is the design's (HTTP/API, session cache, transcode cache as
a share of RAM, database pool, workers, misc), read from ``config.memory``.
:class:`PressureMonitor` reports actual use per category (cache bytes from the
Rust stats, process RSS, pool connections from callbacks the infrastructure
registers) and, every ``memory.pressure_interval``, reads
:class:`revenge._core.MemoryPressure` and passes the level to every transcode
cache (which evicts to half its budget at ``moderate`` and to pinned entries at
``critical``). At ``critical`` it also empties the session caches (they refill
from the database) and tells its listeners (the runtime offloads idle cold
services).

>>> from revenge.config import MemorySettings
>>> budget = memory_budget(MemorySettings(), limit_bytes=8 << 30)
>>> budget["transcode_cache"] == 2 << 30, budget["session_cache"] == 100 << 20
(True, True)
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import psutil

from revenge import _core
from revenge.runtime.metrics import PRESSURE_LEVELS, DeltaCounter
from revenge.runtime.periodic import Periodic
from revenge.runtime.pools import PoolStats

if TYPE_CHECKING:
    from prometheus_client import Counter

    from revenge._core import PressureLevel, SessionCache, TranscodeCache
    from revenge.config import MemorySettings, Settings
    from revenge.runtime.metrics import RuntimeMetrics

log = logging.getLogger("revenge.runtime.pressure")

MB = 1 << 20
LevelListener = Callable[["PressureLevel", "PressureLevel"], "Awaitable[object] | object"]


def memory_budget(memory: MemorySettings, limit_bytes: int, *, workers: int = 1) -> dict[str, int]:
    """One worker's budget table in bytes.

    The transcode cache is a share of ``limit_bytes`` (the cgroup or host
    memory, which all workers share), split between the ``workers`` processes
    so that N workers together stay within the configured percentage.
    """
    return {
        "http_api": memory.http_api_mb * MB,
        "session_cache": memory.session_cache_max_mb * MB,
        "transcode_cache": int(limit_bytes * memory.transcode_cache_percent / 100 / workers),
        "database_pool": memory.database_pool_mb * MB,
        "workers": memory.workers_mb * MB,
        "misc": memory.misc_mb * MB,
    }


class Reading(Protocol):
    """What the monitor uses of a :class:`revenge._core.PressureReading`."""

    @property
    def level(self) -> PressureLevel: ...
    @property
    def ratio(self) -> float: ...
    @property
    def limit_bytes(self) -> int: ...
    @property
    def source(self) -> str: ...


class Sensor(Protocol):
    """A memory-pressure source; :class:`revenge._core.MemoryPressure` is the real one."""

    def read(self) -> Reading: ...


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One row of the budget report; ``used_bytes`` is ``None`` where it cannot be measured."""

    category: str
    budget_bytes: int
    used_bytes: int | None
    connections: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "category": self.category,
            "budget_bytes": self.budget_bytes,
            "used_bytes": self.used_bytes,
            "connections": self.connections,
        }


class PressureMonitor:
    """Reads memory pressure periodically, evicts caches, samples memory metrics."""

    def __init__(
        self,
        *,
        budget: Mapping[str, int],
        sensor: Sensor | None = None,
        interval: float = 5.0,
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        self.budget = dict(budget)
        self.interval = interval
        self._sensor: Sensor = sensor or _core.MemoryPressure()
        self._metrics = metrics
        self._transcode: dict[str, TranscodeCache] = {}
        self._sessions: dict[str, SessionCache] = {}
        self._pools: dict[str, Callable[[], PoolStats]] = {}
        self._exported_pools: set[str] = set()
        self._deltas: dict[str, DeltaCounter] = {}
        self._listeners: list[LevelListener] = []
        self._level: PressureLevel = "normal"
        self._reading: Reading | None = None
        self._process = psutil.Process()
        self._ticker = Periodic("revenge-memory-pressure", interval, self.check, run_first=True)
        if metrics is not None:
            for category, size in self.budget.items():
                metrics.memory_budget.labels(category).set(size)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, metrics: RuntimeMetrics | None = None, root: str | None = None
    ) -> PressureMonitor:
        memory = settings.memory
        root = str(memory.pressure_root) if root is None else root
        sensor = _core.MemoryPressure(
            root=root, moderate=memory.pressure_moderate, critical=memory.pressure_critical
        )
        return cls(
            budget=memory_budget(
                memory, _core.memory_limit_bytes(root), workers=settings.server.workers
            ),
            sensor=sensor,
            interval=memory.pressure_interval,
            metrics=metrics,
        )

    # -- what is watched ---------------------------------------------------------

    def attach_transcode_cache(self, name: str, cache: TranscodeCache) -> None:
        self._transcode[name] = cache

    def attach_session_cache(self, name: str, cache: SessionCache) -> None:
        self._sessions[name] = cache

    def register_pool(
        self, name: str, stats: Callable[[], PoolStats], *, export_metrics: bool = False
    ) -> None:
        """The infrastructure layer reports a pool's connections through ``stats``.

        They count in the budget report; with ``export_metrics`` the monitor also
        sets the ``revenge_pool_*`` metrics (leave it off when the pool's owner
        already exports them, or waits would be counted twice).
        """
        self._pools[name] = stats
        if export_metrics:
            self._exported_pools.add(name)

    def on_level_change(self, listener: LevelListener) -> None:
        """``listener(old, new)`` (sync or async) runs when the pressure level changes."""
        self._listeners.append(listener)

    @property
    def level(self) -> PressureLevel:
        return self._level

    @property
    def transcode_budget_bytes(self) -> int:
        """The byte budget to give this worker's ``TranscodeCache``."""
        return self.budget.get("transcode_cache", 0)

    @property
    def last_reading(self) -> Reading | None:
        return self._reading

    # -- one tick ------------------------------------------------------------------

    async def check(self) -> Reading:
        """Read the pressure, evict accordingly, sample metrics; tell listeners on a change."""
        reading = await asyncio.to_thread(self._sensor.read)  # reads cgroup and /proc files
        self._reading = reading
        old, new = self._level, reading.level
        self._level = new
        for sessions in self._sessions.values():
            # Expired entries are dropped lazily on lookup; a tick returns the memory of
            # sessions nobody asks for again.
            sessions.purge_expired()
        self._evict(new, changed=old != new)
        self.sample()
        if old != new:
            log.warning(
                "memory pressure %s -> %s (%.0f%% of %d MiB, source %s)",
                old,
                new,
                reading.ratio * 100,
                reading.limit_bytes // MB,
                reading.source,
            )
            for listener in list(self._listeners):
                try:
                    result = listener(old, new)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("memory pressure listener failed")
        return reading

    def _evict(self, level: PressureLevel, *, changed: bool) -> None:
        for name, cache in self._transcode.items():
            evicted = cache.set_pressure(level)
            if evicted and self._metrics is not None:
                self._metrics.pressure_evicted.labels(f"transcode:{name}").inc(evicted)
        if level == "critical" and changed:
            for name, sessions in self._sessions.items():
                held = sessions.stats().get("bytes", 0)
                sessions.clear()
                if held and self._metrics is not None:
                    self._metrics.pressure_evicted.labels(f"session:{name}").inc(held)

    def usage(self) -> list[BudgetLine]:
        """Actual use per budget category (``None`` where it is not measurable apart)."""
        transcode = sum(c.stats().get("bytes", 0) for c in self._transcode.values())
        sessions = sum(c.stats().get("bytes", 0) for c in self._sessions.values())
        connections = 0
        for stats in self._pool_stats().values():
            connections += stats.active + stats.idle
        measured: dict[str, tuple[int | None, int | None]] = {
            "session_cache": (sessions, None),
            "transcode_cache": (transcode, None),
            "database_pool": (None, connections),
        }
        lines = [
            BudgetLine(category, size, *measured.get(category, (None, None)))
            for category, size in self.budget.items()
        ]
        lines.append(BudgetLine("process", sum(self.budget.values()), self._rss()))
        return lines

    def sample(self) -> None:
        """Set the memory, cache and pool gauges from their live sources."""
        metrics = self._metrics
        if metrics is None:
            return
        rss = self._rss()
        metrics.heap_in_use.set(rss)
        metrics.memory_used.labels("process").set(rss)
        if self._reading is not None:
            metrics.pressure_ratio.set(self._reading.ratio)
            metrics.pressure_level.set(PRESSURE_LEVELS[self._level])
        t_bytes = t_budget = 0
        for cache in self._transcode.values():
            stats = cache.stats()
            t_bytes += stats.get("bytes", 0)
            t_budget += stats.get("effective_budget_bytes", 0)
        metrics.transcode_cache_bytes.set(t_bytes)
        metrics.transcode_cache_budget.set(t_budget)
        metrics.memory_used.labels("transcode_cache").set(t_bytes)
        s_entries = s_bytes = hits = misses = 0
        for sessions in self._sessions.values():
            stats = sessions.stats()
            s_entries += stats.get("entries", 0)
            s_bytes += stats.get("bytes", 0)
            hits += stats.get("hits", 0)
            misses += stats.get("misses", 0)
        if self._sessions:
            metrics.session_cache_entries.set(s_entries)
            metrics.session_cache_bytes.set(s_bytes)
            metrics.memory_used.labels("session_cache").set(s_bytes)
            self._delta("session_hits", metrics.session_cache_hits).update(hits)
            self._delta("session_misses", metrics.session_cache_misses).update(misses)
        for name, pool in self._pool_stats().items():
            if name not in self._exported_pools:
                continue
            metrics.pool_active.labels(name).set(pool.active)
            metrics.pool_idle.labels(name).set(pool.idle)
            metrics.pool_max.labels(name).set(pool.max_size)
            waits = metrics.pool_wait.labels(name)
            self._delta(f"pool_wait:{name}", waits).update(pool.waits)

    def _delta(self, key: str, counter: Counter) -> DeltaCounter:
        delta = self._deltas.get(key)
        if delta is None:
            delta = self._deltas[key] = DeltaCounter(counter)
        return delta

    def pools(self) -> dict[str, PoolStats]:
        """Each registered pool's numbers now (the operator's runtime view)."""
        return self._pool_stats()

    def caches(self) -> dict[str, dict[str, dict[str, int]]]:
        """The watched caches' own statistics: ``{"session": {name: stats}, "transcode": ...}``."""
        return {
            "session": {name: dict(c.stats()) for name, c in self._sessions.items()},
            "transcode": {name: dict(c.stats()) for name, c in self._transcode.items()},
        }

    def _pool_stats(self) -> dict[str, PoolStats]:
        out: dict[str, PoolStats] = {}
        for name, stats in self._pools.items():
            try:
                out[name] = stats()
            except Exception:
                log.exception("pool stats callback %s failed", name)
        return out

    def _rss(self) -> int:
        try:
            return int(self._process.memory_info().rss)
        except psutil.Error:
            return 0

    # -- background loop ---------------------------------------------------------

    def start(self) -> None:
        self._ticker.interval = self.interval
        self._ticker.start()

    async def stop(self) -> None:
        await self._ticker.stop()
