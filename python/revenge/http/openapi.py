"""The OpenAPI 3.1 document, derived from the route table so it cannot drift from it.

Request and response schemas come from the routes' declared models
(``revenge.http.declare``): the models that decode a request are the ones the
document shows, so a client generator or a fuzzer sends what the server accepts.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from revenge.http.router import Route, Router

_PARAM = re.compile(r"{(\w+)}")
_REF = "#/components/schemas/{model}"
_PROBLEM_TYPE = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is stable, `field` names a bad input",
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "field": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                    "message": {"type": "string"},
                },
                "required": ["field", "reason", "message"],
            },
        },
    },
    "required": ["type", "title", "status", "code"],
}


def openapi_document(
    router: Router,
    *,
    title: str,
    version: str,
    cookie_name: str = "revenge_session",
    api_key_header: str = "X-Api-Key",
) -> dict[str, Any]:
    """Paths, operations, their schemas and security; every error is a Problem.

    >>> from revenge.http.declare import Output
    >>> from revenge.http.response import json_response
    >>> class Movie(Output):
    ...     id: int
    >>> async def movie(request):
    ...     '''Get one movie.'''
    >>> router = Router()
    >>> router.add("GET", "/api/v1/movies/{movie_id}", movie, tags=("movies",), response=Movie)
    >>> doc = openapi_document(router, title="t", version="1")
    >>> op = doc["paths"]["/api/v1/movies/{movie_id}"]["get"]
    >>> op["summary"], op["parameters"][0]["name"], op["security"][0]
    ('Get one movie.', 'movie_id', {'session': []})
    >>> op["responses"]["200"]["content"]["application/json"]["schema"]
    {'$ref': '#/components/schemas/Movie'}
    """
    routes = list(router)
    schemas = _Schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {**dict(sorted(schemas.defs.items())), "Problem": PROBLEM_SCHEMA},
            "securitySchemes": {
                "session": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": cookie_name},
                "apiKey": {"type": "apiKey", "in": "header", "name": api_key_header},
            },
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem details with a stable `code`",
                    "content": {
                        _PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    },
                }
            },
        },
    }


class _Schemas:
    """Every declared model's schema under ``components/schemas`` (names made unique)."""

    def __init__(self, routes: list[Route]) -> None:
        models: dict[type[BaseModel], None] = {}
        for route in routes:
            for model in route.declared.models():
                models[model] = None
        # One mode for all: serialization differs from validation only for computed fields.
        refs, top = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
        self.defs: dict[str, Any] = top.get("$defs", {})
        self._refs = {model: ref["$ref"] for (model, _), ref in refs.items()}

    def ref(self, model: type[BaseModel]) -> dict[str, str]:
        return {"$ref": self._refs[model]}

    def of(self, model: type[BaseModel]) -> dict[str, Any]:
        schema: dict[str, Any] = self.defs[self._refs[model].rsplit("/", 1)[1]]
        return schema


def _operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    declared = route.declared
    status = str(declared.status)
    success: dict[str, Any] = {"description": route.summary or "OK"}
    if declared.response is not None:
        success["content"] = {"application/json": {"schema": schemas.ref(declared.response)}}
    operation: dict[str, Any] = {
        "operationId": f"{route.method.lower()}_{_slug(route.path)}",
        "summary": route.summary,
        "tags": list(route.tags),
        **({"description": "Administrators only."} if declared.admin else {}),
        "responses": {status: success, "default": {"$ref": "#/components/responses/Problem"}},
    }
    parameters = _path_parameters(route, schemas) + _query_parameters(route, schemas)
    if parameters:
        operation["parameters"] = parameters
    if declared.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.ref(declared.body)}},
        }
    operation["security"] = (
        [] if route.public else [{"session": []}, {"cookie": []}, {"apiKey": []}]
    )
    return operation


def _path_parameters(route: Route, schemas: _Schemas) -> list[dict[str, Any]]:
    model = route.declared.params
    properties = _properties(model, schemas)
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": properties.get(name, {"type": "string"}),
        }
        for name in _PARAM.findall(route.path)
    ]


def _query_parameters(route: Route, schemas: _Schemas) -> list[dict[str, Any]]:
    model = route.declared.query
    if model is None:
        return []
    schema = schemas.of(model)
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if prop.get("type") == "array":
            parameter |= {"style": "form", "explode": True}
        if "description" in prop:
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters


def _properties(model: type[BaseModel] | None, schemas: _Schemas) -> dict[str, Any]:
    if model is None:
        return {}
    properties: dict[str, Any] = schemas.of(model).get("properties", {})
    return properties


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_")
