"""A request-rate limit for one process: calls are spaced evenly, never more than ``rate``
in any second.

>>> import asyncio
>>> limiter = RateLimiter(1000.0)
>>> asyncio.run(limiter.acquire())  # the first call never waits
0.0
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["RateLimiter"]


class RateLimiter:
    """Even spacing (``1/rate`` seconds between starts) rather than a bucket with bursts:
    a provider that counts per second never sees more than ``rate`` starts in one."""

    __slots__ = ("_interval", "_next")

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._interval = 1.0 / rate
        self._next = 0.0

    async def acquire(self) -> float:
        """Wait for this call's slot; the seconds waited."""
        now = time.monotonic()
        slot = max(now, self._next)
        # the slot is taken before the await: concurrent callers line up behind it
        self._next = slot + self._interval
        wait = slot - now
        if wait > 0:
            await asyncio.sleep(wait)
        return wait
