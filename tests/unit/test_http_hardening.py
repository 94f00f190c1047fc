"""Audit findings on the HTTP layer (issue 14): each test failed before its fix.

Bodies with no deadline (408), truncated bodies (400) on both faces, exceptions of
lower layers mapped to problems, log lines a client cannot forge, and the headers
every response and every private response carries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

import pytest

from revenge.http import HttpApp, Principal, Problem, Request, Response, Router, json_response
from revenge.runtime.errors import ServiceUnavailable
from tests.unit.test_http_rsgi import Protocol, Scope

ALICE = Principal(1, "alice", "user", "session", "h")


class RefusedValue(Exception):
    """Stands for a driver's data error (psycopg.DataError): http must not import it."""


class RefusedSubtype(RefusedValue):
    pass


async def echo(request: Request) -> Response:
    return json_response({"received": len(await request.body())})


async def refuse(request: Request) -> Response:
    raise RefusedSubtype("text fields cannot contain NUL")


async def down(request: Request) -> Response:
    raise ServiceUnavailable("database", "pool exhausted", retry_after=1)


async def boom(request: Request) -> Response:
    raise RuntimeError("boom")


async def mine(request: Request) -> Response:
    return json_response({"user": request.principal_or_raise.username})


async def cacheable(request: Request) -> Response:
    return json_response({"public": "ish"})


async def alice(request: Request) -> Principal:
    return ALICE


def make_app(body_timeout: float = 0.2) -> HttpApp:
    router = Router()
    router.add("POST", "/echo", echo, public=True)
    router.add("GET", "/refuse", refuse, public=True)
    router.add("GET", "/down/{name}", down, public=True)
    router.add("GET", "/boom/{name}", boom, public=True)
    router.add("GET", "/me", mine)
    router.add("GET", "/cacheable", cacheable, cache_control="private, max-age=60")
    router.add("GET", "/open", cacheable, public=True, cache_control="private, max-age=60")
    router.add("GET", "/plain", cacheable, public=True)
    return HttpApp(router, authenticator=alice, max_body_bytes=1024, body_timeout=body_timeout)


async def asgi_call(
    app: HttpApp, method: str, path: str, messages: list[dict[str, Any]] | None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """Drive the ASGI face; ``messages`` None means a client that never sends its body."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    pending = list(messages or [])
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages is None:
            await asyncio.sleep(3600)
        return pending.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    reply_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], reply_headers, body


async def test_a_body_that_never_comes_is_a_408_problem() -> None:
    status, headers, body = await asgi_call(
        make_app(), "POST", "/echo", None, **{"content-length": "100"}
    )
    assert status == 408 and b'"code":"body_timeout"' in body
    assert headers["connection"] == "close"


async def test_truncated_bodies_are_400_on_the_asgi_face() -> None:
    app = make_app()
    # fewer bytes than declared, then the peer half-closes (Granian: a disconnect)
    short = [
        {"type": "http.request", "body": b"x" * 10, "more_body": True},
        {"type": "http.disconnect"},
    ]
    status, _, body = await asgi_call(app, "POST", "/echo", short, **{"content-length": "100"})
    assert status == 400 and b'"code":"incomplete_body"' in body
    # chunked, a bad chunk after a good one: the same disconnect, no length to compare
    status, _, body = await asgi_call(app, "POST", "/echo", short)
    assert status == 400 and b'"code":"incomplete_body"' in body
    # fewer bytes than declared and the message claims its end
    status, _, _ = await asgi_call(
        app,
        "POST",
        "/echo",
        [{"type": "http.request", "body": b"x" * 10}],
        **{"content-length": "100"},
    )
    assert status == 400
    whole = [{"type": "http.request", "body": b"x" * 10}]
    status, _, body = await asgi_call(app, "POST", "/echo", whole, **{"content-length": "10"})
    assert (status, body) == (200, b'{"received":10}')


@pytest.mark.parametrize(
    ("chunks", "headers", "status"),
    [
        ((b"x" * 10, b"", b""), {"content-length": "100"}, 400),  # what Granian yields: short
        ((b"hello", b"", b""), {"transfer-encoding": "chunked"}, 400),  # and: a bad chunk
        ((b"hello", b"abc", b""), {"transfer-encoding": "chunked"}, 200),  # a good one
        ((b"x" * 10, b""), {"content-length": "10"}, 200),
        ((b"x" * 10, b""), {"content-length": "9"}, 400),
    ],
)
async def test_truncated_bodies_are_400_on_the_rsgi_face(
    chunks: tuple[bytes, ...], headers: dict[str, str], status: int
) -> None:
    protocol = Protocol(chunks)
    await make_app().__rsgi__(Scope("POST", "/echo", headers=headers), protocol)
    assert protocol.only[0] == status, protocol.only


async def test_registered_exceptions_become_their_problem() -> None:
    app = make_app()
    status, _, body = await asgi_call(app, "GET", "/refuse", [])
    assert status == 500  # nothing registered yet
    app.map_exception(
        RefusedValue, lambda exc: Problem(400, "invalid_input", "Invalid input", "refused")
    )
    status, _headers, body = await asgi_call(app, "GET", "/refuse", [])
    assert status == 400 and b'"code":"invalid_input"' in body
    assert b"NUL" not in body  # the driver's text is not shown


async def test_a_nul_in_a_path_parameter_is_a_400_problem() -> None:
    status, _, body = await asgi_call(make_app(), "GET", "/boom/a\x00b", [])
    assert status == 400 and b'"code":"invalid_path"' in body


@pytest.mark.parametrize("route", ["/down", "/boom"])
async def test_the_decoded_path_cannot_forge_a_log_line(
    route: str, caplog: pytest.LogCaptureFixture
) -> None:
    forged = "x\n2026-01-01 00:00:00 CRITICAL revenge: forged\r\x1b[2K"
    with caplog.at_level(logging.INFO, logger="revenge.http"):
        await asgi_call(make_app(), "GET", f"{route}/{forged}", [])
    assert caplog.records
    for record in caplog.records:
        line = record.getMessage()
        assert "\n" not in line and "\r" not in line and "\x1b" not in line, line
        assert "\\n2026-01-01" in line


async def test_every_response_says_nosniff_and_private_ones_no_store() -> None:
    app = make_app()
    for path, expected in (
        ("/me", "no-store"),  # authenticated JSON: no shared cache keeps it
        ("/cacheable", "private, max-age=60"),  # the route chose
        ("/open", "private, max-age=60"),
        ("/plain", None),  # public: no Cache-Control unless the route says
        ("/nowhere", None),
    ):
        _, headers, _ = await asgi_call(app, "GET", path, [])
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers.get("cache-control") == expected, path
    protocol = Protocol()
    await app.__rsgi__(Scope("GET", "/me"), protocol)
    assert protocol.only[1]["cache-control"] == "no-store"
    assert protocol.only[1]["x-content-type-options"] == "nosniff"
