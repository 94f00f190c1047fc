"""Audit findings (issue 14) against the real app over real sockets, on both faces.

NUL bytes (1), a body with no deadline and stalled connections (2), truncated
bodies (7) and the headers of private responses (10). Each test failed before
its fix: a 500 from PostgreSQL, a login held until the client gave up, a short
body parsed as whole, a private response without ``Cache-Control``.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from revenge.app import build_app
from revenge.config import load_settings
from revenge.http import Request, Response
from tests.cheap_settings import FAST_ARGON2
from tests.conftest import _drop_database, _fresh_database
from tests.e2e.conftest import Server, free_port, granian_argv, run_server, serve_argv

pytestmark = pytest.mark.e2e

PASSWORD = "a long enough admin password"
FAST = {"REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": PASSWORD, **FAST_ARGON2}
LOGIN = "/api/v1/auth/login"
STALLED = 300


@pytest.fixture(scope="module", params=["rsgi", "asgi"])
def server(
    request: pytest.FixtureRequest, hardening_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    port = free_port()
    env = {"REVENGE_DATABASE__URL": hardening_db, "REVENGE_SERVER__BODY_TIMEOUT": "2s", **FAST}
    folder = tmp_path_factory.mktemp(f"hardening-{request.param}")
    with run_server(granian_argv(port, "--interface", request.param), port, folder, env) as running:
        yield running


@pytest.fixture(scope="module")
def hardening_db() -> Iterator[str]:
    """One database for every server of this module (the bootstrap admin lives there)."""
    name, url = _fresh_database("revenge_t")
    try:
        yield url
    finally:
        _drop_database(name)


def token(server: Server) -> str:
    reply = httpx.post(
        server.base_url + LOGIN, json={"username": "admin", "password": PASSWORD}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["token"])


def address(server: Server) -> tuple[str, int]:
    host, port = server.base_url.removeprefix("http://").split(":")
    return host, int(port)


def raw(server: Server, request: bytes, *, half_close: bool) -> bytes:
    with socket.create_connection(address(server), timeout=15) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


def test_nul_bytes_are_refused_as_problems(server: Server) -> None:
    base = server.base_url
    login = httpx.post(base + LOGIN, json={"username": "ad\u0000min", "password": "x"})
    assert login.status_code == 422 and login.json()["field"] == "username", login.text
    login = httpx.post(base + LOGIN, json={"username": "admin", "password": "x\u0000"})
    assert login.status_code == 422 and login.json()["field"] == "password", login.text
    # before authentication: the path can name nothing
    nul_path = httpx.delete(base + "/api/v1/auth/sessions/%00")
    assert (nul_path.status_code, nul_path.json()["code"]) == (400, "invalid_path")
    auth = {"authorization": f"Bearer {token(server)}"}
    key = httpx.post(base + "/api/v1/auth/api-keys", json={"name": "k\u0000ey"}, headers=auth)
    assert key.status_code == 422 and key.json()["field"] == "name", key.text
    nul_path = httpx.delete(base + "/api/v1/auth/api-keys/1%002", headers=auth)
    assert nul_path.status_code == 400
    assert "Traceback" not in server.output()


def test_private_responses_are_not_stored_and_none_is_sniffed(server: Server) -> None:
    auth = {"authorization": f"Bearer {token(server)}"}
    for path in ("/api/v1/me", "/api/v1/auth/sessions", "/api/v1/auth/api-keys"):
        reply = httpx.get(server.base_url + path, headers=auth)
        assert reply.status_code == 200, (path, reply.text)
        assert reply.headers["cache-control"] == "no-store", path
        assert reply.headers["x-content-type-options"] == "nosniff", path
    for path in ("/health/live", "/api/v1/me", "/nowhere", "/api/v1/openapi.json"):
        assert httpx.get(server.base_url + path).headers["x-content-type-options"] == "nosniff"
    login = httpx.post(
        server.base_url + LOGIN, json={"username": "admin", "password": PASSWORD}, timeout=30
    )
    key = httpx.post(server.base_url + "/api/v1/auth/api-keys", json={"name": "k"}, headers=auth)
    for reply in (login, key):  # secrets in the answer: one no-store, not two
        assert reply.headers.get_list("cache-control") == ["no-store"], reply.headers


def test_truncated_bodies_are_400(server: Server) -> None:
    head = f"POST {LOGIN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    short = raw(
        server,
        (head + "Content-Length: 100\r\n\r\n").encode() + b'{"username": "admin"',
        half_close=True,
    )
    assert short.startswith(b"HTTP/1.1 400"), short
    assert b'"code":"incomplete_body"' in short
    bad_chunk = raw(
        server,
        (head + "Transfer-Encoding: chunked\r\n\r\n").encode()
        + b'5\r\n{"use\r\nZZ\r\nrname": "admin"}\r\n0\r\n\r\n',
        half_close=False,
    )
    assert bad_chunk.startswith(b"HTTP/1.1 400"), bad_chunk
    assert b'"code":"incomplete_body"' in bad_chunk


def test_a_body_that_stalls_gets_a_408(server: Server) -> None:
    stalled = raw(
        server,
        f"POST {LOGIN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{".encode(),
        half_close=False,
    )
    assert stalled.startswith(b"HTTP/1.1 408"), stalled
    assert b'"code":"body_timeout"' in stalled


async def test_a_database_data_error_is_a_400_problem(pg_url: str) -> None:
    """What PostgreSQL refuses in a value that got past validation is the client's input."""
    http = build_app(load_settings(env={"REVENGE_DATABASE__URL": pg_url}))

    async def store_text(request: Request) -> Response:
        async with await psycopg.AsyncConnection.connect(pg_url) as conn:
            await conn.execute("SELECT %s::text", ["a\x00b"])  # raises psycopg.DataError
        raise AssertionError("PostgreSQL took a NUL")

    http.router.add("GET", "/test/data-error", store_text, public=True)
    transport = httpx.ASGITransport(app=http)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        reply = await client.get("/test/data-error")
    assert (reply.status_code, reply.json()["code"]) == (400, "invalid_input")


