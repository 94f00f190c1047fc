"""Lazy[T]: async single flight, cancellation, retry after back-off, offload and leases."""

from __future__ import annotations

import asyncio
import gc

import pytest

from revenge.runtime.errors import ServiceInitFailed, ServiceUnavailable
from revenge.runtime.lazy import Lazy


class Service:
    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False


class CountingFactory:
    """An async factory that blocks until released, counting its runs."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.cancelled = False

    async def __call__(self) -> Service:
        self.calls += 1
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return Service(self.calls)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def lazy_initialised(self, service: str, seconds: float) -> None:
        assert seconds >= 0
        self.events.append(("init", service))

    def lazy_init_failed(self, service: str) -> None:
        self.events.append(("fail", service))

    def lazy_offloaded(self, service: str, reason: str) -> None:
        self.events.append(("offload", reason))


async def test_thousand_concurrent_gets_run_the_factory_once() -> None:
    factory = CountingFactory()
    lazy: Lazy[Service] = Lazy("svc", factory)
    waiters = [asyncio.create_task(lazy.get()) for _ in range(1000)]
    await factory.started.wait()
    assert lazy.state == "initialising"
    factory.release.set()
    results = await asyncio.gather(*waiters)
    assert factory.calls == 1
    assert len({id(r) for r in results}) == 1
    assert lazy.init_count == 1 and lazy.initialized
    assert await lazy.get() is results[0]


async def test_cancelled_caller_does_not_cancel_the_shared_initialisation() -> None:
    factory = CountingFactory()
    lazy: Lazy[Service] = Lazy("svc", factory)
    first = asyncio.create_task(lazy.get())
    second = asyncio.create_task(lazy.get())
    await factory.started.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    factory.release.set()
    value = await second
    assert not factory.cancelled
    assert factory.calls == 1 and value.n == 1


async def test_initialisation_finishes_even_when_every_caller_gave_up() -> None:
    factory = CountingFactory()
    lazy: Lazy[Service] = Lazy("svc", factory)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await lazy.get()
    await factory.started.wait()
    factory.release.set()
    value = await lazy.get()
    assert factory.calls == 1 and value.n == 1 and not factory.cancelled


async def test_failure_is_retried_after_backoff_not_cached() -> None:
    calls = 0

    async def flaky() -> Service:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("transcoder binary missing")
        return Service(calls)

    recorder = Recorder()
    lazy: Lazy[Service] = Lazy(
        "transcoder", flaky, backoff_initial=0.05, backoff_max=0.05, observer=recorder
    )
    with pytest.raises(ServiceInitFailed) as first:
        await lazy.get()
    assert isinstance(first.value.__cause__, OSError)
    assert isinstance(first.value, ServiceUnavailable)
    assert "transcoder binary missing" not in str(first.value)  # only the type is shown
    # During the back-off nobody runs the factory again; callers get a retry hint.
    with pytest.raises(ServiceInitFailed) as during:
        await lazy.get()
    assert calls == 1 and during.value.retry_after >= 1
    assert lazy.state == "failed" and isinstance(lazy.last_error, OSError)
    await asyncio.sleep(0.1)
    value = await lazy.get()
    assert calls == 2 and value.n == 2
    assert recorder.events == [("fail", "transcoder"), ("init", "transcoder")]


async def test_factory_returning_none_is_a_failure() -> None:
    lazy: Lazy[object] = Lazy("none", lambda: None)
    with pytest.raises(ServiceInitFailed) as info:
        await lazy.get()
    assert isinstance(info.value.__cause__, TypeError)


async def test_offload_closes_and_next_use_builds_again() -> None:
    closed: list[Service] = []
    built = 0

    def factory() -> Service:  # sync factory and sync close are accepted
        nonlocal built
        built += 1
        return Service(built)

    recorder = Recorder()
    lazy: Lazy[Service] = Lazy("email", factory, close=closed.append, observer=recorder)
    first = await lazy.get()
    assert lazy.peek() is first
    assert await lazy.offload() is True
    assert closed == [first] and not lazy.initialized and lazy.peek() is None
    assert lazy.state == "empty"
    second = await lazy.get()
    assert second is not first and second.n == 2 and lazy.init_count == 2
    assert ("offload", "manual") in recorder.events


async def test_async_close_hook_is_awaited_and_its_failure_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def close(service: Service) -> None:
        raise RuntimeError("close failed")

    lazy: Lazy[Service] = Lazy("svc", lambda: Service(1), close=close)
    await lazy.get()
    assert await lazy.offload() is True
    assert "closing cold service svc failed" in caplog.text
    assert not lazy.initialized


async def test_lease_blocks_offload_until_released() -> None:
    lazy: Lazy[Service] = Lazy("scanner", lambda: Service(1), idle_ttl=0.0)
    async with lazy.use() as service:
        assert service.n == 1 and lazy.in_use == 1
        assert not lazy.offloadable()
        assert await lazy.offload() is False
        assert lazy.initialized
    assert lazy.offloadable()
    assert await lazy.offload() is True


async def test_offload_leaves_a_pending_initialisation_alone_unless_forced() -> None:
    factory = CountingFactory()
    lazy: Lazy[Service] = Lazy("svc", factory)
    waiter = asyncio.create_task(lazy.get())
    await factory.started.wait()
    assert await lazy.offload() is False
    assert await lazy.offload("shutdown", force=True) is False  # nothing was built yet
    assert factory.cancelled
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_idle_clock_runs_from_last_get_and_peek_does_not_reset_it() -> None:
    lazy: Lazy[Service] = Lazy("svc", lambda: Service(1), idle_ttl=0.3)
    await lazy.get()
    await asyncio.sleep(0.35)
    lazy.peek()
    async with lazy.peek_leased():
        pass
    assert lazy.idle_seconds() >= 0.3 and lazy.offloadable()
    await lazy.get()
    # A use is reported as "just now" by the next reading, however late that comes.
    assert lazy.idle_seconds() == 0.0 and not lazy.offloadable()


async def test_a_failed_shared_attempt_leaves_no_unretrieved_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def failing() -> Service:
        await release.wait()
        raise ValueError("bad config")

    lazy: Lazy[Service] = Lazy("svc", failing)
    waiter = asyncio.create_task(lazy.get())
    await asyncio.sleep(0)
    waiter.cancel()
    release.set()
    await asyncio.sleep(0.01)
    gc.collect()
    assert "exception was never retrieved" not in caplog.text
    assert lazy.state == "failed"


async def test_concurrent_callers_share_one_failure() -> None:
    calls = 0
    release = asyncio.Event()

    async def failing() -> Service:
        nonlocal calls
        calls += 1
        await release.wait()
        raise ConnectionRefusedError("smtp down")

    lazy: Lazy[Service] = Lazy("email", failing, backoff_initial=60, backoff_max=60)
    waiters = [asyncio.create_task(lazy.get()) for _ in range(100)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert calls == 1
    assert all(isinstance(r, ServiceInitFailed) for r in results)
    assert all(isinstance(r.__cause__, ConnectionRefusedError) for r in results)
    assert lazy.failure_count == 1


async def test_a_cancel_before_the_initialiser_started_leaves_the_service_usable() -> None:
    calls = 0

    async def factory() -> Service:
        nonlocal calls
        calls += 1
        return Service(calls)

    lazy: Lazy[Service] = Lazy("svc", factory)
    getter = asyncio.create_task(lazy.get())
    await asyncio.sleep(0)  # the getter claims the attempt and schedules the init task
    assert lazy.state == "initialising" and calls == 0
    # Shutdown cancels the init task before its first step: its body never runs.
    assert await lazy.offload("shutdown", force=True) is False
    with pytest.raises(asyncio.CancelledError):
        await getter
    assert lazy.state == "empty"
    service = await asyncio.wait_for(lazy.get(), 10)
    assert (service.n, calls, lazy.state) == (1, 1, "ready")
    assert await lazy.offload() is True
