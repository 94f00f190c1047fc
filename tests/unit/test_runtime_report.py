"""``Runtime.report()``: what the operator's runtime page shows of each service."""

from __future__ import annotations

import asyncio

from revenge.runtime import Runtime, ServiceKey, ServiceReport, Tier

WARM: ServiceKey[dict[str, int]] = ServiceKey("store", Tier.WARM)
COLD: ServiceKey[str] = ServiceKey("transcoder", Tier.COLD)
BROKEN: ServiceKey[str] = ServiceKey("mailer", Tier.WARM)


def _by_name(runtime: Runtime) -> dict[str, ServiceReport]:
    return {r.name: r for r in runtime.report()}


async def test_a_cold_service_goes_cold_ready_offloaded() -> None:
    runtime = Runtime(metrics=None, sweep_interval=3600)

    async def slow_start() -> str:
        await asyncio.sleep(0.02)
        return "ffmpeg"

    def broken() -> str:
        raise OSError("no SMTP server")

    runtime.provide(WARM, lambda: {"a": 1})
    runtime.provide(COLD, slow_start, idle_ttl=0.05)
    runtime.provide(BROKEN, broken, critical=False)
    before = _by_name(runtime)
    assert before["store"].state == "stopped"
    async with runtime:
        report = _by_name(runtime)
        store, cold, mailer = report["store"], report["transcoder"], report["mailer"]
        assert (store.state, store.tier.value, store.init_count) == ("ready", "warm", 1)
        assert store.spin_up_seconds is not None and store.spun_up_at is not None
        assert (cold.state, cold.spin_up_seconds, cold.last_used_at) == ("cold", None, None)
        assert (mailer.state, mailer.error) == ("degraded", "OSError")

        assert await runtime.lazy(COLD).get() == "ffmpeg"
        ready = _by_name(runtime)["transcoder"]
        assert ready.state == "ready" and ready.init_count == 1
        assert (ready.spin_up_seconds or 0) >= 0.02 and ready.last_used_at is not None
        assert ready.idle_ttl == 0.05

        await asyncio.sleep(0.06)
        assert await runtime.offload_idle() == ["transcoder"]
        gone = _by_name(runtime)["transcoder"]
        assert (gone.state, gone.offload_count, gone.last_used_at) == ("offloaded", 1, None)
        assert gone.spin_up_seconds is not None  # the last spin-up stays on record

        await runtime.lazy(COLD).get()
        back = _by_name(runtime)["transcoder"]
        assert (back.state, back.init_count, back.offload_count) == ("ready", 2, 1)


async def test_module_reports_are_collected_and_a_failing_one_is_left_out() -> None:
    runtime = Runtime(metrics=None)

    async def sessions() -> list[dict[str, object]]:
        return [{"item_id": 1, "method": "direct"}]

    def broken() -> object:
        raise RuntimeError("boom")

    runtime.add_report("playback_sessions", sessions)
    runtime.add_report("broken", broken)
    assert await runtime.extra_reports() == {
        "playback_sessions": [{"item_id": 1, "method": "direct"}]
    }
