"""Health: aggregation, per-check timeouts, concurrency, cached background refresh, cold probes."""

from __future__ import annotations

import asyncio

import pytest

from revenge.runtime import Category, Check, HealthChecker, Runtime, Tier


async def ok() -> None:
    return None


async def fail() -> None:
    raise ConnectionError("connection refused")


async def hang() -> None:
    await asyncio.sleep(3600)


@pytest.mark.parametrize(
    ("failing", "status", "ready"),
    [
        (None, "healthy", 200),
        (Category.CRITICAL, "unhealthy", 503),
        (Category.WARM, "degraded", 200),
        (Category.COLD, "degraded", 200),
    ],
)
async def test_aggregation(failing: Category | None, status: str, ready: int) -> None:
    checks = [Check(f"{c}-ok", c, ok, timeout=1) for c in Category]
    if failing is not None:
        checks.append(Check("broken", failing, fail, timeout=1))
    checker = HealthChecker(checks)
    report = await checker.refresh()
    assert report.status == status
    assert checker.ready() == (ready, {"status": status})
    code, body = checker.full()
    assert code == (503 if status == "unhealthy" else 200)
    assert body["status"] == status
    if failing is not None:
        assert body["services"]["broken"]["error"] == "ConnectionError: connection refused"
        assert body["services"]["broken"]["healthy"] is False


async def test_a_hanging_check_is_bounded_by_its_timeout() -> None:
    checker = HealthChecker(
        [Check("db", Category.CRITICAL, hang, timeout=0.02), Check("cfg", Category.CRITICAL, ok)]
    )
    async with asyncio.timeout(5):
        report = await checker.refresh()
    assert report.status == "unhealthy"
    assert report.services["db"].error == "timed out after 0.02s"
    assert report.services["cfg"].healthy


async def test_checks_run_concurrently() -> None:
    # Each probe waits at a barrier for the other: sequential checks would both time out.
    barrier = asyncio.Barrier(2)

    async def meet() -> None:
        await barrier.wait()

    checker = HealthChecker(
        [Check("a", Category.WARM, meet, timeout=2), Check("b", Category.WARM, meet, timeout=2)]
    )
    report = await checker.refresh()
    assert report.status == "healthy"


async def test_probes_read_a_cached_report_refreshed_in_the_background() -> None:
    calls = 0

    async def counting() -> None:
        nonlocal calls
        calls += 1

    checker = HealthChecker([Check("c", Category.WARM, counting)], interval=0.01)
    assert checker.ready() == (503, {"status": "starting"})
    assert checker.full()[0] == 503
    checker.start()
    try:
        async with asyncio.timeout(5):
            while calls < 3:
                await asyncio.sleep(0.005)
        seen = calls
        for _ in range(100):
            checker.full()
            checker.ready()
        assert calls == seen  # reading the report runs nothing
    finally:
        await checker.stop()


async def test_cold_service_is_reported_uninitialised_and_not_spun_up_by_probes() -> None:
    built = 0
    probed: list[str] = []

    def factory() -> str:
        nonlocal built
        built += 1
        return "smtp"

    async def health(instance: str) -> None:
        probed.append(instance)

    rt = Runtime(metrics=None, health_interval=0.01)
    key = rt.register("email", Tier.COLD, factory, health=health)
    rt.register("config", Tier.HOT, dict)
    async with rt:
        for _ in range(3):
            await rt.health.refresh()
        status, body = rt.health_report()
        assert built == 0 and probed == []
        assert status == 200 and body["status"] == "healthy"
        assert body["services"]["email"]["initialized"] is False
        assert body["services"]["email"]["state"] == "cold"
        assert body["services"]["config"] == {
            "healthy": True,
            "initialized": True,
            "latency_ms": body["services"]["config"]["latency_ms"],
            "category": "critical",
            "tier": "hot",
        }
        await rt.lazy(key).get()
        await rt.health.refresh()
        assert rt.health_report()[1]["services"]["email"]["initialized"] is True
        assert rt.health_report()[1]["services"]["email"]["state"] == "ready"
        assert probed == ["smtp"] and built == 1


async def test_cold_service_whose_start_failed_degrades_the_report() -> None:
    def broken() -> str:
        raise FileNotFoundError("ffmpeg")

    rt = Runtime(metrics=None, backoff_initial=60, backoff_max=60)
    key = rt.register("transcoder", Tier.COLD, broken)
    async with rt:
        with pytest.raises(Exception, match="transcoder"):
            await rt.lazy(key).get()
        await rt.health.refresh()
        body = rt.health_report()[1]
        assert body["status"] == "degraded"
        service = body["services"]["transcoder"]
        assert service["initialized"] is False and service["healthy"] is False
        assert service["error"].startswith("FileNotFoundError")


async def test_failing_hot_health_hook_makes_the_runtime_unhealthy() -> None:
    healthy = True

    def check(_: object) -> None:
        if not healthy:
            raise RuntimeError("session cache poisoned")

    rt = Runtime(metrics=None)
    rt.register("sessions", Tier.HOT, dict, health=check)
    async with rt:
        assert rt.ready()[0] == 200
        healthy = False
        await rt.health.refresh()
        assert rt.ready() == (503, {"status": "unhealthy"})
        assert rt.live() == (200, {"status": "alive"})
