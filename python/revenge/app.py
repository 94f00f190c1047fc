"""``app``: what ``granian revenge.app`` serves (RSGI) and ``--interface asgi`` too.

Importing this module reads the configuration (a bad one fails here, loudly) and
wires the services and routes; nothing connects until the server starts the app.
Start-up then runs in order: the embedded PostgreSQL when no URL is configured,
the runtime (hot and warm services, health, offload sweeper, pressure monitor),
then the feature modules; shutdown runs in reverse.
"""

from __future__ import annotations

# The metrics mode (one process, or shared files for Granian's workers) must be
# chosen before anything imports prometheus_client.
from revenge.runtime import metrics as runtime_metrics

runtime_metrics.setup_process()

import asyncio  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402

from revenge import __version__  # noqa: E402
from revenge._core import SessionCache, TranscodeCache  # noqa: E402
from revenge.config import Settings, load_settings  # noqa: E402
from revenge.http import HttpApp, Phase, Request, Response, Router, json_response  # noqa: E402
from revenge.http.errors import invalid_input  # noqa: E402
from revenge.http.openapi import openapi_document  # noqa: E402
from revenge.infra.cache import Cache  # noqa: E402
from revenge.infra.database import Database, export_pool_metrics, migrate, resolve_url  # noqa: E402
from revenge.infra.jobs import Jobs, WorkerConfig, run_worker  # noqa: E402
from revenge.infra.search import SearchService  # noqa: E402
from revenge.modules.auth import install as install_auth  # noqa: E402
from revenge.modules.jobs import install as install_jobs  # noqa: E402
from revenge.modules.playback import Transcoder  # noqa: E402
from revenge.modules.search import install as install_search  # noqa: E402
from revenge.runtime import Runtime, Tier  # noqa: E402


def build_app(settings: Settings) -> HttpApp:
    """Wire the application for ``settings``: services by tier, routes, authentication."""
    router = Router()
    runtime = Runtime.from_settings(settings)
    db = Database.from_settings(settings.database.url.get_secret_value(), settings.database)
    cache = Cache.from_settings(settings.cache, observer=runtime.metrics)
    search = SearchService.from_settings(
        db, settings, observer=runtime.metrics, lazy_observer=runtime.metrics
    )
    auth = install_auth(router, settings, db, pubsub=cache)
    install_search(router, search)
    install_jobs(router, lambda: runtime.get("jobs"))  # built when the runtime starts
    _register_services(runtime, settings, db, cache, search, auth.cache)
    runtime.add_check(auth.health_check())
    _add_system_routes(router, runtime, settings)

    phases = [Phase("runtime", runtime.start, runtime.stop), *auth.phases]
    if not db.url:
        phases.insert(0, _embedded_postgres(settings, db))
    http = HttpApp(
        router,
        authenticator=auth.authenticator,
        phases=phases,
        max_body_bytes=settings.server.max_body_bytes,
        body_timeout=settings.server.body_timeout,
    )
    http.map_exception(psycopg.DataError, invalid_input)
    return http


