"""The module contract: ``Module(name, install)`` and the ``ModuleContext`` its install receives.

A feature is a folder ``revenge/modules/<name>/`` whose ``__init__.py`` says::

    MODULE = Module("example", install)

    def install(ctx: ModuleContext) -> None:
        ctx.route("GET", "/api/v1/example", hello)                   # HTTP, under its prefix
        ctx.provide(EXAMPLE, build_example, close=Example.close)     # a service, by tier
        ctx.job(JobKind("example_tick", queue="example"), tick)      # a job kind and its body
        ctx.migrations(resources.files(__name__) / "migrations")     # its own SQL

``install`` is the only entry point and runs once per process, in the module
list's order, before anything connects: it declares, the runtime starts. What a
module needs from another module or from the platform it reaches through typed
keys (``ctx.services.get(DATABASE)``) once the runtime has started, never by
importing that module's internals.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel

from revenge.http import Authenticate, Response, Router
from revenge.infra.db import Migration, load_migrations
from revenge.infra.jobs import CleanupStep, JobBody, JobKind, KindRegistry
from revenge.runtime import Category, Check, Runtime, ServiceKey

if TYPE_CHECKING:
    from revenge.config import Settings
    from revenge.infra.cache import Cache
    from revenge.infra.db import Database

T = TypeVar("T")

Role = Literal["serve", "worker", "migrate"]
"""Why the process builds the application: serve HTTP, run jobs, or only migrate."""


@dataclass(frozen=True, slots=True)
class Module:
    """A feature: its name (also its migrations' owner) and its one entry point."""

    name: str
    install: Callable[[ModuleContext], None]


class ModuleContext:
    """What ``install(ctx)`` may declare. Everything is recorded; nothing connects here.

    Attributes a module reads:

    * ``name``: the module's name; ``settings``: the whole configuration;
    * ``role``: ``"serve"``, ``"worker"`` or ``"migrate"`` (most modules ignore it);
    * ``services``: the runtime. Typed look-ups work once it has started:
      ``services.get(KEY)`` (hot, warm, background), ``services.lazy(KEY)`` (cold);
    * ``database``, ``cache``: the platform's pool and cache, not yet started while
      ``install`` runs; hold them, use them from requests, jobs and service factories;
    * ``authenticator``: the request authenticator of the module that supplies it (auth),
      when that module is installed before this one.
    """

    def __init__(
        self,
        name: str,
        *,
        settings: Settings,
        role: Role,
        runtime: Runtime,
        router: Router,
        kinds: KindRegistry,
        database: Database,
        cache: Cache,
        authenticator: Authenticate | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.role = role
        self.services = runtime
        self.database = database
        self.cache = cache
        self._router = router
        self._kinds = kinds
        self.migration_list: list[Migration] = []
        self.authenticate: Authenticate | None = None
        self.authenticator = authenticator
        """The request authenticator an earlier module supplied (``None`` before auth installs):
        for a public route that accepts another proof first (a signed media URL) and
        otherwise asks for the usual credential, as the ``/metrics`` guard does."""

    # -- HTTP ----------------------------------------------------------------------------

    def route(
        self,
        method: str,
        path: str,
        handler: Callable[..., Awaitable[Response]],
        *,
        public: bool = False,
        summary: str = "",
        tags: tuple[str, ...] = (),
        cache_control: str | None = None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        params: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        admin: bool = False,
        problems: tuple[int, ...] = (),
    ) -> None:
        """Add a route. Every route needs a session or API key unless ``public``;
        ``admin`` routes an administrator's (403 for anyone else, before decoding).

        ``body``, ``query`` and ``params`` are the pydantic models (``revenge.http.Input``)
        its request is decoded into before ``handler(request, body=..., query=...,
        params=...)`` runs (bad input: a 422 problem); ``response`` and ``status``
        document its answer, ``problems`` the statuses of the problems it answers to
        input its schema allows (an unknown code: 404, a rule no schema says: 422).
        The OpenAPI document shows the same models and statuses.
        ``cache_control`` defaults to ``no-store`` on authenticated routes.
        """
        self._router.add(
            method,
            path,
            handler,
            public=public,
            summary=summary,
            tags=tags or (self.name,),
            cache_control=cache_control,
            body=body,
            query=query,
            params=params,
            response=response,
            status=status,
            admin=admin,
            problems=problems,
        )

    @property
    def router(self) -> Router:
        """The application's router, for a module's ``add_routes(router, ...)``."""
        return self._router

    def authenticate_with(self, authenticate: Authenticate) -> None:
        """Supply the request authenticator (one module does: auth)."""
        self.authenticate = authenticate

    # -- services --------------------------------------------------------------------------

    def provide(
        self,
        key: ServiceKey[T],
        factory: Callable[[], Awaitable[T]] | Callable[[], T],
        *,
        close: Callable[[T], Any] | None = None,
        health: Callable[[T], Any] | None = None,
        idle_ttl: float | None = None,
        critical: bool | None = None,
    ) -> ServiceKey[T]:
        """Register a service by its key's tier (see ``Runtime.register``).

        Hot, warm and background services are built at start in tier order (within a
        tier, in registration order) and closed in reverse; a cold one is built on its
        first ``await services.lazy(KEY).get()`` and offloaded after ``idle_ttl``.
        """
        return self.services.provide(
            key, factory, close=close, health=health, idle_ttl=idle_ttl, critical=critical
        )

    def health_check(self, check: Check) -> None:
        """An extra check in ``/health`` that is not a service's own."""
        self.services.add_check(check)

    def disabled(self, key: ServiceKey[Any], reason: str) -> None:
        """Say in ``/health`` that the optional service ``key`` is off (not configured):
        healthy, ``initialized: false``, ``disabled: reason``; nothing is registered or built."""
        self.services.add_check(
            Check(key.name, Category.COLD, _nothing, disabled=reason, tier=key.tier.value)
        )

    def on_scrape(self, sample: Callable[[], None]) -> None:
        """Run ``sample`` before each ``/metrics`` answer (to set the module's gauges)."""
        if self.services.metrics is not None:
            self.services.metrics.add_sampler(sample)

    # -- jobs --------------------------------------------------------------------------------

    def job(self, kind: JobKind, body: JobBody | None = None) -> None:
        """Declare a job kind (queue, priority, retry, ``schedule``...) and its body.

        The body runs in whichever process runs jobs (``revenge worker`` or the
        in-process worker) with ``ctx.services`` from the same module list.
        """
        self._kinds.define(kind)
        if body is not None:
            self._kinds.handler(kind.name)(body)

    def cleanup_step(self, name: str, step: CleanupStep) -> None:
        """Run ``step(conn)`` with every scheduled ``cleanup`` job (expired rows and the like)."""
        self._kinds.add_cleanup_step(f"{self.name}.{name}", step)

    # -- schema --------------------------------------------------------------------------------

    def migrations(self, folder: Traversable | Path) -> None:
        """This module's ``NNNN_name.sql`` files, identified by (module name, number)."""
        self.migration_list.extend(load_migrations(self.name, folder))


async def _nothing() -> None:
    return None
