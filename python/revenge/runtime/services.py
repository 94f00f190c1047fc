"""What the runtime registers: tiers, typed service keys, and the records it keeps per service.

>>> DATABASE: ServiceKey[object] = ServiceKey("database", Tier.WARM)
>>> DATABASE.name, DATABASE.tier
('database', <Tier.WARM: 'warm'>)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")


class Tier(StrEnum):
    HOT = "hot"
    WARM = "warm"
    COLD = "cold"
    BACKGROUND = "background"


#: Start order of the tiers (cold ones are built on first use, or after warm when eager).
START_ORDER = {Tier.HOT: 0, Tier.WARM: 1, Tier.COLD: 2, Tier.BACKGROUND: 3}


@dataclass(frozen=True, slots=True)
class ServiceKey(Generic[T]):
    """The typed name of a service: declared once, used by its provider and its users.

    ``runtime.provide(KEY, factory)`` registers it; ``runtime.get(KEY)`` returns the
    instance of a hot, warm or background service, ``runtime.lazy(KEY)`` the
    :class:`Lazy` of a cold one. The type parameter is only for the checker::

        DATABASE: ServiceKey[Database] = ServiceKey("database", Tier.WARM)
    """

    name: str
    tier: Tier


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """What was registered for one service."""

    name: str
    tier: Tier
    factory: Callable[[], Any]
    close: Callable[[Any], Any] | None
    health: Callable[[Any], Any] | None
    idle_ttl: float | None
    critical: bool
    eager: bool
    checked: bool = True  # has a health check (the runtime's own loops have none)


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """Introspection record: where a service stands right now."""

    name: str
    tier: Tier
    critical: bool
    initialized: bool
    state: str


ServiceState = Literal["cold", "initialising", "ready", "offloaded", "degraded", "stopped"]


@dataclass(frozen=True, slots=True)
class ServiceReport:
    """What the operator's runtime page shows of one service (:meth:`Runtime.report`).

    ``state``: ``cold`` (a cold service never built), ``initialising``, ``ready``,
    ``offloaded`` (built before, dropped while idle), ``degraded`` (its start or its
    last health check failed), ``stopped`` (not running: before start or after stop).
    Times are epoch seconds; ``spin_up_seconds`` is what the last start took.
    """

    name: str
    tier: Tier
    state: ServiceState
    critical: bool
    spin_up_seconds: float | None
    spun_up_at: float | None
    last_used_at: float | None
    idle_ttl: float | None
    offload_count: int
    init_count: int
    in_use: int
    error: str | None
