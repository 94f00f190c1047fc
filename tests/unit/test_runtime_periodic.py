"""Periodic: steps on time, survives a failing step, stops cleanly."""

from __future__ import annotations

import asyncio

import pytest

from revenge.runtime.periodic import Periodic


async def test_a_failing_step_is_logged_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    third = asyncio.Event()

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first tick breaks")
        if calls == 3:
            third.set()

    job = Periodic("flaky", 0.001, step)
    job.start()
    job.start()  # idempotent: still one task
    await asyncio.wait_for(third.wait(), 5)
    await job.stop()
    assert not job.running
    assert "flaky failed" in caplog.text and "first tick breaks" in caplog.text
    seen = calls
    await asyncio.sleep(0.01)
    assert calls == seen  # stopped means stopped


async def test_run_first_ticks_before_the_first_sleep() -> None:
    ran = asyncio.Event()

    async def step() -> None:
        ran.set()

    job = Periodic("eager", 3600, step, run_first=True)
    job.start()
    await asyncio.wait_for(ran.wait(), 5)
    await job.stop()


def test_interval_must_be_positive() -> None:
    async def step() -> None: ...

    with pytest.raises(ValueError, match="positive"):
        Periodic("bad", 0, step)
