"""The RSGI face with a stand-in for Granian's scope and protocol, and the cached-auth fast path."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import orjson
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
from revenge.http.request import RsgiRequest

ALICE = Principal(1, "alice", "user", "session", "h")


class Scope:
    """Granian's scope, counting which attributes the app reads."""

    def __init__(self, method: str = "GET", path: str = "/", **fields: Any) -> None:
        self.reads: list[str] = []
        self._fields = {
            "proto": "http",
            "method": method,
            "path": path,
            "query_string": "",
            "headers": {},
            "client": "10.1.2.3:5000",
            "scheme": "http",
            **fields,
        }

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "reads":
            raise AttributeError(name)
        self.reads.append(name)
        return self._fields[name]


class Protocol:
    """Granian's HTTP protocol: the body as async chunks, one ``response_bytes`` call."""

    def __init__(self, chunks: tuple[bytes, ...] = ()) -> None:
        self.chunks = chunks
        self.responses: list[tuple[int, list[tuple[str, str]], bytes]] = []

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._read()

    async def _read(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.responses.append((status, headers, body))

    @property
    def only(self) -> tuple[int, dict[str, str], Any]:
        assert len(self.responses) == 1
        status, headers, body = self.responses[0]
        return status, dict(headers), orjson.loads(body) if body else None


async def plain(request: Request) -> Response:
    return json_response({"path": request.path})


async def who(request: Request) -> Response:
    return json_response(
        {"client": request.client, "scheme": request.scheme, "query": request.query}
    )


async def echo(request: Request) -> Response:
    return json_response({"body": await request.json()})


async def me(request: Request) -> Response:
    return json_response({"user": request.principal_or_raise.username})


def make_app(authenticator: Any = None) -> HttpApp:
    router = Router()
    router.add("GET", "/plain", plain, public=True)
    router.add("GET", "/who", who, public=True)
    router.add("POST", "/echo", echo, public=True)
    router.add("GET", "/me", me)
    if authenticator is None:
        return HttpApp(router, max_body_bytes=16)
    return HttpApp(router, authenticator=authenticator, max_body_bytes=16)


async def test_rare_scope_fields_are_read_only_when_used() -> None:
    scope, protocol = Scope(path="/plain", query_string="a=1"), Protocol()
    await make_app().__rsgi__(scope, protocol)
    headers = {"content-type": "application/json", "x-content-type-options": "nosniff"}
    status, sent, body = protocol.only
    assert sent.pop("x-request-id")  # on every response (made here: no trusted proxy)
    assert (status, sent, body) == (200, headers, {"path": "/plain"})
    assert not {"client", "scheme", "query_string"} & set(scope.reads)

    scope, protocol = Scope(path="/who", query_string="a=1&a=2&b=", scheme="https"), Protocol()
    await make_app().__rsgi__(scope, protocol)
    body = protocol.only[2]
    assert body == {"client": "10.1.2.3", "scheme": "https", "query": {"a": ["1", "2"], "b": [""]}}


@pytest.mark.parametrize(
    ("client", "expected"), [("10.0.0.9:443", "10.0.0.9"), ("[::1]:8080", "[::1]"), ("", "")]
)
def test_rsgi_client_is_the_peer_without_port(client: str, expected: str) -> None:
    request = RsgiRequest(Scope(client=client), Protocol(), 16)
    assert request.client == expected and request.path_params == {} and request.principal is None


async def test_rsgi_body_is_read_from_the_protocol_with_the_cap() -> None:
    headers = {"content-type": "application/json"}
    protocol = Protocol((b'{"a"', b":[1]}"))
    await make_app().__rsgi__(Scope("POST", "/echo", headers=headers), protocol)
    assert protocol.only[0] == 200 and protocol.only[2] == {"body": {"a": [1]}}

    protocol = Protocol((b'{"a":"', b"x" * 20, b'"}'))
    await make_app().__rsgi__(Scope("POST", "/echo", headers=headers), protocol)
    status, reply_headers, problem = protocol.only
    assert status == 413 and problem["code"] == "payload_too_large"
    assert reply_headers["content-type"] == "application/problem+json"


async def test_websocket_scopes_are_not_answered() -> None:
    protocol = Protocol()
    await make_app().__rsgi__(Scope(proto="ws", path="/plain"), protocol)
    assert protocol.responses == []


async def test_unknown_path_and_method_are_problems_on_rsgi() -> None:
    protocol = Protocol()
    await make_app().__rsgi__(Scope(path="/nowhere"), protocol)
    assert protocol.only[0] == 404 and protocol.only[2]["instance"] == "/nowhere"
    protocol = Protocol()
    await make_app().__rsgi__(Scope("DELETE", "/plain"), protocol)
    status, headers, problem = protocol.only
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert problem["code"] == "method_not_allowed"
    assert problem["request_id"] == headers["x-request-id"]  # a person can quote it


class CachingAuthenticator:
    """An authenticator with the optional ``cached`` fast path; records which path answered."""

    def __init__(self, hit: Principal | None, fail: Problem | None = None) -> None:
        self.hit = hit
        self.fail = fail
        self.cached_calls = 0
        self.awaited = 0

    def cached(self, request: Request) -> Principal | None:
        self.cached_calls += 1
        if self.fail is not None:
            raise self.fail
        return self.hit

    async def __call__(self, request: Request) -> Principal:
        self.awaited += 1
        await asyncio.sleep(0)
        return Principal(2, "bob", "user", "session", "h2")


async def test_a_cached_hit_answers_without_awaiting_the_authenticator() -> None:
    auth = CachingAuthenticator(ALICE)
    protocol = Protocol()
    await make_app(auth).__rsgi__(Scope(path="/me"), protocol)
    assert protocol.only[2] == {"user": "alice"}
    assert (auth.cached_calls, auth.awaited) == (1, 0)


async def test_a_cached_miss_awaits_the_authenticator() -> None:
    auth = CachingAuthenticator(None)
    protocol = Protocol()
    await make_app(auth).__rsgi__(Scope(path="/me"), protocol)
    assert protocol.only[2] == {"user": "bob"}
    assert (auth.cached_calls, auth.awaited) == (1, 1)


async def test_a_problem_from_the_cached_path_is_the_answer() -> None:
    denied = Problem(401, "unauthenticated", "Authentication required", headers=[("x-why", "1")])
    auth = CachingAuthenticator(ALICE, fail=denied)
    protocol = Protocol()
    await make_app(auth).__rsgi__(Scope(path="/me"), protocol)
    status, headers, problem = protocol.only
    assert status == 401 and problem["code"] == "unauthenticated" and headers["x-why"] == "1"
    assert auth.awaited == 0


async def test_public_routes_never_ask_the_authenticator() -> None:
    auth = CachingAuthenticator(ALICE)
    protocol = Protocol()
    await make_app(auth).__rsgi__(Scope(path="/plain"), protocol)
    assert protocol.only[0] == 200 and (auth.cached_calls, auth.awaited) == (0, 0)


async def test_without_an_authenticator_protected_routes_are_401() -> None:
    protocol = Protocol()
    await make_app().__rsgi__(Scope(path="/me"), protocol)
    assert protocol.only[0] == 401


def test_rsgi_start_up_freezes_what_it_built() -> None:
    started: list[str] = []

    class Lifecycle:
        async def start(self) -> None:
            started.append("db")

        async def stop(self) -> None:
            started.append("stopped")

    app = HttpApp(Router(), lifecycle=Lifecycle())
    loop = asyncio.new_event_loop()
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        app.__rsgi_init__(loop)
        assert started == ["db"] and gc.get_freeze_count() > 0
        app.__rsgi_del__(loop)
        assert started == ["db", "stopped"]
    finally:
        gc.unfreeze()
        loop.close()
