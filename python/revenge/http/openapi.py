"""The OpenAPI 3.1 document, derived from the route table so it cannot drift from it."""

from __future__ import annotations

import re
from typing import Any

from revenge.http.router import Router

_PARAM = re.compile(r"{(\w+)}")
_PROBLEM = {"$ref": "#/components/responses/Problem"}


def openapi_document(router: Router, *, title: str, version: str) -> dict[str, Any]:
    """Paths, operations and security of every route; errors are problem+json.

    >>> from revenge.http.response import json_response
    >>> async def movie(request):
    ...     '''Get one movie.'''
    >>> router = Router()
    >>> router.add("GET", "/api/v1/movies/{movie_id}", movie, tags=("movies",))
    >>> op = openapi_document(router, title="t", version="1")["paths"]["/api/v1/movies/{movie_id}"]["get"]
    >>> op["summary"], op["parameters"][0]["name"], op["security"][0]
    ('Get one movie.', 'movie_id', {'session': []})
    """
    paths: dict[str, dict[str, Any]] = {}
    for route in router:
        operation: dict[str, Any] = {
            "operationId": f"{route.method.lower()}_{_slug(route.path)}",
            "summary": route.summary,
            "tags": list(route.tags),
            "responses": {"200": {"description": "OK"}, "default": _PROBLEM},
        }
        params = _PARAM.findall(route.path)
        if params:
            operation["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in params
            ]
        operation["security"] = [] if route.public else [{"session": []}, {"apiKey": []}]
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "session": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            },
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem details with a stable `code`",
                    "content": {"application/problem+json": {"schema": {"type": "object"}}},
                }
            },
        },
    }


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_")
