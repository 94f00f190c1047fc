"""Search API: ``GET /api/v1/search`` over the search service (PostgreSQL, or Typesense in front).

One entry point wires it::

    install(router, search)          # search: revenge.infra.search.SearchService

Handler (:mod:`.routes`: query string -> :class:`.params.SearchParams`, hits -> JSON)
-> service (:class:`.service.MediaSearch`) -> repository (the infra ``SearchService``,
which picks the backend and falls back to PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable

from revenge.http import Router
from revenge.modules.search.params import DEFAULT_KINDS, SearchParams, parse_search_params
from revenge.modules.search.routes import add_routes
from revenge.modules.search.service import MediaSearch, SearchIndex

__all__ = [
    "DEFAULT_KINDS",
    "MediaSearch",
    "SearchIndex",
    "SearchParams",
    "install",
    "parse_search_params",
]


def install(
    router: Router, search: SearchIndex, *, kinds: Iterable[str] = DEFAULT_KINDS
) -> MediaSearch:
    """Add the search route (authenticated) to ``router``; ``kinds`` are the ones callers may ask for."""
    service = MediaSearch(search, frozenset(kinds))
    add_routes(router, service)
    return service