def test_stalled_connections_do_not_stop_other_clients(hardening_db: str, tmp_path: Path) -> None:
    """`revenge serve` (its backpressure setting) with 300 bodies that never come."""
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": hardening_db,
        "REVENGE_SERVER__BODY_TIMEOUT": "5s",
        "REVENGE_SERVER__DATA_DIR": str(tmp_path / "data"),
        **FAST,
    }
    with run_server(serve_argv(port), port, tmp_path, env) as served:
        socks: list[socket.socket] = []
        try:
            request = (
                f"POST {LOGIN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 100\r\n\r\n{"
            ).encode()
            for _ in range(STALLED):
                sock = socket.create_connection(address(served), timeout=15)
                sock.sendall(request)
                socks.append(sock)
            # While every one of them waits for its body, others are served.
            with httpx.Client(base_url=served.base_url, timeout=10) as client:
                for _ in range(20):
                    assert client.get("/health/live").status_code == 200
                assert (
                    client.post(LOGIN, json={"username": "admin", "password": PASSWORD}).status_code
                    == 200
                )
            # And each stalled one is answered, then let go, when its deadline passes.
            answered = 0
            deadline = time.monotonic() + 60
            pending = list(socks)
            while pending and time.monotonic() < deadline:
                readable, _, _ = select.select(pending, [], [], 1)
                for sock in readable:
                    if sock.recv(65536).startswith(b"HTTP/1.1 408"):
                        answered += 1
                    pending.remove(sock)
            assert answered == STALLED
        finally:
            for sock in socks:
                sock.close()
        assert "Traceback" not in served.output()


def test_serve_hands_its_backpressure_to_granian(hardening_db: str, tmp_path: Path) -> None:
    """With ``server.backpressure`` 16, sixteen stalled bodies hold the worker's every slot.

    A ninth request is then not taken up until a stalled one's deadline frees a slot:
    what the setting bounds (and why its default is far above a few hundred).
    """
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": hardening_db,
        "REVENGE_SERVER__BODY_TIMEOUT": "8s",
        "REVENGE_SERVER__BACKPRESSURE": "16",
        "REVENGE_SERVER__DATA_DIR": str(tmp_path / "data"),
        **FAST,
    }
    with run_server(serve_argv(port), port, tmp_path, env) as served:
        request = (
            f"POST {LOGIN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n{"
        ).encode()
        stalled = [socket.create_connection(address(served), timeout=15) for _ in range(16)]
        try:
            for sock in stalled:
                sock.sendall(request)
            time.sleep(1.5)  # let the worker take every one of them up (well within 8 s)
            with socket.create_connection(address(served), timeout=15) as waiting:
                waiting.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                ready, _, _ = select.select([waiting], [], [], 3)
                assert not ready, "a request was served past the backpressure bound"
                answer = waiting.recv(65536)  # once a deadline has freed a slot
                assert answer.startswith(b"HTTP/1.1 200"), answer
            for sock in stalled:
                assert sock.recv(65536).startswith(b"HTTP/1.1 408")
        finally:
            for sock in stalled:
                sock.close()
