"""Search API: ``GET /api/v1/search`` over the search service (PostgreSQL, or Typesense in front).

``MODULE`` installs it: the route, its services and its job kind:

* ``typesense`` (cold, only when ``search.typesense_url`` is set): the Typesense
  client, built on first use, offloaded when idle or under critical memory pressure;
* ``search`` (warm): the infra ``SearchService`` (PostgreSQL always, Typesense in
  front when configured, falling back by itself);
* the ``search_reindex`` job kind, whose body rebuilds Typesense from PostgreSQL;

plus ``migrations/`` (the PostgreSQL full-text index).

Handler (:mod:`.routes`: query string -> :class:`.query.SearchQuery`, hits -> JSON)
-> service (:class:`.service.MediaSearch`) -> repository (the infra ``SearchService``).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

from revenge.contract import (
    JobContext,
    JobKind,
    Module,
    ModuleContext,
    Payload,
    RetryPolicy,
    ServiceKey,
    Tier,
)
from revenge.http import Principal, Router
from revenge.infra.db import Database
from revenge.infra.search import SearchBackend, SearchService
from revenge.infra.search.service import typesense_factory
from revenge.modules.search.query import (
    SEARCHABLE_KINDS,
    SearchParams,
    SearchQuery,
    search_query_model,
)
from revenge.modules.search.routes import Visible, add_routes
from revenge.modules.search.service import MediaSearch, SearchIndex

__all__ = [
    "MODULE",
    "SEARCH",
    "SEARCHABLE_KINDS",
    "SEARCH_REINDEX",
    "TYPESENSE",
    "MediaSearch",
    "SearchIndex",
    "SearchParams",
    "SearchQuery",
    "add_search_route",
    "install",
    "search_query_model",
]

SEARCH: ServiceKey[SearchService] = ServiceKey("search", Tier.WARM)
TYPESENSE: ServiceKey[SearchBackend] = ServiceKey("typesense", Tier.COLD)

SEARCH_REINDEX = JobKind(
    "search_reindex",
    queue="default",
    priority=20,
    unique=True,  # key: the index name ("" = everything)
    max_running=1,  # a reindex competes with itself for the same rows
    retry=RetryPolicy(max_attempts=4, initial_delay=30.0),
    timeout=3600.0,
)


def add_search_route(
    router: Router,
    search: SearchIndex,
    *,
    kinds: Iterable[str] = SEARCHABLE_KINDS,
    visible: Visible | None = None,
) -> MediaSearch:
    """Add the search route (authenticated) to ``router``; ``kinds`` are the ones callers may
    ask for; ``visible`` filters item hits by who may see them."""
    service = MediaSearch(search, frozenset(kinds))
    add_routes(router, service, visible)
    return service


def visible_items(db: Database) -> Visible:
    """The library's visibility rule over item ids (grants, parental limit)."""

    async def visible(principal: Principal, ids: list[int]) -> set[int]:
        # The library imports this package (its SEARCH key): its rule is read at first use.
        from revenge.modules.library.visibility import item_visible_sql, viewer_params

        rows = await db.fetch_all(
            f"SELECT i.id FROM items i WHERE i.id = ANY(%(ids)s) AND {item_visible_sql('i')}",  # noqa: S608
            {"ids": ids, **viewer_params(principal.user_id, admin=principal.is_admin)},
        )
        return {int(row[0]) for row in rows}

    return visible


def install(ctx: ModuleContext) -> None:
    settings = ctx.settings
    metrics = ctx.services.metrics
    factory = typesense_factory(settings)
    typesense = None
    if factory is not None:
        ctx.provide(TYPESENSE, factory, close=_close_backend)
        typesense = ctx.services.lazy(TYPESENSE)
    search = SearchService.from_settings(
        ctx.database, settings, typesense=typesense, observer=metrics, lazy_observer=metrics
    )
    if metrics is not None and search.configured:
        metrics.declare_degradable("search")

    async def open_search() -> SearchService:
        await search.start(eager=not settings.lazy_init.search)
        return search

    ctx.provide(SEARCH, open_search, close=lambda s: s.close(), health=lambda s: s.health_probe())
    add_search_route(ctx.router, search, visible=visible_items(ctx.database))
    ctx.job(SEARCH_REINDEX, reindex)
    ctx.migrations(resources.files(__name__) / "migrations")


async def reindex(ctx: JobContext, payload: Payload) -> None:
    """Rebuild Typesense from PostgreSQL's index (the source of truth)."""
    count = await ctx.services.get(SEARCH).reindex_all()
    await ctx.progress(count, count, f"{count} documents indexed")


async def _close_backend(backend: SearchBackend) -> None:
    await backend.close()


MODULE = Module("search", install)
