"""The offloading runtime: tiers, lazy services, health, degradation, pressure, metrics.

Knows nothing of movies, HTTP routes or SQL, so it can be embedded in any ASGI/RSGI app
(see docs/embedding.md). ``pressure`` and ``metrics`` are imported on demand: the
metrics mode must be chosen (``metrics.setup_process()``) before ``prometheus_client``
is first imported.
"""

from revenge.runtime.degrade import Degradable, DegradeObserver
from revenge.runtime.errors import DomainError, ServiceInitFailed, ServiceUnavailable
from revenge.runtime.health import (
    Category,
    Check,
    HealthChecker,
    HealthReport,
    ServiceStatus,
    overall_status,
)
from revenge.runtime.lazy import Lazy, LazyObserver
from revenge.runtime.pools import PoolStats
from revenge.runtime.runtime import Runtime
from revenge.runtime.services import (
    ServiceInfo,
    ServiceKey,
    ServiceReport,
    ServiceSpec,
    ServiceState,
    Tier,
)

__all__ = [
    "Category",
    "Check",
    "Degradable",
    "DegradeObserver",
    "DomainError",
    "HealthChecker",
    "HealthReport",
    "Lazy",
    "LazyObserver",
    "PoolStats",
    "Runtime",
    "ServiceInfo",
    "ServiceInitFailed",
    "ServiceKey",
    "ServiceReport",
    "ServiceSpec",
    "ServiceState",
    "ServiceStatus",
    "ServiceUnavailable",
    "Tier",
    "overall_status",
]
