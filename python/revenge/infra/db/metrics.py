"""Feed the pool's numbers into the runtime's Prometheus metrics (sampled before each scrape).

The pool keeps plain numbers (:meth:`Database.stats`); this module is the one
place that knows the runtime's metric names, so the pool itself stays free of
Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from revenge.infra.db.pool import Database
    from revenge.runtime.metrics import RuntimeMetrics


def export_pool_metrics(db: Database, metrics: RuntimeMetrics | None = None) -> Callable[[], None]:
    """Register a sampler for ``db``; returns the function that unregisters it.

    Sets ``revenge_pool_{active,idle,max}_connections`` and
    ``revenge_pool_waiting_clients`` (label ``pool``), and feeds the counters
    ``revenge_pool_wait_total`` and ``revenge_pool_scale_events{direction}``.
    """
    from revenge.runtime.metrics import DeltaCounter, get_metrics

    registry = metrics or get_metrics()
    label = db.name
    waits = DeltaCounter(registry.pool_wait.labels(label))
    scale_up = DeltaCounter(registry.pool_scale_events.labels(label, "up"))
    scale_down = DeltaCounter(registry.pool_scale_events.labels(label, "down"))

    def sample() -> None:
        stats = db.stats()
        registry.pool_active.labels(label).set(stats.active)
        registry.pool_idle.labels(label).set(stats.idle)
        registry.pool_max.labels(label).set(stats.max_size)
        registry.pool_waiting.labels(label).set(stats.waiting)
        waits.update(stats.waits)
        scale_up.update(stats.scale_up_events)
        scale_down.update(stats.scale_down_events)

    registry.add_sampler(sample)
    return lambda: registry.remove_sampler(sample)
