"""HTTP face of search: ``GET /api/v1/search`` (any signed-in user).

Hits that are library items (a numeric id, as the library indexes ``items.id``) pass
through ``visible``, the library's rule: an item of a library the caller may not see,
or above their parental limit, is no hit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from revenge.http import Output, Principal, Request, Response, Router, model_response
from revenge.infra.search import SearchHit
from revenge.modules.search.query import SearchQuery, search_query_model
from revenge.modules.search.service import MediaSearch

_TAGS = ("search",)


class HitOut(Output):
    id: str
    kind: str
    title: str
    year: int | None
    score: float


class SearchOut(Output):
    query: str
    kinds: list[str] | None
    limit: int
    offset: int
    backend: str  # "postgres" or "typesense"
    hits: list[HitOut]


def _hit_out(hit: SearchHit) -> HitOut:
    return HitOut(id=hit.id, kind=hit.kind, title=hit.title, year=hit.year, score=hit.score)


ITEM_KINDS = frozenset({"movie", "series", "season", "episode", "extra"})
Visible = Callable[[Principal, list[int]], Awaitable[set[int]]]
"""The ids among these items the caller may see."""


def add_routes(router: Router, service: MediaSearch, visible: Visible | None = None) -> None:
    async def search(request: Request, *, query: SearchQuery) -> Response:
        """Search movies, series, episodes and people; best hits first."""
        params = query.params()
        result = await service.search(params)
        hits = list(result.hits)
        if visible is not None:
            items = [int(h.id) for h in hits if h.kind in ITEM_KINDS and h.id.isdigit()]
            seen = await visible(request.principal_or_raise, items) if items else set()
            hits = [
                h
                for h in hits
                if h.kind not in ITEM_KINDS or not h.id.isdigit() or int(h.id) in seen
            ]
        return model_response(
            SearchOut(
                query=params.query,
                kinds=list(params.kinds) if params.kinds is not None else None,
                limit=params.limit,
                offset=params.offset,
                backend=result.backend,
                hits=[_hit_out(hit) for hit in hits],
            )
        )

    router.add(
        "GET",
        "/api/v1/search",
        search,
        tags=_TAGS,
        query=search_query_model(service.kinds),
        response=SearchOut,
    )
