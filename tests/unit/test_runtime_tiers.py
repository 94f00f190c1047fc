"""Runtime: lifecycle order, lazy_init flags, offload after idle and re-spin-up, typed access."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from revenge.config import load_settings
from revenge.runtime import Runtime, ServiceUnavailable, Tier
from revenge.runtime.metrics import get_metrics


class Box:
    def __init__(self, name: str) -> None:
        self.name = name


def recording(name: str, log: list[str]) -> tuple[Callable[[], Box], Callable[[Box], None]]:
    def factory() -> Box:
        log.append(f"build {name}")
        return Box(name)

    def close(box: Box) -> None:
        log.append(f"close {box.name}")

    return factory, close


async def wait_for(predicate: Callable[[], bool], what: str) -> None:
    """Poll until ``predicate`` holds; a generous bound only turns a hang into a failure."""
    async with asyncio.timeout(5):
        while not predicate():
            await asyncio.sleep(0.005)
    assert predicate(), what


async def test_start_builds_by_tier_then_registration_order_and_stop_closes_in_reverse() -> None:
    log: list[str] = []
    rt = Runtime(metrics=None)
    for name, tier in [
        ("config", Tier.HOT),
        ("db", Tier.WARM),
        ("sessions", Tier.HOT),
        ("mailer", Tier.COLD),
        ("jobs", Tier.BACKGROUND),
        ("scanner", Tier.COLD),
    ]:
        factory, close = recording(name, log)
        rt.register(name, tier, factory, close=close)
    await rt.start()
    # Hot before warm before background, whatever the registration order.
    assert log == ["build config", "build sessions", "build db", "build jobs"]
    scanner = rt.get("scanner")
    await scanner.get()
    await rt.stop()
    assert log[4:] == [
        "build scanner",
        "close scanner",  # cold ones first: they were built last, on use
        "close jobs",
        "close db",
        "close sessions",
        "close config",
    ]
    assert not rt.running


async def test_async_factories_and_a_failing_close_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[str] = []

    async def make_pool() -> Box:
        await asyncio.sleep(0)
        return Box("pool")

    async def bad_close(box: Box) -> None:
        raise RuntimeError("socket already gone")

    rt = Runtime(metrics=None)
    rt.register("first", Tier.HOT, lambda: Box("first"), close=lambda b: closed.append(b.name))
    rt.register("pool", Tier.WARM, make_pool, close=bad_close)
    async with rt:
        assert rt.get("pool").name == "pool"
    assert closed == ["first"]
    assert "closing warm service pool failed" in caplog.text


async def test_critical_start_failure_closes_what_was_built_and_raises() -> None:
    log: list[str] = []
    rt = Runtime(metrics=None)
    factory, close = recording("config", log)
    rt.register("config", Tier.HOT, factory, close=close)

    def broken() -> Box:
        raise ConnectionRefusedError("postgres down")

    rt.register("db", Tier.WARM, broken, critical=True)
    with pytest.raises(ConnectionRefusedError):
        await rt.start()
    assert log == ["build config", "close config"]
    assert not rt.running


async def test_non_critical_start_failure_degrades_instead_of_failing() -> None:
    def broken() -> Box:
        raise ConnectionRefusedError("redis down")

    rt = Runtime(metrics=None)
    rt.register("config", Tier.HOT, lambda: Box("config"))
    rt.register("redis", Tier.WARM, broken)
    async with rt:
        with pytest.raises(ServiceUnavailable) as info:
            rt.get("redis")
        assert info.value.code == "redis_unavailable"
        status, body = rt.health_report()
        assert status == 200 and body["status"] == "degraded"
        assert body["services"]["redis"]["healthy"] is False
        assert "ConnectionRefusedError" in body["services"]["redis"]["error"]


async def test_lazy_init_false_builds_a_cold_service_eagerly_and_never_offloads_it() -> None:
    settings = load_settings(env={"REVENGE_LAZY_INIT__EMAIL": "false"})
    rt = Runtime(lazy_init=settings.lazy_init.model_dump(), sweep_interval=0.01, metrics=None)
    built: list[str] = []
    email = rt.register("email", Tier.COLD, lambda: built.append("email") or Box("email"))
    oidc = rt.register("oidc", Tier.COLD, lambda: built.append("oidc") or Box("oidc"))
    async with rt:
        assert built == ["email"]
        assert rt.lazy(email).initialized and not rt.lazy(oidc).initialized
        assert await rt.offload_idle(idle_ttl=0.0) == []
        assert rt.lazy(email).initialized


async def test_idle_cold_service_is_offloaded_then_spun_up_again() -> None:
    metrics = get_metrics()
    builds: list[Box] = []
    closed: list[Box] = []

    def factory() -> Box:
        builds.append(Box(f"transcoder#{len(builds) + 1}"))
        return builds[-1]

    rt = Runtime(sweep_interval=0.01, health_interval=3600, metrics=metrics)
    key = rt.register(
        "t_offload_transcoder", Tier.COLD, factory, close=closed.append, idle_ttl=0.05
    )
    labels = {"service": "t_offload_transcoder", "reason": "idle"}
    before = REGISTRY.get_sample_value("revenge_offload_total", labels) or 0.0
    async with rt:
        lazy = rt.lazy(key)
        first = await lazy.get()
        await wait_for(lambda: not lazy.initialized, "offloaded after idle_ttl")
        assert closed == [first]
        assert REGISTRY.get_sample_value("revenge_offload_total", labels) == before + 1
        await rt.health.refresh()
        service = rt.health_report()[1]["services"]["t_offload_transcoder"]
        assert service == {
            "healthy": True,
            "initialized": False,
            "latency_ms": 0.0,
            "category": "cold",
            "tier": "cold",
            "state": "offloaded",
        }
        second = await lazy.get()
        assert second is not first and len(builds) == 2
        init_total = REGISTRY.get_sample_value(
            "revenge_lazy_init_total",
            {"service": "t_offload_transcoder", "outcome": "success"},
        )
        assert init_total == 2


async def test_sweeper_leaves_a_leased_service_alone() -> None:
    rt = Runtime(sweep_interval=0.005, metrics=None)
    key = rt.register("scanner", Tier.COLD, lambda: Box("scanner"), idle_ttl=0.01)
    async with rt:
        lazy = rt.lazy(key)
        async with lazy.use():
            # Many sweeps pass while the lease is held and the idle time has run out.
            await asyncio.sleep(0.1)
            assert lazy.initialized
        await wait_for(lambda: not lazy.initialized, "offloaded once the lease ended")


async def test_typed_accessors_and_registration_rules() -> None:
    rt = Runtime(metrics=None)
    hot = rt.register("config", Tier.HOT, lambda: {"k": 1})
    cold = rt.register("oidc", Tier.COLD, lambda: Box("oidc"))
    with pytest.raises(ValueError, match="already registered"):
        rt.register("config", Tier.HOT, dict)
    with pytest.raises(ValueError, match="cold services only"):
        rt.register("db", Tier.WARM, dict, idle_ttl=5)
    async with rt:
        assert rt.get(hot) == {"k": 1}
        assert (await rt.lazy(cold).get()).name == "oidc"
        with pytest.raises(TypeError):
            rt.get(cold)
        with pytest.raises(TypeError):
            rt.lazy(hot)
        with pytest.raises(RuntimeError):
            rt.register("late", Tier.HOT, dict)
        with pytest.raises(KeyError):
            rt.get("nope")
        infos = {i.name: (i.tier, i.initialized, i.critical) for i in rt.services()}
        assert infos == {
            "config": (Tier.HOT, True, True),
            "oidc": (Tier.COLD, True, False),
            # The runtime's own loops are background services too, started last.
            "runtime.health": (Tier.BACKGROUND, True, False),
            "runtime.offload": (Tier.BACKGROUND, True, False),
        }


async def test_critical_pressure_offloads_idle_cold_services() -> None:
    rt = Runtime(metrics=None)
    key = rt.register("metadata_providers", Tier.COLD, lambda: Box("tmdb"))
    async with rt:
        lazy = rt.lazy(key)
        await lazy.get()
        await rt._on_pressure("moderate", "critical")
        assert not lazy.initialized


async def test_from_settings_reads_offload_health_and_lazy_init() -> None:
    settings = load_settings(
        env={
            "REVENGE_OFFLOAD__IDLE_TTL": "2s",
            "REVENGE_OFFLOAD__SWEEP_INTERVAL": "250ms",
            "REVENGE_HEALTH__INTERVAL": "7s",
            "REVENGE_LAZY_INIT__OIDC": "false",
        }
    )
    rt = Runtime.from_settings(settings, metrics=None, with_pressure=False)
    assert (rt.idle_ttl, rt.sweep_interval, rt.health.interval) == (2.0, 0.25, 7.0)
    rt.register("oidc", Tier.COLD, lambda: Box("oidc"))
    rt.register("email", Tier.COLD, lambda: Box("email"))
    async with rt:
        states = {i.name: i.initialized for i in rt.services() if i.tier is Tier.COLD}
        assert states == {"oidc": True, "email": False}


async def test_an_offloaded_cold_service_shows_in_health_at_once() -> None:
    rt = Runtime(metrics=None, health_interval=3600)  # no refresh would come in time
    key = rt.register("scanner", Tier.COLD, lambda: Box("scanner"))
    async with rt:
        await rt.lazy(key).get()
        await rt.health.refresh()
        assert rt.health_report()[1]["services"]["scanner"]["initialized"] is True
        assert await rt.lazy(key).offload("manual")
        entry = rt.health_report()[1]["services"]["scanner"]
        assert entry["initialized"] is False and entry["healthy"] is True


def test_labelled_families_start_at_zero_for_every_known_service() -> None:
    from revenge.runtime.metrics import RuntimeMetrics

    metrics = get_metrics()
    rt = Runtime(metrics=metrics)
    rt.register("zero_probe_service", Tier.COLD, lambda: Box("z"))
    metrics.declare_degradable("zero_probe_link")  # what a service with a fallback declares
    sample = REGISTRY.get_sample_value
    for outcome in ("success", "failure"):
        labels = {"service": "zero_probe_service", "outcome": outcome}
        assert sample("revenge_lazy_init_total", labels) == 0.0
    assert sample("revenge_lazy_init_seconds_count", {"service": "zero_probe_service"}) == 0.0
    for reason in ("idle", "pressure", "manual", "shutdown"):
        labels = {"service": "zero_probe_service", "reason": reason}
        assert sample("revenge_offload_total", labels) == 0.0
    assert sample("revenge_service_initialized", {"service": "zero_probe_service"}) == 0.0
    assert sample("revenge_degraded_services", {"service": "zero_probe_link"}) == 0.0
    assert sample("revenge_fallback_total", {"service": "zero_probe_link"}) == 0.0
    assert isinstance(metrics, RuntimeMetrics)
