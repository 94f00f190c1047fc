"""The body-size boundary on both faces: exactly ``max_body_bytes`` is read, one byte more is 413.

Declared (``Content-Length``) and undeclared (chunked) bodies are checked on
separate paths, so each gets its own case.
"""

from __future__ import annotations

from typing import Any

import pytest

from revenge.http import HttpApp, Request, Response, Router, json_response
from tests.unit.test_http_rsgi import Protocol, Scope

LIMIT = 1024


async def size(request: Request) -> Response:
    return json_response({"bytes": len(await request.body())})


def make_app() -> HttpApp:
    router = Router()
    router.add("POST", "/upload", size, public=True)
    return HttpApp(router, max_body_bytes=LIMIT)


def _chunks(n: int) -> list[bytes]:
    """``n`` bytes in three uneven chunks (the limit falls inside the last one)."""
    body = b"x" * n
    return [body[:100], body[100:700], body[700:]]


async def _asgi(n: int, *, declared: bool) -> tuple[int, bytes]:
    chunks = _chunks(n)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-length", str(n).encode())] if declared else []
    scope = {"type": "http", "method": "POST", "path": "/upload", "headers": headers}
    await make_app()(scope, receive, send)  # type: ignore[arg-type]
    return int(sent[0]["status"]), b"".join(m.get("body", b"") for m in sent[1:])


async def _rsgi(n: int, *, declared: bool) -> tuple[int, Any]:
    headers = {"content-length": str(n)} if declared else {}
    protocol = Protocol(tuple(_chunks(n)))
    await make_app().__rsgi__(Scope("POST", "/upload", headers=headers), protocol)
    status, _, body = protocol.only
    return status, body


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_asgi_reads_exactly_the_limit_and_refuses_one_byte_more(declared: bool) -> None:
    status, body = await _asgi(LIMIT, declared=declared)
    assert (status, body) == (200, b'{"bytes":1024}')
    status, body = await _asgi(LIMIT + 1, declared=declared)
    assert status == 413 and b'"payload_too_large"' in body


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_rsgi_reads_exactly_the_limit_and_refuses_one_byte_more(declared: bool) -> None:
    assert await _rsgi(LIMIT, declared=declared) == (200, {"bytes": LIMIT})
    status, problem = await _rsgi(LIMIT + 1, declared=declared)
    assert (status, problem["code"]) == (413, "payload_too_large")


async def _asgi_declared_only(length: str) -> tuple[int, bytes]:
    """A request that declares ``length`` and whose body must never be read."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read although its declared length settles it")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-length", length.encode())]
    scope = {"type": "http", "method": "POST", "path": "/upload", "headers": headers}
    await make_app()(scope, receive, send)  # type: ignore[arg-type]
    return int(sent[0]["status"]), b"".join(m.get("body", b"") for m in sent[1:])


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    status, body = await _asgi_declared_only(str(LIMIT + 1))
    assert status == 413 and b'"payload_too_large"' in body


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", ""])
async def test_a_malformed_content_length_is_a_400_problem(length: str) -> None:
    status, body = await _asgi_declared_only(length)
    assert status == 400 and b'"bad_content_length"' in body


@pytest.mark.parametrize("declared", [LIMIT, 10])
async def test_a_body_shorter_than_its_content_length_is_incomplete(declared: int) -> None:
    """The sender says the body ended with fewer bytes than it declared: a 400, not a read."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": b"x" * 9, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-length", str(declared).encode())]
    scope = {"type": "http", "method": "POST", "path": "/upload", "headers": headers}
    await make_app()(scope, receive, send)  # type: ignore[arg-type]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert sent[0]["status"] == 400 and b'"incomplete_body"' in body
