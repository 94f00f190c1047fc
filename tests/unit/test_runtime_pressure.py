"""Memory budget and pressure: eviction per level, usage per category, metrics, offload on critical.

The caches are the real Rust ones. The pressure *level* comes from a scripted
sensor, because this machine cannot be pushed into real memory pressure safely
inside a test; the real sensor is exercised once against this machine's
cgroup / /proc files, without assuming a level.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY

from revenge._core import MemoryPressure, SessionCache, TranscodeCache, memory_limit_bytes
from revenge.config import load_settings
from revenge.runtime import Runtime, Tier
from revenge.runtime.metrics import get_metrics
from revenge.runtime.pools import PoolStats
from revenge.runtime.pressure import PressureMonitor, memory_budget

MB = 1 << 20


@dataclass(frozen=True)
class FakeReading:
    level: str
    ratio: float
    limit_bytes: int = 8 << 30
    source: str = "scripted"


class ScriptedSensor:
    def __init__(self, *levels: str) -> None:
        self.levels = list(levels)
        self.reads = 0

    def read(self) -> FakeReading:
        level = self.levels[min(self.reads, len(self.levels) - 1)]
        self.reads += 1
        ratio = {"normal": 0.5, "moderate": 0.85, "critical": 0.97}[level]
        return FakeReading(level, ratio)


def _charged(key: str, charge: int) -> bytes:
    """A segment that ``key``'s entry is charged exactly ``charge`` bytes for."""
    return bytes(charge - len(key) - TranscodeCache.ENTRY_OVERHEAD_BYTES)


def filled_cache(quiet_seconds: float = 30.0) -> TranscodeCache:
    """Ten entries of 1,000 charged bytes under a 10,000-byte budget; one pinned."""
    cache = TranscodeCache(budget_bytes=10_000, quiet_seconds=quiet_seconds, grow_step=1.0)
    assert cache.insert_pinned("pinned", _charged("pinned", 1000)) is not None
    for i in range(9):
        assert cache.insert(f"seg{i}", _charged(f"seg{i}", 1000))
    return cache


def test_budget_table_comes_from_config() -> None:
    settings = load_settings(
        env={"REVENGE_MEMORY__TRANSCODE_CACHE_PERCENT": "10", "REVENGE_MEMORY__MISC_MB": "64"}
    )
    budget = memory_budget(settings.memory, limit_bytes=4 << 30)
    assert memory_budget(settings.memory, 4 << 30, workers=4)["transcode_cache"] == int(
        (4 << 30) * 0.10 / 4
    )
    assert budget == {
        "http_api": 50 * MB,
        "session_cache": 100 * MB,
        "transcode_cache": int((4 << 30) * 0.10),
        "database_pool": 50 * MB,
        "workers": 100 * MB,
        "misc": 64 * MB,
    }


async def test_levels_evict_caches_and_tell_listeners() -> None:
    metrics = get_metrics()
    cache = filled_cache(quiet_seconds=0.0)  # regrows fully at the first quiet reading
    sessions = SessionCache(max_entries=100, max_bytes=1 << 20, ttl=60, idle_timeout=60)
    sessions.insert("tok", user_id=1, role="user", flags=0, expires_at=time.time() + 3600)
    changes: list[tuple[str, str]] = []
    sensor = ScriptedSensor("normal", "moderate", "critical", "normal")
    monitor = PressureMonitor(budget={"transcode_cache": 10_000}, sensor=sensor, metrics=metrics)
    monitor.attach_transcode_cache("t_pressure", cache)
    monitor.attach_session_cache("t_pressure", sessions)
    monitor.on_level_change(lambda old, new: changes.append((old, new)))
    evicted = ("revenge_pressure_evicted_bytes_total", {"cache": "transcode:t_pressure"})
    before = REGISTRY.get_sample_value(*evicted) or 0.0

    await monitor.check()
    assert monitor.level == "normal" and cache.stats()["bytes"] == 10_000 and changes == []

    await monitor.check()
    assert monitor.level == "moderate"
    assert cache.stats()["bytes"] <= 5000 and cache.get("pinned") is not None
    assert len(sessions) == 1  # sessions are only dropped at critical
    assert REGISTRY.get_sample_value("revenge_memory_pressure_ratio") == 0.85
    assert REGISTRY.get_sample_value("revenge_memory_pressure_level") == 1

    await monitor.check()
    assert monitor.level == "critical"
    assert cache.stats()["bytes"] == 1000  # only the pinned segment is left
    assert len(sessions) == 0
    assert REGISTRY.get_sample_value(*evicted) == before + 9000

    await monitor.check()
    assert monitor.level == "normal"
    assert cache.effective_budget_bytes == 10_000
    assert changes == [("normal", "moderate"), ("moderate", "critical"), ("critical", "normal")]


