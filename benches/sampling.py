"""What a bench samples of its own process while it works: resident memory, event-loop lag.

* :func:`rss_mib`: this process's resident set now (``/proc/self/statm``), in MiB;
* :class:`LoopLag`: ``async with LoopLag() as lag:`` asks the running loop for a 10 ms
  sleep over and over and records how late each wakes (a blocked loop shows as lag);
  ``lag.line(label)`` prints p50 / p99 / max.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from types import TracebackType

TICK = 0.01


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576


class LoopLag:
    """Lateness of 10 ms sleeps on the running loop while the block runs (seconds)."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(TICK)
            self.lags.append(time.perf_counter() - started - TICK)

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        self.lags.sort()

    def line(self, label: str) -> str:
        got = self.lags or [0.0]
        return (
            f"event-loop lag during {label}, {len(self.lags)} ticks of {TICK * 1000:.0f} ms:"
            f" p50 {statistics.median(got) * 1000:.2f} ms,"
            f" p99 {got[int(len(got) * 0.99)] * 1000:.2f} ms, max {got[-1] * 1000:.2f} ms"
        )
