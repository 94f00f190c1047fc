"""HTTP face of search: ``GET /api/v1/search`` (any signed-in user)."""

from __future__ import annotations

from revenge.http import Output, Request, Response, Router, model_response
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


def add_routes(router: Router, service: MediaSearch) -> None:
    async def search(request: Request, *, query: SearchQuery) -> Response:
        """Search movies, series, episodes and people; best hits first."""
        params = query.params()
        result = await service.search(params)
        return model_response(
            SearchOut(
                query=params.query,
                kinds=list(params.kinds) if params.kinds is not None else None,
                limit=params.limit,
                offset=params.offset,
                backend=result.backend,
                hits=[_hit_out(hit) for hit in result.hits],
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
