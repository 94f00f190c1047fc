"""Degradable: switch to the fallback on a critical error, recover with back-off, report it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from revenge.runtime import Degradable


class Backend:
    def __init__(self, name: str) -> None:
        self.name = name
        self.down = False
        self.calls = 0

    async def search(self, q: str) -> str:
        self.calls += 1
        if self.down:
            raise ConnectionError(f"{self.name} unreachable")
        if q == "bad":
            raise ValueError("bad query")
        return f"{self.name}:{q}"


def critical(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError)


class Recorder:
    def __init__(self) -> None:
        self.switches: list[bool] = []
        self.fallbacks = 0

    def degraded_changed(self, service: str, degraded: bool) -> None:
        self.switches.append(degraded)

    def fallback_used(self, service: str) -> None:
        self.fallbacks += 1


async def wait_for(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not predicate():
            await asyncio.sleep(0.002)


async def test_critical_error_switches_to_fallback_and_probe_recovers() -> None:
    primary, fallback = Backend("typesense"), Backend("postgres")
    probes = 0

    async def probe(backend: Backend) -> None:
        nonlocal probes
        probes += 1
        await backend.search("ping")

    recorder = Recorder()
    d = Degradable(
        "search", primary, fallback, critical, probe=probe,
        backoff_initial=0.005, backoff_max=0.02, observer=recorder,
    )  # fmt: skip
    assert await d.call(lambda b: b.search("a")) == "typesense:a"
    primary.down = True
    assert await d.call(lambda b: b.search("b")) == "postgres:b"
    assert d.degraded and isinstance(d.last_error, ConnectionError)
    with pytest.raises(RuntimeError, match="degraded"):
        await d.health_probe()
    calls_before = primary.calls
    assert await d.call(lambda b: b.search("c")) == "postgres:c"
    assert primary.calls - calls_before <= 1  # only probes touch the primary now
    await wait_for(lambda: probes >= 3)
    assert d.degraded
    primary.down = False
    await wait_for(lambda: not d.degraded)
    assert await d.call(lambda b: b.search("d")) == "typesense:d"
    await d.health_probe()
    assert recorder.switches == [True, False]
    assert recorder.fallbacks == 2
    await d.close()


async def test_probe_back_off_doubles_up_to_the_maximum() -> None:
    primary = Backend("typesense")
    primary.down = True
    delays: list[float] = []

    async def probe(backend: Backend) -> None:
        delays.append(d.retry_delay)
        await backend.search("ping")

    d = Degradable(
        "search", primary, Backend("pg"), critical, probe=probe,
        backoff_initial=0.001, backoff_max=0.004,
    )  # fmt: skip
    await d.call(lambda b: b.search("x"))
    await wait_for(lambda: len(delays) >= 5)
    await d.close()
    assert delays[:5] == [0.001, 0.002, 0.004, 0.004, 0.004]


async def test_non_critical_errors_pass_through_without_degrading() -> None:
    d = Degradable("search", Backend("typesense"), Backend("pg"), critical)
    with pytest.raises(ValueError, match="bad query"):
        await d.call(lambda b: b.search("bad"))
    assert not d.degraded


async def test_half_open_recovery_without_a_probe() -> None:
    primary, fallback = Backend("redis"), Backend("local")
    d = Degradable("cache", primary, fallback, critical, backoff_initial=0.005, backoff_max=1)
    primary.down = True
    assert await d.call(lambda b: b.search("k")) == "local:k"
    await wait_for(lambda: d.current is primary)  # half-open: next call tries the primary
    assert await d.call(lambda b: b.search("k")) == "local:k"  # still down: back to fallback
    assert d.degraded and d.retry_delay == 0.01
    primary.down = False
    await wait_for(lambda: d.current is primary)
    assert await d.call(lambda b: b.search("k")) == "redis:k"
    assert not d.degraded and d.retry_delay == 0.005
    await d.close()
