"""Feed the pool's numbers into the runtime's Prometheus metrics (sampled before each scrape).

The pool keeps plain numbers (:meth:`Database.stats`); this module is the one
place that knows the runtime's metric names, so the pool itself stays free of
Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from revenge.infra.db.pool import Database
    from revenge.runtime.metrics import RuntimeMetrics


def export_pool_metrics(db: Database, metrics: RuntimeMetrics | None = None) -> Callable[[], None]:
    """Register a sampler for ``db``; returns the function that unregisters it.

    Sets ``revenge_pool_{active,idle,max}_connections{pool=...}`` and feeds
    ``revenge_pool_wait_total``; ``pool_waiting`` (gauge) and
    ``pool_scale_events`` (counter labelled ``pool, direction``) are fed too when
    the runtime defines them.
    """
    from revenge.runtime.metrics import DeltaCounter, get_metrics

    registry = metrics or get_metrics()
    label = db.name
    waits = DeltaCounter(registry.pool_wait.labels(label))
    waiting_gauge: Any = getattr(registry, "pool_waiting", None)
    scale_counter: Any = getattr(registry, "pool_scale_events", None)
    scale_up = DeltaCounter(scale_counter.labels(label, "up")) if scale_counter else None
    scale_down = DeltaCounter(scale_counter.labels(label, "down")) if scale_counter else None

    def sample() -> None:
        stats = db.stats()
        registry.pool_active.labels(label).set(stats.active)
        registry.pool_idle.labels(label).set(stats.idle)
        registry.pool_max.labels(label).set(stats.max_size)
        waits.update(stats.waits)
        if waiting_gauge is not None:
            waiting_gauge.labels(label).set(stats.waiting)
        if scale_up is not None and scale_down is not None:
            scale_up.update(stats.scale_up_events)
            scale_down.update(stats.scale_down_events)

    registry.add_sampler(sample)
    return lambda: registry.remove_sampler(sample)
