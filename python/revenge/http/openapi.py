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
_PROBLEM_REF = {"$ref": "#/components/responses/Problem"}

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
        "request_id": {"type": "string"},
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
        operation = _operation(route, schemas)
        links = _links(route, routes, schemas)
        if links:
            operation["responses"][str(route.declared.status)]["links"] = links
        paths.setdefault(route.path, {})[route.method.lower()] = operation
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
        "responses": {
            status: success,
            **{str(code): _PROBLEM_REF for code in declared.problems},
            "default": _PROBLEM_REF,
        },
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


def _links(route: Route, routes: list[Route], schemas: _Schemas) -> dict[str, Any]:
    """OpenAPI links from an answer that names a resource to the routes of that resource.

    ``POST /things`` answering ``{"id": ...}`` and ``GET /things`` answering
    ``{"things": [{"id": ...}]}`` both lead to ``/things/{thing_id}``: a fuzzer then
    follows a created or listed id instead of guessing one (stateful tests).
    """
    response = route.declared.response
    if response is None or route.method not in ("GET", "POST"):
        return {}
    pointer = _id_pointer(schemas.of(response), schemas)
    if pointer is None:
        return {}
    links: dict[str, Any] = {}
    for other in routes:
        names = _PARAM.findall(other.path)
        if names and other.path == f"{route.path}/{{{names[-1]}}}":
            links[f"{other.method.lower()}_{names[-1]}"] = {
                "operationId": f"{other.method.lower()}_{_slug(other.path)}",
                "parameters": {names[-1]: f"$response.body#{pointer}"},
            }
    return links


def _id_pointer(schema: dict[str, Any], schemas: _Schemas) -> str | None:
    """``/id`` when the answer has an ``id``; ``/<list>/0/id`` when its one list holds them."""
    properties: dict[str, Any] = schema.get("properties", {})
    if "id" in properties:
        return "/id"
    lists = [(name, p) for name, p in properties.items() if p.get("type") == "array"]
    if len(lists) != 1:
        return None
    name, prop = lists[0]
    ref = prop.get("items", {}).get("$ref", "")
    item = schemas.defs.get(ref.rsplit("/", 1)[-1], {})
    return f"/{name}/0/id" if "id" in item.get("properties", {}) else None


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
