"""The platform every module stands on: configuration, PostgreSQL, the cache, the job queue.

Registered by the assembly before any module installs, under the typed keys below,
so a module reaches them as ``ctx.services.get(DATABASE)`` (or holds ``ctx.database``).
Also here: the job worker service (in-process under ``serve``, the whole point of
``revenge worker``) and the system routes (``/health*``, ``/metrics``, the OpenAPI
document).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from revenge import __version__
from revenge.config import Settings
from revenge.contract.operator import OperatorGuard
from revenge.http import Authenticate, Output, Request, Response, Router, json_response
from revenge.http.openapi import openapi_document
from revenge.infra.cache import Cache
from revenge.infra.db import Database, Migration, export_pool_metrics, migrate, resolve_url
from revenge.infra.jobs import Jobs, KindRegistry, WorkerConfig, run_worker
from revenge.runtime import Runtime, ServiceKey, Tier
from revenge.runtime import metrics as runtime_metrics

SETTINGS: ServiceKey[Settings] = ServiceKey("config", Tier.HOT)
EMBEDDED_POSTGRES: ServiceKey[Callable[[], None]] = ServiceKey("embedded_postgres", Tier.HOT)
DATABASE: ServiceKey[Database] = ServiceKey("database", Tier.WARM)
CACHE: ServiceKey[Cache] = ServiceKey("cache", Tier.WARM)
JOBS: ServiceKey[Jobs] = ServiceKey("jobs", Tier.WARM)
JOB_WORKER: ServiceKey[JobWorker] = ServiceKey("job_worker", Tier.BACKGROUND)


def provide_platform(
    runtime: Runtime,
    settings: Settings,
    db: Database,
    cache: Cache,
    kinds: KindRegistry,
    migrations: Callable[[], Sequence[Migration]],
    *,
    embedded: bool,
) -> None:
    """Configuration (hot), the embedded PostgreSQL (hot, when no URL), database, cache, queue (warm)."""
    runtime.provide(SETTINGS, lambda: settings)
    if embedded:
        runtime.provide(EMBEDDED_POSTGRES, _embedded_postgres(settings, db), close=_stop_server)

    unexport: list[Callable[[], None]] = []

    async def open_database() -> Database:
        # Idempotent and advisory-locked: workers racing here apply each file once, and a
        # bare `granian revenge.app` needs no separate `revenge migrate` step.
        await migrate(db.url, migrations())
        await db.start()
        unexport.append(export_pool_metrics(db, runtime.metrics))
        return db

    async def close_database(database: Database) -> None:
        while unexport:
            unexport.pop()()
        await database.close()

    runtime.provide(
        DATABASE, open_database, close=close_database, health=lambda d: d.check(), critical=True
    )

    async def open_cache() -> Cache:
        await cache.start()  # never fails for Redis: degrades to in-process
        return cache

    runtime.provide(CACHE, open_cache, close=lambda c: c.close(), health=lambda c: c.health_probe())
    if runtime.metrics is not None:
        runtime.metrics.declare_degradable("cache")
    if runtime.pressure is not None:
        runtime.pressure.on_level_change(cache.on_pressure)

    def open_jobs() -> Jobs:
        jobs = Jobs(db, registry=kinds)
        jobs.install_soon()  # the queue's tables (idempotent, advisory-locked): enqueue waits
        return jobs

    runtime.provide(JOBS, open_jobs)


def _embedded_postgres(settings: Settings, db: Database) -> Callable[[], Any]:
    """With no ``database.url`` (a bare ``granian revenge.app``), run PostgreSQL in the data folder.

    ``revenge serve`` / ``worker`` / ``migrate`` resolve this once in the parent and
    export the URL, so their processes never take this path.
    """

    async def start() -> Callable[[], None]:
        url, stop = await resolve_url(settings)
        db.url = url
        return stop if stop is not None else _nothing

    return start


def _nothing() -> None:
    return None


async def _stop_server(stop: Callable[[], None]) -> None:
    await asyncio.to_thread(stop)


@dataclass(slots=True)
class JobWorker:
    """A job worker running in this process, its bodies seeing this process's runtime."""

    task: asyncio.Task[None]
    stop_event: asyncio.Event

    @classmethod
    def start(cls, config: WorkerConfig, kinds: KindRegistry, runtime: Runtime) -> JobWorker:
        stop_event = asyncio.Event()
        task = asyncio.create_task(
            run_worker(config, stop_event, registry=kinds, services=runtime), name="job-worker"
        )
        return cls(task, stop_event)

    async def check(self) -> None:
        if self.task.done():
            raise RuntimeError("the job worker has stopped")

    async def stop(self) -> None:
        """Stop claiming; in-flight jobs finish within ``shutdown_grace`` or go back."""
        self.stop_event.set()
        await self.task