def _register_services(
    runtime: Runtime,
    settings: Settings,
    db: Database,
    cache: Cache,
    search: SearchService,
    session_cache: SessionCache,
) -> None:
    """The design's tiers, registered in dependency order (the runtime starts them so)."""
    runtime.register("config", Tier.HOT, lambda: settings)
    runtime.register("session_cache", Tier.HOT, lambda: session_cache)
    if runtime.pressure is not None:
        runtime.pressure.attach_session_cache("sessions", session_cache)
        segments = TranscodeCache(budget_bytes=runtime.pressure.transcode_budget_bytes)
        runtime.pressure.attach_transcode_cache("segments", segments)
        runtime.register("transcode_cache", Tier.HOT, lambda: segments)

    unexport: list[Callable[[], None]] = []

    async def open_database() -> Database:
        # Idempotent and advisory-locked: workers racing here apply each file once, and a
        # bare `granian revenge.app` needs no separate `revenge migrate` step.
        await migrate(db.url)
        await db.start()
        unexport.append(export_pool_metrics(db, runtime.metrics))
        return db

    async def close_database(database: Database) -> None:
        while unexport:
            unexport.pop()()
        await database.close()

    runtime.register(
        "database", Tier.WARM, open_database, close=close_database, health=lambda d: d.check(),
        critical=True,
    )  # fmt: skip

    async def open_cache() -> Cache:
        await cache.start()  # never fails for Redis: degrades to in-process
        return cache

    runtime.register(
        "cache", Tier.WARM, open_cache, close=lambda c: c.close(), health=lambda c: c.health_probe()
    )
    if runtime.pressure is not None:
        runtime.pressure.on_level_change(cache.on_pressure)

    async def open_search() -> SearchService:
        await search.start(eager=not settings.lazy_init.search)
        return search

    runtime.register(
        "search",
        Tier.WARM,
        open_search,
        close=lambda s: s.close(),
        health=lambda s: s.health_probe(),
    )
    runtime.register("jobs", Tier.WARM, lambda: Jobs(db))
    if settings.jobs.in_process_worker:
        runtime.register(
            "job_worker",
            Tier.BACKGROUND,
            lambda: InProcessWorker.start(WorkerConfig.from_settings(settings, url=db.url), db),
            close=lambda w: w.stop(),
            health=lambda w: w.check(),
        )
    runtime.register("transcoder", Tier.COLD, Transcoder.discover, health=lambda t: t.check())


def _add_system_routes(router: Router, runtime: Runtime, settings: Settings) -> None:
    async def live(request: Request) -> Response:
        """Liveness: the process answers."""
        status, body = runtime.live()
        return json_response(body, status)

    async def ready(request: Request) -> Response:
        """Readiness: 503 while a critical service is down."""
        status, body = runtime.ready()
        return json_response(body, status)

    async def health(request: Request) -> Response:
        """Every service by tier: healthy, initialized, latency, error."""
        status, body = runtime.health_report()
        return json_response(body, status)

    async def metrics(request: Request) -> Response:
        """Prometheus metrics of the whole process group."""
        body, content_type = await runtime_metrics.render_async()
        return Response(200, body, [("content-type", content_type)])

    document: dict[str, Any] = {}

    async def openapi(request: Request) -> Response:
        """The OpenAPI 3.1 document of this API."""
        if not document:  # built at first request, when every module has added its routes
            document.update(openapi_document(router, title="Revenge", version=__version__))
        return json_response(document)

    router.add("GET", "/health/live", live, public=True, tags=("health",))
    router.add("GET", "/health/ready", ready, public=True, tags=("health",))
    router.add("GET", "/health", health, public=True, tags=("health",))
    router.add("GET", "/metrics", metrics, public=settings.metrics.public, tags=("metrics",))
    router.add("GET", "/api/v1/openapi.json", openapi, tags=("meta",))


def _embedded_postgres(settings: Settings, db: Database) -> Phase:
    """With no ``database.url`` (a bare ``granian revenge.app``), run PostgreSQL in the data folder.

    ``revenge serve`` resolves this once in the serving parent and exports the URL,
    so its workers never take this path.
    """
    stop_server: list[object] = []

    async def start() -> None:
        url, stop = await resolve_url(settings)
        db.url = url
        if stop is not None:
            stop_server.append(stop)

    async def stop() -> None:
        for stop_fn in stop_server:
            await asyncio.to_thread(stop_fn)  # type: ignore[arg-type]

    return Phase("embedded_postgres", start, stop)


@dataclass(slots=True)
class InProcessWorker:
    """``jobs.in_process_worker``: a job worker inside a serving process (single-machine setups)."""

    task: asyncio.Task[None]
    stop_event: asyncio.Event

    @classmethod
    def start(cls, config: WorkerConfig, db: Database) -> InProcessWorker:
        stop_event = asyncio.Event()
        task = asyncio.create_task(
            run_worker(config, stop_event, resources={"database": db}), name="job-worker"
        )
        return cls(task, stop_event)

    async def check(self) -> None:
        if self.task.done():
            raise RuntimeError("the in-process job worker has stopped")

    async def stop(self) -> None:
        self.stop_event.set()
        await self.task


app = build_app(load_settings())
