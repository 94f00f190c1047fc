"""Build an application from an ordered module list: the one way every entry point does it.

``revenge serve`` (through ``revenge.app``), a bare ``granian revenge.app``,
``revenge worker``, ``revenge migrate`` and the test fixtures all call
:func:`assemble` with the same list (``revenge.wiring``), so every process knows the
same services, routes, job kinds and migrations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from revenge.config import Settings
from revenge.contract.module import Module, ModuleContext, Role
from revenge.contract.platform import add_system_routes, provide_platform, provide_worker
from revenge.http import Authenticate, HttpApp, Router
from revenge.http.access import AccessLog
from revenge.http.errors import invalid_input
from revenge.infra.cache import Cache
from revenge.infra.db import Database, Migration, core_migrations
from revenge.infra.jobs import KindRegistry, builtin_registry
from revenge.runtime import Runtime


@dataclass(slots=True)
class Assembly:
    """What installing the modules produced for one process."""

    settings: Settings
    role: Role
    runtime: Runtime
    router: Router
    kinds: KindRegistry
    database: Database
    cache: Cache
    modules: tuple[Module, ...]
    migrations: list[Migration] = field(default_factory=list)
    authenticate: Authenticate | None = None

    def http_app(self) -> HttpApp:
        """The RSGI/ASGI application; its lifecycle is the runtime's."""
        options: dict[str, Any] = {}
        if self.authenticate is not None:
            options["authenticator"] = self.authenticate
        http = HttpApp(
            self.router,
            lifecycle=self.runtime,
            max_body_bytes=self.settings.server.max_body_bytes,
            body_timeout=self.settings.server.body_timeout,
            access=AccessLog(self.settings.server.trusted_proxies),
            **options,
        )
        # A value PostgreSQL refuses (a NUL byte in text, say) is the client's error.
        http.map_exception(psycopg.DataError, invalid_input)
        return http


def assemble(
    settings: Settings,
    modules: Iterable[Module],
    *,
    role: Role = "serve",
    runtime: Runtime | None = None,
    worker: dict[str, Any] | None = None,
) -> Assembly:
    """Install ``modules`` in order over the platform; nothing connects until the runtime starts.

    ``role="worker"`` adds the job worker as a critical background service (with
    ``worker`` overrides of ``WorkerConfig``: ``concurrency``, ``queues``); ``"serve"``
    adds it when ``jobs.in_process_worker`` is set; ``"migrate"`` only collects.
    """
    modules = tuple(modules)
    _check_names(modules)
    url = settings.database.url.get_secret_value()
    runtime = runtime if runtime is not None else Runtime.from_settings(settings)
    db = Database.from_settings(url, settings.database)
    cache = Cache.from_settings(settings.cache, observer=runtime.metrics)
    assembly = Assembly(
        settings,
        role,
        runtime,
        Router(),
        builtin_registry(),
        db,
        cache,
        modules,
        list(core_migrations()),
    )
    provide_platform(
        runtime,
        settings,
        db,
        cache,
        assembly.kinds,
        lambda: assembly.migrations,
        embedded=not url and role != "migrate",
    )
    for module in modules:
        ctx = ModuleContext(
            module.name,
            settings=settings,
            role=role,
            runtime=runtime,
            router=assembly.router,
            kinds=assembly.kinds,
            database=db,
            cache=cache,
            authenticator=assembly.authenticate,
        )
        module.install(ctx)
        assembly.migrations.extend(ctx.migration_list)
        if ctx.authenticate is not None:
            if assembly.authenticate is not None:
                raise ValueError(f"module {module.name!r}: another module already authenticates")
            assembly.authenticate = ctx.authenticate
    if role == "worker":
        provide_worker(runtime, settings, db, assembly.kinds, critical=True, **(worker or {}))
    elif role == "serve" and settings.jobs.in_process_worker:
        provide_worker(runtime, settings, db, assembly.kinds, critical=False)
    if role == "serve":
        add_system_routes(assembly.router, runtime, settings, assembly.authenticate)
    return assembly


def _check_names(modules: Sequence[Module]) -> None:
    seen: set[str] = set()
    for module in modules:
        if module.name in seen:
            raise ValueError(f"module {module.name!r} is listed twice")
        if module.name == "core":
            raise ValueError("the module name 'core' is the platform's own")
        seen.add(module.name)
