"""HTTP face of search: ``GET /api/v1/search`` (any signed-in user)."""

from __future__ import annotations

from typing import Any

from revenge.http import Request, Response, Router, json_response
from revenge.infra.search import SearchHit
from revenge.modules.search.params import parse_search_params
from revenge.modules.search.service import MediaSearch

_TAGS = ("search",)


def _hit_json(hit: SearchHit) -> dict[str, Any]:
    return {
        "id": hit.id,
        "kind": hit.kind,
        "title": hit.title,
        "year": hit.year,
        "score": hit.score,
    }


def add_routes(router: Router, service: MediaSearch) -> None:
    async def search(request: Request) -> Response:
        """Search movies, series, episodes and people; best hits first."""
        params = parse_search_params(request.query, service.kinds)
        result = await service.search(params)
        return json_response(
            {
                "query": params.query,
                "kinds": list(params.kinds) if params.kinds is not None else None,
                "limit": params.limit,
                "offset": params.offset,
                "backend": result.backend,
                "hits": [_hit_json(hit) for hit in result.hits],
            }
        )

    router.add("GET", "/api/v1/search", search, tags=_TAGS)
