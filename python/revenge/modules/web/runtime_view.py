"""``GET /api/v1/admin/runtime``: the offloading runtime of the worker that answers, for its page.

Everything here is read from memory but the job queue (two small queries); the
page polls it every two seconds, so it must stay cheap and never build a cold
service (reading a service's state does not touch its idle clock).
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from typing import Any, Literal

import psutil

from revenge.contract import JOBS, ModuleContext
from revenge.http import Output, Request, Response, model_response
from revenge.runtime import PoolStats, ServiceReport
from revenge.runtime.metrics import multiprocess_dir

_STARTED = time.time()


class ServiceOut(Output):
    name: str
    tier: Literal["hot", "warm", "cold", "background"]
    state: Literal["cold", "initialising", "ready", "offloaded", "degraded", "stopped"]
    critical: bool
    spin_up_ms: float | None
    """What its last start took."""
    spun_up_at: datetime | None
    last_used_at: datetime | None
    """Cold services: when it was last handed out (its idle clock)."""
    idle_ttl_s: float | None
    offload_count: int
    init_count: int
    in_use: int
    error: str | None


class PoolOut(Output):
    name: str
    active: int
    idle: int
    size: int
    min_size: int
    max_size: int
    waiting: int
    waits: int
    timeouts: int


class CacheOut(Output):
    name: str
    kind: Literal["session", "transcode"]
    entries: int
    bytes: int
    budget_bytes: int
    hits: int
    misses: int
    evictions: int


class BudgetOut(Output):
    category: str
    budget_bytes: int
    used_bytes: int | None
    connections: int | None


class MemoryOut(Output):
    level: Literal["normal", "moderate", "critical"] | None
    ratio: float | None
    limit_bytes: int | None
    source: str | None
    categories: list[BudgetOut]


class JobProgressOut(Output):
    done: int
    total: int | None
    fraction: float | None
    message: str


class ActiveJobOut(Output):
    id: int
    kind: str
    state: str
    updated_at: datetime
    progress: JobProgressOut | None


class QueueDepthOut(Output):
    kind: str
    state: str
    count: int


class JobsOut(Output):
    available: bool
    depth: list[QueueDepthOut]
    active: list[ActiveJobOut]


class WorkersOut(Output):
    """The processes serving together, from the metrics directory they share: the one
    place every worker writes to (events only, so no worker's figure here is stale)."""

    answered_by: int
    """The pid of the worker that answered; every other section but ``jobs`` is its own."""
    live: list[int]
    """Pids of the processes whose runtime is started (``revenge_worker_up``), alive now."""
    services_built: dict[str, int]
    """Per cold service, in how many of them it is built now (``revenge_service_initialized``)."""
    shared: bool
    """Whether the metrics directory is shared (multi-process mode); else only this one."""


class RuntimeOut(Output):
    pid: int
    """The worker process this describes (each Granian worker has its own runtime)."""
    workers: WorkersOut
    started_at: datetime
    generated_at: datetime
    services: list[ServiceOut]
    pools: list[PoolOut]
    caches: list[CacheOut]
    memory: MemoryOut
    jobs: JobsOut
    reports: dict[str, Any]
    """What modules add (``playback_sessions``: active sessions with method and bandwidth)."""


def _read_shared(folder: str) -> tuple[list[int], dict[str, int]]:
    """Live worker pids and built cold services, read from the shared metrics files
    (a few small files: in a thread, off the event loop)."""
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    live: list[int] = []
    built: dict[str, int] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "revenge_worker_up" and sample.value >= 1:
                pid = int(sample.labels.get("pid", 0))
                if psutil.pid_exists(pid):  # a killed worker leaves its file behind
                    live.append(pid)
            elif sample.name == "revenge_service_initialized":
                built[sample.labels["service"]] = int(sample.value)
    return live, built


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def service_out(report: ServiceReport) -> ServiceOut:
    return ServiceOut(
        name=report.name,
        tier=report.tier.value,
        state=report.state,
        critical=report.critical,
        spin_up_ms=None
        if report.spin_up_seconds is None
        else round(report.spin_up_seconds * 1e3, 3),
        spun_up_at=_when(report.spun_up_at),
        last_used_at=_when(report.last_used_at),
        idle_ttl_s=report.idle_ttl,
        offload_count=report.offload_count,
        init_count=report.init_count,
        in_use=report.in_use,
        error=report.error,
    )


def _pool_out(name: str, stats: PoolStats) -> PoolOut:
    return PoolOut(
        name=name,
        active=stats.active,
        idle=stats.idle,
        size=stats.size,
        min_size=stats.min_size,
        max_size=stats.max_size,
        waiting=stats.waiting,
        waits=stats.waits,
        timeouts=stats.timeouts,
    )


def add_runtime_route(ctx: ModuleContext) -> None:
    runtime = ctx.services
    database = ctx.database

    async def jobs_view() -> JobsOut:
        if not runtime.provides(JOBS):
            return JobsOut(available=False, depth=[], active=[])
        try:
            jobs = runtime.get(JOBS)
            depth = await jobs.queue_depth()
            active = await jobs.active(limit=50)
        except Exception:  # the page shows the rest; the queue's own health says why
            return JobsOut(available=False, depth=[], active=[])
        return JobsOut(
            available=True,
            depth=[
                QueueDepthOut(kind=kind, state=state, count=count)
                for (kind, state), count in sorted(depth.items())
            ],
            active=[
                ActiveJobOut(
                    id=job.job_id,
                    kind=job.kind,
                    state=job.state,
                    updated_at=job.updated,
                    progress=None
                    if job.progress is None
                    else JobProgressOut(
                        done=job.progress.done,
                        total=job.progress.total,
                        fraction=job.progress.fraction,
                        message=job.progress.message,
                    ),
                )
                for job in active
            ],
        )

    def memory_view() -> tuple[MemoryOut, list[CacheOut], list[PoolOut]]:
        pools = [_pool_out("postgresql", database.stats())] if database.started else []
        pressure = runtime.pressure
        if pressure is None:
            empty = MemoryOut(level=None, ratio=None, limit_bytes=None, source=None, categories=[])
            return empty, [], pools
        pools.extend(_pool_out(name, other) for name, other in pressure.pools().items())
        caches = []
        session_budget = pressure.budget.get("session_cache", 0)
        for kind, group in pressure.caches().items():
            for name, numbers in group.items():
                caches.append(
                    CacheOut(
                        name=name,
                        kind=kind,
                        entries=numbers.get("entries", 0),
                        bytes=numbers.get("bytes", 0),
                        budget_bytes=numbers.get("effective_budget_bytes", session_budget),
                        hits=numbers.get("hits", 0),
                        misses=numbers.get("misses", 0),
                        evictions=numbers.get("evictions", numbers.get("evicted_size", 0)),
                    )
                )
        reading = pressure.last_reading
        memory = MemoryOut(
            level=pressure.level,
            ratio=None if reading is None else round(reading.ratio, 4),
            limit_bytes=None if reading is None else reading.limit_bytes,
            source=None if reading is None else reading.source,
            categories=[BudgetOut(**line.to_dict()) for line in pressure.usage()],
        )
        return memory, caches, pools

    async def workers_view() -> WorkersOut:
        pid = os.getpid()
        folder = multiprocess_dir()
        if folder is None:
            return WorkersOut(answered_by=pid, live=[pid], services_built={}, shared=False)
        live, built = await asyncio.to_thread(_read_shared, str(folder))
        return WorkersOut(
            answered_by=pid,
            live=sorted(set(live) | {pid}),
            services_built=built,
            shared=True,
        )

    async def runtime_view(request: Request) -> Response:
        """The answering worker's runtime: services by tier and state, pools, caches against
        budgets, memory pressure, the job queue, and modules' reports. Administrators only."""
        memory, caches, pools = memory_view()
        return model_response(
            RuntimeOut(
                pid=os.getpid(),
                workers=await workers_view(),
                started_at=datetime.fromtimestamp(_STARTED, UTC),
                generated_at=datetime.now(UTC),
                services=[service_out(r) for r in runtime.report()],
                pools=pools,
                caches=caches,
                memory=memory,
                jobs=await jobs_view(),
                reports=await runtime.extra_reports(),
            )
        )

    ctx.route(
        "GET",
        "/api/v1/admin/runtime",
        runtime_view,
        tags=("admin",),
        response=RuntimeOut,
        admin=True,
    )
