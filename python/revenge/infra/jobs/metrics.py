"""Prometheus metrics of the job queue, in the process's default registry.

Aligned with :mod:`revenge.runtime.metrics`: ``prometheus_client`` is imported lazily
(so the multi-process directory can be chosen first) and gauges declare how several
processes combine. Queue depth is read from PostgreSQL by each worker every
``metrics_interval``; all processes see the same table, hence ``livemax``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram

DURATION_BUCKETS = (0.001, 0.005, 0.02, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0)
#: Every state a depth is reported for, so a drained state reads 0 rather than vanishing.
STATES = ("queued", "scheduled", "running", "stalled", "failed")


class JobMetrics:
    """Job counters and the queue-depth gauge."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.queue_depth: Gauge = Gauge(
            "revenge_jobs_queue_depth",
            "Jobs in the queue by kind and state (queued, scheduled, running, stalled, failed)",
            ["kind", "state"],
            multiprocess_mode="livemax",
        )
        self.duration: Histogram = Histogram(
            "revenge_job_duration_seconds",
            "Run time of job bodies, by kind and outcome (succeeded, retried, failed, released)",
            ["kind", "outcome"],
            buckets=DURATION_BUCKETS,
        )
        self.finished: Counter = Counter(
            "revenge_jobs_finished",
            "Job runs that ended, by kind and outcome",
            ["kind", "outcome"],
        )
        self.failures: Counter = Counter(
            "revenge_job_failures",
            "Jobs that failed for good (retries exhausted)",
            ["kind"],
        )
        self.retries: Counter = Counter(
            "revenge_job_retries",
            "Failed runs re-queued with back-off",
            ["kind"],
        )

        # labels() takes a lock and builds a key on every call; jobs finish thousands a second
        self._children: dict[tuple[str, str], tuple[Any, ...]] = {}

    def observe(self, kind: str, outcome: str, seconds: float) -> None:
        children = self._children.get((kind, outcome))
        if children is None:
            children = (self.duration.labels(kind, outcome), self.finished.labels(kind, outcome))
            if outcome == "failed":
                children += (self.failures.labels(kind),)
            elif outcome == "retried":
                children += (self.retries.labels(kind),)
            self._children[(kind, outcome)] = children
        children[0].observe(seconds)
        for counter in children[1:]:
            counter.inc()

    def set_depth(self, kinds: list[str], depth: Mapping[tuple[str, Any], int]) -> None:
        for kind in sorted({*kinds, *(k for k, _ in depth)}):
            for state in STATES:
                self.queue_depth.labels(kind, state).set(depth.get((kind, state), 0))


_metrics: JobMetrics | None = None


def get_job_metrics() -> JobMetrics:
    """This process's :class:`JobMetrics` (created on first use)."""
    global _metrics
    if _metrics is None:
        _metrics = JobMetrics()
    return _metrics
