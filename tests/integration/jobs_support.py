"""Helpers shared by the job-queue tests: a worker running in a task, polling with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from revenge.infra.jobs import KindRegistry, WorkerConfig, run_worker

T = TypeVar("T")

DEADLINE = 30.0  # generous: a loaded 2-core machine, never a speed claim


async def wait_for(probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], what: str) -> T:
    """Poll ``probe`` until ``accept`` holds, or fail after DEADLINE seconds saying what."""
    deadline = time.monotonic() + DEADLINE
    value = await probe()
    while not accept(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        await asyncio.sleep(0.05)
        value = await probe()
    return value


def config(url: str, **overrides: Any) -> WorkerConfig:
    base: dict[str, Any] = {
        "url": url,
        "concurrency": 4,
        "stalled_after": 30.0,
        "poll_interval": 0.5,
        "shutdown_grace": 5.0,
        "metrics_interval": 0.2,
    }
    base.update(overrides)
    return WorkerConfig(**base)


@asynccontextmanager
async def running_worker(
    cfg: WorkerConfig, registry: KindRegistry, **kwargs: Any
) -> AsyncIterator[asyncio.Task[None]]:
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_worker(cfg, stop, registry=registry, ready=ready, **kwargs))
    await asyncio.wait({task, asyncio.create_task(ready.wait())}, return_when="FIRST_COMPLETED")
    if task.done():
        task.result()
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=DEADLINE)