def provide_worker(
    runtime: Runtime,
    settings: Settings,
    db: Database,
    kinds: KindRegistry,
    *,
    critical: bool,
    **overrides: Any,
) -> None:
    """The job worker as a background service (started after everything it may use)."""

    def start() -> JobWorker:
        config = WorkerConfig.from_settings(settings, url=db.url, **overrides)
        return JobWorker.start(config, kinds, runtime)

    runtime.provide(
        JOB_WORKER, start, close=lambda w: w.stop(), health=lambda w: w.check(), critical=critical
    )


class StatusOut(Output):
    status: str
    """``alive``; or ``starting``, ``healthy``, ``degraded``, ``unhealthy``."""


class ServiceHealthOut(Output):
    healthy: bool
    initialized: bool
    latency_ms: float
    category: str
    tier: str | None = None
    state: str | None = None
    """Cold services: ``cold``, ``initialising``, ``ready``, ``offloaded``, ``degraded``,
    or ``disabled`` (an optional service that is not configured)."""
    error: str | None = None
    disabled: str | None = None
    """Why an optional service is off (not configured); absent when it is on."""


class HealthOut(Output):
    status: str
    checked_at: float | None = None
    services: dict[str, ServiceHealthOut]


def add_system_routes(
    router: Router, runtime: Runtime, settings: Settings, authenticate: Authenticate | None
) -> None:
    """``/health/live``, ``/health/ready`` (anyone, terse); ``/health``, ``/metrics`` (operators:
    an administrator or the scrape token, unless ``health.public`` / ``metrics.public``);
    ``/api/v1/openapi.json``."""
    operator = OperatorGuard(authenticate, settings.metrics.scrape_token.get_secret_value())
    health_open, metrics_open = settings.health.public, settings.metrics.public

    async def live(request: Request) -> Response:
        """Liveness: the process answers."""
        status, body = runtime.live()
        return json_response(body, status)

    async def ready(request: Request) -> Response:
        """Readiness: 503 while a critical service is down (the status word only)."""
        status, body = runtime.ready()
        return json_response(body, status)

    async def health(request: Request) -> Response:
        """Every service by tier: healthy, initialized, latency, error (operators only)."""
        if not health_open:
            await operator(request)
        status, body = runtime.health_report()
        return json_response(body, status)

    async def metrics(request: Request) -> Response:
        """Prometheus metrics of the whole process group (operators only)."""
        if not metrics_open:
            await operator(request)
        body, content_type = await runtime_metrics.render_async()
        return Response(200, body, [("content-type", content_type)])

    document: dict[str, Any] = {}

    async def openapi(request: Request) -> Response:
        """The OpenAPI 3.1 document of this API."""
        if not document:  # built at first request, when every module has added its routes
            document.update(
                openapi_document(
                    router,
                    title="Revenge",
                    version=__version__,
                    cookie_name=settings.auth.cookie_name,
                    api_key_header=settings.auth.api_key_header,
                )
            )
        return json_response(document)

    router.add("GET", "/health/live", live, public=True, tags=("health",), response=StatusOut)
    router.add("GET", "/health/ready", ready, public=True, tags=("health",), response=StatusOut)
    # Public to the router: the handlers let a scrape token in, which is no session.
    router.add("GET", "/health", health, public=True, tags=("health",), response=HealthOut)
    router.add("GET", "/metrics", metrics, public=True, tags=("metrics",))
    router.add("GET", "/api/v1/openapi.json", openapi, tags=("meta",))
