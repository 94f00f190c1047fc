"""The adaptive part of the pool: decide, from one stats sample, where ``min_size`` should be.

psycopg_pool already opens one connection at a time while clients queue and
closes one idle connection per ``max_idle``. What it lacks is foresight: under a
burst every waiting client pays for the serial growth, and connections opened
for a burst are closed again while the burst is still going. The scaler moves
the pool's *floor* (``min_size``) instead: up ahead of demand when requests
queue or utilisation passes the threshold, so several connections open at once
and stay; back down towards the configured minimum once utilisation falls below
the lower threshold, after which psycopg's own idle shrinking closes the extra
connections (one per ``idle_timeout``).

>>> policy = ScalePolicy(base_min=2, max_size=50, up_threshold=0.8, down_threshold=0.2)
>>> busy = PoolSample(size=4, available=0, waiting=6, queued=9, busy_ms=3900, interval_ms=1000)
>>> policy.target_min(busy, current_min=2)
13
>>> idle = PoolSample(size=13, available=13, waiting=0, queued=0, busy_ms=50, interval_ms=1000)
>>> policy.target_min(idle, current_min=13)
2
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PoolSample:
    """What the pool did during one sampling interval (counters are deltas)."""

    size: int  # connections open or being opened
    available: int  # idle in the pool
    waiting: int  # clients queued right now
    queued: int  # clients that had to queue during the interval
    busy_ms: int  # total time connections were checked out during the interval
    interval_ms: int

    @property
    def in_use(self) -> int:
        return max(0, self.size - self.available)

    @property
    def mean_busy(self) -> float:
        """Average number of connections checked out over the interval."""
        return self.busy_ms / self.interval_ms if self.interval_ms > 0 else 0.0

    @property
    def demand(self) -> float:
        """Connections wanted: the larger of the current and the average need."""
        return max(float(self.in_use + self.waiting), self.mean_busy)

    @property
    def utilisation(self) -> float:
        """Demand over the connections there are (can exceed 1 while clients queue)."""
        return self.demand / self.size if self.size > 0 else (1.0 if self.demand else 0.0)


@dataclass(frozen=True, slots=True)
class ScalePolicy:
    base_min: int
    max_size: int
    up_threshold: float
    down_threshold: float

    def target_min(self, sample: PoolSample, current_min: int) -> int:
        """The ``min_size`` the pool should have after ``sample``; ``current_min`` if unchanged."""
        wanted = math.ceil(sample.demand / self.up_threshold)
        pressed = sample.waiting > 0 or sample.queued > 0
        if pressed or sample.utilisation >= self.up_threshold:
            if pressed:
                wanted = max(wanted, current_min + 1)
            # psycopg_pool's resize() opens (new min - old min) connections whatever the pool
            # already holds, so the raise must fit in the room left below max_size.
            room = max(0, self.max_size - sample.size)
            return min(self.max_size, current_min + room, max(current_min, wanted))
        if sample.utilisation <= self.down_threshold and current_min > self.base_min:
            return max(self.base_min, min(current_min, wanted))
        return current_min