async def test_usage_per_category_and_sampled_metrics() -> None:
    metrics = get_metrics()
    cache = filled_cache()
    sessions = SessionCache(max_entries=100, max_bytes=1 << 20, ttl=60, idle_timeout=60)
    sessions.insert("tok", user_id=1, role="user", flags=0, expires_at=time.time() + 3600)
    waits = 0
    monitor = PressureMonitor(
        budget={"session_cache": 100 * MB, "transcode_cache": 10_000, "database_pool": 50 * MB},
        sensor=ScriptedSensor("normal"),
        metrics=metrics,
    )
    monitor.attach_transcode_cache("t_usage", cache)
    monitor.attach_session_cache("t_usage", sessions)
    monitor.register_pool(
        "t_usage_db",
        lambda: PoolStats(active=3, idle=2, max_size=50, waits=waits),
        export_metrics=True,
    )
    monitor.register_pool("t_usage_other", lambda: PoolStats(active=1, idle=0, max_size=5))

    lines = {line.category: line for line in monitor.usage()}
    assert lines["transcode_cache"].used_bytes == 10_000
    assert lines["session_cache"].used_bytes == sessions.stats()["bytes"] > 0
    assert lines["database_pool"].used_bytes is None
    assert lines["database_pool"].connections == 6
    assert lines["process"].used_bytes is not None and lines["process"].used_bytes > 0
    assert lines["process"].budget_bytes == 100 * MB + 10_000 + 50 * MB

    hits_before = REGISTRY.get_sample_value("revenge_session_cache_hits_total") or 0.0
    waits_labels = {"pool": "t_usage_db"}
    monitor.sample()
    assert sessions.get("tok") is not None and sessions.get("nope") is None
    waits = 4
    monitor.sample()
    pool = {"pool": "t_usage_db"}
    assert REGISTRY.get_sample_value("revenge_pool_active_connections", pool) == 3
    assert REGISTRY.get_sample_value("revenge_pool_idle_connections", pool) == 2
    assert REGISTRY.get_sample_value("revenge_pool_max_connections", pool) == 50
    assert REGISTRY.get_sample_value("revenge_pool_wait_total", waits_labels) == 4
    other = {"pool": "t_usage_other"}
    assert REGISTRY.get_sample_value("revenge_pool_active_connections", other) is None
    assert REGISTRY.get_sample_value("revenge_session_cache_hits_total") == hits_before + 1
    assert (REGISTRY.get_sample_value("revenge_heap_in_use_bytes") or 0) > 0
    assert REGISTRY.get_sample_value("revenge_transcode_cache_bytes") == 10_000


async def test_critical_pressure_offloads_idle_cold_services_through_the_runtime() -> None:
    sensor = ScriptedSensor("normal", "critical")
    monitor = PressureMonitor(budget={}, sensor=sensor, interval=0.005)
    rt = Runtime(metrics=None, pressure=monitor)
    key = rt.register("scanner", Tier.COLD, lambda: {"scanner": True})
    busy = rt.register("transcoder", Tier.COLD, lambda: {"transcoder": True})
    async with rt:
        await rt.lazy(key).get()
        async with rt.lazy(busy).use():
            async with asyncio.timeout(5):
                while rt.lazy(key).initialized:
                    await asyncio.sleep(0.005)
            assert monitor.level == "critical"
            assert rt.lazy(busy).initialized  # in use: never torn down under its user
        assert sensor.reads >= 2


async def test_real_sensor_reading_of_this_machine() -> None:
    sensor = MemoryPressure()
    monitor = PressureMonitor(budget={}, sensor=sensor)
    reading = await monitor.check()
    assert reading.level in ("normal", "moderate", "critical")
    assert reading.limit_bytes > 0 and reading.ratio >= 0.0
    assert monitor.level == reading.level
    assert memory_limit_bytes() > 0


def test_from_settings_uses_the_memory_section() -> None:
    settings = load_settings(
        env={"REVENGE_MEMORY__PRESSURE_INTERVAL": "2s", "REVENGE_SERVER__WORKERS": "2"}
    )
    monitor = PressureMonitor.from_settings(settings, metrics=None)
    assert monitor.interval == 2.0
    assert monitor.transcode_budget_bytes == int(memory_limit_bytes() * 0.25 / 2)


@pytest.mark.parametrize("level", ["normal", "moderate", "critical"])
def test_set_pressure_contract(level: str) -> None:
    cache = filled_cache()
    cache.set_pressure(level)  # type: ignore[arg-type]
    expected = {"normal": 10_000, "moderate": 5000, "critical": 1000}[level]
    assert cache.stats()["bytes"] <= expected


async def test_runtime_from_settings_runs_the_real_pressure_monitor() -> None:
    settings = load_settings(env={"REVENGE_MEMORY__PRESSURE_INTERVAL": "10ms"})
    rt = Runtime.from_settings(settings, metrics=get_metrics())
    assert rt.pressure is not None
    async with rt:
        async with asyncio.timeout(5):
            while rt.pressure.last_reading is None:
                await asyncio.sleep(0.005)
        assert rt.pressure.level == rt.pressure.last_reading.level
        assert (REGISTRY.get_sample_value("revenge_memory_pressure_ratio") or 0) > 0


async def test_each_tick_purges_expired_sessions() -> None:
    sessions = SessionCache(max_entries=100, max_bytes=1 << 20, ttl=60, idle_timeout=60)
    sessions.insert("old", user_id=1, role="user", flags=0, expires_at=time.time() + 3600)
    sessions.advance_clock(120)  # past the cache TTL: dead, but still held until read
    sessions.insert("new", user_id=2, role="user", flags=0, expires_at=time.time() + 3600)
    monitor = PressureMonitor(budget={}, sensor=ScriptedSensor("normal"), metrics=None)
    monitor.attach_session_cache("t_purge", sessions)
    assert len(sessions) == 2
    await monitor.check()
    assert len(sessions) == 1 and sessions.get("new") is not None
