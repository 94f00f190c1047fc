"""One background task that runs a step every ``interval`` seconds until stopped.

A failing step is logged and the next one runs on time: a background refresher
must never die of one bad tick.

>>> import asyncio
>>> async def demo() -> int:
...     ticks = []
...     async def step() -> None:
...         ticks.append(len(ticks))
...     job = Periodic("demo", 0.01, step, run_first=True)
...     job.start()
...     await asyncio.sleep(0.035)
...     await job.stop()
...     return len(ticks) >= 2 and not job.running
>>> asyncio.run(demo())
True
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("revenge.runtime")


class Periodic:
    """``step`` every ``interval`` seconds; ``run_first`` runs it once at start, before sleeping."""

    def __init__(
        self,
        name: str,
        interval: float,
        step: Callable[[], Awaitable[object]],
        *,
        run_first: bool = False,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"{name}: interval must be positive, got {interval}")
        self.name = name
        self.interval = interval
        self._step = step
        self._run_first = run_first
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start on the running loop (idempotent)."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        if not self._run_first:
            await asyncio.sleep(self.interval)
        while True:
            try:
                await self._step()
            except Exception:
                log.exception("%s failed; next try in %gs", self.name, self.interval)
            await asyncio.sleep(self.interval)
