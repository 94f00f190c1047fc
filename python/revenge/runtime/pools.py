"""``PoolStats``: one record for every connection pool (the PostgreSQL pool, Redis).

Each pool's owner fills what it knows; what a pool cannot tell stays 0. The
memory-pressure monitor and the pool metrics read ``active``, ``idle``,
``max_size`` and ``waits``.

>>> PoolStats(active=2, idle=3, max_size=10).size
0
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A connection pool's numbers right now; counters are totals since it opened."""

    active: int  # checked out
    idle: int  # open and ready
    max_size: int  # most it may open
    size: int = 0  # open or being opened
    min_size: int = 0  # the current floor (moved by the PostgreSQL scaler)
    waiting: int = 0  # clients queued right now
    requests: int = 0  # checkouts asked for
    waits: int = 0  # checkouts that had to queue
    wait_ms: int = 0  # total time spent queued
    timeouts: int = 0  # checkouts that failed (timed out) -> 503
    connections_opened: int = 0
    connections_failed: int = 0
    connections_lost: int = 0
    scale_up_events: int = 0
    scale_down_events: int = 0
    utilisation: float = 0.0  # demand / size at the last scaler sample
