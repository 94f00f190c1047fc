"""Declared routes: inputs decoded into models before the handler, bad input a 422 problem, the
same models in the OpenAPI document."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import httpx
import pytest
from pydantic import Field

from revenge.http import (
    HttpApp,
    Input,
    Output,
    Request,
    Response,
    Router,
    model_response,
    text,
)
from revenge.http.openapi import openapi_document


class NoteBody(Input):
    title: Annotated[str, text(max_length=10)]
    stars: Annotated[int, Field(ge=1, le=5)] = 3
    tags: list[Annotated[str, text(max_length=8)]] = []


class NoteQuery(Input):
    q: Annotated[str, text(max_length=20)]
    kind: list[Literal["a", "b"]] = []
    limit: Annotated[int, Field(ge=1, le=100)] = 20


class ItemPath(Input):
    item_id: uuid.UUID


class Note(Output):
    item: uuid.UUID
    title: str
    stars: int
    tags: list[str]


class Found(Output):
    q: str
    kind: list[str]
    limit: int


async def add_note(request: Request, *, params: ItemPath, body: NoteBody) -> Response:
    """Add a note to an item."""
    return model_response(
        Note(item=params.item_id, title=body.title, stars=body.stars, tags=body.tags), 201
    )


async def find(request: Request, *, query: NoteQuery) -> Response:
    """Find notes."""
    return model_response(Found(q=query.q, kind=list(query.kind), limit=query.limit))


def make_router() -> Router:
    router = Router()
    router.add(
        "POST",
        "/items/{item_id}/notes",
        add_note,
        public=True,
        params=ItemPath,
        body=NoteBody,
        response=Note,
        status=201,
    )
    router.add("GET", "/notes", find, public=True, query=NoteQuery, response=Found)
    return router


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=HttpApp(make_router()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


ITEM = "/items/6f1c2a52-1f1e-4a53-9a57-0cbe0b6b3a43/notes"


async def test_declared_inputs_reach_the_handler_decoded(client: httpx.AsyncClient) -> None:
    reply = await client.post(ITEM, json={"title": "hello", "tags": ["x"], "extra": 1})
    assert reply.status_code == 201
    assert reply.json() == {
        "item": "6f1c2a52-1f1e-4a53-9a57-0cbe0b6b3a43",
        "title": "hello",
        "stars": 3,
        "tags": ["x"],
    }
    reply = await client.get("/notes", params=[("q", "x"), ("kind", "a"), ("kind", "b")])
    assert reply.json() == {"q": "x", "kind": ["a", "b"], "limit": 20}
    reply = await client.get("/notes", params={"q": "x", "limit": "7", "unknown": "1"})
    assert reply.json()["limit"] == 7


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({"title": "a\x00b"}, "title", "string_pattern_mismatch"),
        ({"title": ""}, "title", "string_too_short"),
        ({"title": "x" * 11}, "title", "string_too_long"),
        ({}, "title", "missing"),
        ({"title": 5}, "title", "string_type"),
        ({"title": "a", "stars": "3"}, "stars", "int_type"),  # strict: JSON has integers
        ({"title": "a", "stars": 9}, "stars", "less_than_equal"),
        ({"title": "a", "tags": ["ok", "much too long"]}, "tags.1", "string_too_long"),
        ([1], "", "model_type"),
    ],
)
async def test_bad_bodies_are_422_with_the_field(
    client: httpx.AsyncClient, payload: object, field: str, reason: str
) -> None:
    reply = await client.post(ITEM, json=payload)
    assert reply.status_code == 422
    assert reply.headers["content-type"] == "application/problem+json"
    problem = reply.json()
    assert problem["code"] == "validation_failed"
    assert problem["field"] == field
    assert problem["errors"][0] == {
        "field": field,
        "reason": reason,
        "message": problem["errors"][0]["message"],
    }
    assert "a\x00b" not in reply.text  # the input is never echoed


async def test_malformed_json_wrong_type_and_bad_path(client: httpx.AsyncClient) -> None:
    reply = await client.post(
        ITEM, content=b'{"title": "\\ud800"}', headers={"content-type": "application/json"}
    )
    assert (reply.status_code, reply.json()["code"]) == (400, "malformed_json")
    reply = await client.post(ITEM, content=b"title=x", headers={"content-type": "text/plain"})
    assert (reply.status_code, reply.json()["code"]) == (415, "unsupported_media_type")
    reply = await client.post("/items/not-a-uuid/notes", json={"title": "x"})
    assert (reply.status_code, reply.json()["field"]) == (422, "item_id")


async def test_bad_queries_are_422(client: httpx.AsyncClient) -> None:
    for params, field in (
        ({}, "q"),
        ({"q": "x", "limit": "many"}, "limit"),
        ({"q": "x", "limit": "0"}, "limit"),
        ({"q": "x", "kind": "c"}, "kind.0"),
        ([("q", "x"), ("q", "y")], "q"),
        ({"q": "a\x00"}, "q"),
    ):
        reply = await client.get("/notes", params=params)
        assert (reply.status_code, reply.json()["field"]) == (422, field), params


def test_declarations_are_checked_at_start_up() -> None:
    class Unbounded(Input):
        name: str

    async def takes_body(request: Request, *, body: Unbounded) -> Response:
        raise AssertionError

    async def takes_nothing(request: Request) -> Response:
        raise AssertionError

    router = Router()
    with pytest.raises(TypeError, match="needs a bound"):
        router.add("POST", "/a", takes_body, body=Unbounded)
    with pytest.raises(TypeError, match="takes no 'body'"):
        router.add("POST", "/b", takes_nothing, body=NoteBody)
    with pytest.raises(ValueError, match="disagree"):
        router.add("GET", "/c/{other}", find, params=ItemPath)


def test_the_openapi_document_shows_the_declared_models() -> None:
    doc = openapi_document(make_router(), title="t", version="1")
    schemas = doc["components"]["schemas"]
    assert {"NoteBody", "NoteQuery", "ItemPath", "Note", "Found", "Problem"} <= set(schemas)
    assert schemas["NoteBody"]["properties"]["title"]["pattern"] == "^[^\\x00]*$"
    add = doc["paths"]["/items/{item_id}/notes"]["post"]
    assert add["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NoteBody"
    }
    assert add["parameters"] == [
        {
            "name": "item_id",
            "in": "path",
            "required": True,
            "schema": {"format": "uuid", "title": "Item Id", "type": "string"},
        }
    ]
    assert set(add["responses"]) == {"201", "default"}
    found = doc["paths"]["/notes"]["get"]
    by_name = {p["name"]: p for p in found["parameters"]}
    assert by_name["q"]["required"] and not by_name["limit"]["required"]
    assert by_name["kind"]["explode"] and by_name["kind"]["schema"]["items"]["enum"] == ["a", "b"]
    assert doc["components"]["securitySchemes"]["cookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "revenge_session",
    }


async def test_a_router_mounted_under_a_prefix_keeps_its_declarations() -> None:
    api = Router()
    api.include("/api", make_router())
    transport = httpx.ASGITransport(app=HttpApp(api))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        reply = await c.get("/api/notes", params={"q": "x", "limit": "0"})
    assert reply.status_code == 422
    assert openapi_document(api, title="t", version="1")["paths"]["/api/notes"]["get"]["parameters"]


async def test_an_admin_route_refuses_others_before_decoding() -> None:
    from revenge.http import Principal

    async def authenticate(request: Request) -> Principal:
        role = "admin" if request.headers.get("authorization") == "Bearer admin" else "user"
        return Principal(1, "x", role, "session", "h")  # type: ignore[arg-type]

    router = Router()
    router.add("GET", "/notes", find, query=NoteQuery, response=Found, admin=True)
    transport = httpx.ASGITransport(app=HttpApp(router, authenticator=authenticate))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        user = await c.get("/notes", params={"limit": "bad"}, headers={"authorization": "Bearer u"})
        admin = await c.get(
            "/notes", params={"limit": "bad"}, headers={"authorization": "Bearer admin"}
        )
        ok = await c.get("/notes", params={"q": "x"}, headers={"authorization": "Bearer admin"})
    assert (user.status_code, user.json()["code"]) == (403, "admin_required")
    assert (admin.status_code, ok.status_code) == (422, 200)
    with pytest.raises(ValueError, match="both public"):
        router.add("GET", "/x", find, public=True, admin=True)


def test_answers_that_name_a_resource_link_to_its_routes() -> None:
    class Thing(Output):
        id: int

    class Things(Output):
        things: list[Thing]

    class ThingPath(Input):
        thing_id: int

    async def create(request: Request) -> Response:
        raise AssertionError

    async def drop(request: Request, *, params: ThingPath) -> Response:
        raise AssertionError

    router = Router()
    router.add("POST", "/things", create, response=Thing, status=201)
    router.add("GET", "/things", create, response=Things)
    router.add("DELETE", "/things/{thing_id}", drop, params=ThingPath, status=204)
    paths = openapi_document(router, title="t", version="1")["paths"]
    assert paths["/things"]["post"]["responses"]["201"]["links"] == {
        "delete_thing_id": {
            "operationId": "delete_things_thing_id",
            "parameters": {"thing_id": "$response.body#/id"},
        }
    }
    listed = paths["/things"]["get"]["responses"]["200"]["links"]["delete_thing_id"]
    assert listed["parameters"] == {"thing_id": "$response.body#/things/0/id"}
    assert "links" not in paths["/things/{thing_id}"]["delete"]["responses"]["204"]
