"""The HTTP layer through its ASGI face: routing, problems, body limits, auth gate, lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from revenge.http import (
    HttpApp,
    Principal,
    Problem,
    Request,
    Response,
    Router,
    json_response,
)
from revenge.runtime.errors import ServiceUnavailable

ALICE = Principal(1, "alice", "user", "session", "h")


async def echo(request: Request) -> Response:
    return json_response({"params": request.path_params, "body": await request.json()})


async def me(request: Request) -> Response:
    return json_response({"user": request.principal_or_raise.username})


async def boom(request: Request) -> Response:
    raise RuntimeError("secret detail that must not leak")


async def down(request: Request) -> Response:
    raise ServiceUnavailable("database", "connection pool exhausted", retry_after=3)


async def authenticate(request: Request) -> Principal:
    if request.headers.get("authorization") != "Bearer good":
        raise Problem(401, "unauthenticated", "Authentication required")
    return ALICE


def make_app(**kwargs: object) -> HttpApp:
    router = Router()
    router.add("POST", "/items/{item_id}/notes/{note}", echo, public=True)
    router.add("GET", "/me", me)
    router.add("GET", "/boom", boom, public=True)
    router.add("GET", "/down", down, public=True)
    return HttpApp(router, authenticator=authenticate, max_body_bytes=2048, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_path_params_and_json(client: httpx.AsyncClient) -> None:
    r = await client.post("/items/7/notes/a", json={"x": 1})
    assert r.status_code == 200
    assert r.json() == {"params": {"item_id": "7", "note": "a"}, "body": {"x": 1}}


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"content": b"{nope", "headers": {"content-type": "application/json"}},
            400,
            "malformed_json",
        ),
        (
            {"content": b"x=1", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        ({"json": {"big": "x" * 4096}}, 413, "payload_too_large"),
    ],
)
async def test_bad_bodies_are_problems(
    client: httpx.AsyncClient, kwargs: dict[str, object], status: int, code: str
) -> None:
    r = await client.post("/items/1/notes/a", **kwargs)  # type: ignore[arg-type]
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert (body["status"], body["code"]) == (status, code)


async def test_body_limit_holds_without_content_length() -> None:
    app = make_app()
    sent: list[dict[str, object]] = []
    chunks = [b'{"a": "' + b"x" * 1500, b"x" * 1500 + b'"}']

    async def receive() -> dict[str, object]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/items/1/notes/a",
        "headers": [(b"content-type", b"application/json")],
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 413


async def test_not_found_and_method_not_allowed(client: httpx.AsyncClient) -> None:
    r = await client.get("/nowhere")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = await client.get("/items/1/notes/a")
    assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")
    assert r.headers["allow"] == "POST"


async def test_empty_path_param_does_not_match(client: httpx.AsyncClient) -> None:
    r = await client.post("/items//notes/a", json={})
    assert r.status_code == 404


async def test_auth_gate(client: httpx.AsyncClient) -> None:
    r = await client.get("/me")
    assert (r.status_code, r.json()["code"]) == (401, "unauthenticated")
    r = await client.get("/me", headers={"authorization": "Bearer good"})
    assert r.json() == {"user": "alice"}


async def test_unhandled_error_is_a_500_problem_without_details(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    r = await client.get("/boom")
    assert (r.status_code, r.json()["code"]) == (500, "internal_error")
    assert "secret detail" not in r.text and "Traceback" not in r.text
    assert "unhandled error" in caplog.text


async def test_service_unavailable_is_503_with_retry_after(client: httpx.AsyncClient) -> None:
    r = await client.get("/down")
    assert (r.status_code, r.json()["code"]) == (503, "database_unavailable")
    assert r.headers["retry-after"] == "3"


async def test_the_app_starts_and_stops_its_lifecycle_once() -> None:
    """The runtime is the one lifecycle: started once, stopped once, a failing stop logged."""
    events: list[str] = []

    class Recorder:
        async def start(self) -> None:
            events.append("start")

        async def stop(self) -> None:
            events.append("stop")
            raise RuntimeError("a stop failure is logged, not raised")

    app = HttpApp(Router(), lifecycle=Recorder())
    await app.startup()
    await app.startup()
    await app.shutdown()
    await app.shutdown()
    assert events == ["start", "stop"]

    class Failing(Recorder):
        async def start(self) -> None:
            raise RuntimeError("database down")

    app = HttpApp(Router(), lifecycle=Failing())
    with pytest.raises(RuntimeError, match="database down"):
        await app.startup()
    await app.shutdown()  # nothing started: nothing to stop
    assert events == ["start", "stop"]


def test_duplicate_route_is_rejected() -> None:
    router = Router()
    router.add("GET", "/x", me)
    with pytest.raises(ValueError, match="twice"):
        router.add("GET", "/x", me)
    with pytest.raises(ValueError, match="must start"):
        router.add("GET", "x", me)


async def test_a_services_domain_error_is_problem_json_with_its_stable_code() -> None:
    from revenge.runtime.errors import DomainError

    async def refuse(request: Request) -> Response:
        raise DomainError(
            "title_taken", "Title taken", kind="conflict", detail="x", extra={"field": "title"}
        )

    router = Router()
    router.add("POST", "/things", refuse, public=True)
    transport = httpx.ASGITransport(app=HttpApp(router))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        reply = await client.post("/things")
    assert reply.status_code == 409
    assert reply.headers["content-type"] == "application/problem+json"
    body = reply.json()
    assert (body["code"], body["title"], body["detail"], body["field"]) == (
        "title_taken",
        "Title taken",
        "x",
        "title",
    )
