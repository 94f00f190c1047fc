"""Files over real sockets on both faces: Range (RFC 9110), validators, HEAD, streams, truncation.

Each face is a Granian process serving ``tests/e2e/media_app.py``; every row of the
conformance table runs against both.
"""

from __future__ import annotations

import email.utils
import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Server, free_port, granian_argv, run_server

pytestmark = pytest.mark.e2e

SIZE = 1000
DATA = bytes(range(256)) * 3 + bytes(range(232))
assert len(DATA) == SIZE
BIG = 48 << 20


@pytest.fixture(scope="module", params=["rsgi", "asgi"])
def media(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp(f"media-{request.param}")
    (folder / "clip.bin").write_bytes(DATA)
    (folder / "empty.bin").write_bytes(b"")
    (folder / "sub").mkdir()
    port = free_port()
    argv = granian_argv(port, "--interface", request.param, target="tests.e2e.media_app:app")
    env = {"REVENGE_TEST_MEDIA_DIR": str(folder), "REVENGE_TEST_BODY_TIMEOUT": "2"}
    with run_server(argv, port, folder, env) as server:
        server.folder = folder  # type: ignore[attr-defined]
        yield server


def get(server: Server, path: str = "/files/clip.bin", **headers: str) -> httpx.Response:
    encoded = {name: value.encode("utf-8") for name, value in headers.items()}
    return httpx.get(server.base_url + path, headers=encoded, timeout=10)


# (Range header, status, Content-Range, body slice); None for the slice: no body check
TABLE: list[tuple[str, int, str | None, slice | None]] = [
    ("bytes=0-99", 206, "bytes 0-99/1000", slice(0, 100)),
    ("bytes=0-0", 206, "bytes 0-0/1000", slice(0, 1)),
    ("bytes=999-999", 206, "bytes 999-999/1000", slice(999, 1000)),
    ("bytes=-100", 206, "bytes 900-999/1000", slice(900, 1000)),  # suffix
    ("bytes=-5000", 206, "bytes 0-999/1000", slice(0, 1000)),  # suffix past the start
    ("bytes=900-", 206, "bytes 900-999/1000", slice(900, 1000)),  # open-ended
    ("bytes=990-2000", 206, "bytes 990-999/1000", slice(990, 1000)),  # end past the end
    ("bytes=0-99999999999999999999999999", 206, "bytes 0-999/1000", slice(0, 1000)),
    ("BYTES = 10-19", 206, "bytes 10-19/1000", slice(10, 20)),  # unit is case-insensitive
    ("bytes= 10-19 ,", 206, "bytes 10-19/1000", slice(10, 20)),  # list whitespace, empty item
    ("bytes=0-9,20-29", 206, "bytes 0-9/1000", slice(0, 10)),  # several: the first
    ("bytes=5000-,20-29", 206, "bytes 20-29/1000", slice(20, 30)),  # first satisfiable
    ("bytes=1000-", 416, "bytes */1000", None),  # unsatisfiable
    ("bytes=5000-6000", 416, "bytes */1000", None),
    ("bytes=99999999999999999999999999-", 416, "bytes */1000", None),
    ("bytes=-0", 416, "bytes */1000", None),  # suffix-zero
    ("bytes=5000-,6000-", 416, "bytes */1000", None),
    ("bytes=9-1", 200, None, slice(0, 1000)),  # reversed: invalid, ignored
    ("bytes=", 200, None, slice(0, 1000)),  # malformed from here on
    ("bytes=abc", 200, None, slice(0, 1000)),
    ("bytes=1-2-3", 200, None, slice(0, 1000)),
    ("bytes=--1", 200, None, slice(0, 1000)),
    ("bytes=0-9,x", 200, None, slice(0, 1000)),  # one bad range spoils the set
    ("bytes 0-9", 200, None, slice(0, 1000)),
    ("items=0-9", 200, None, slice(0, 1000)),  # another unit
    ("bytes=\u0660-9", 200, None, slice(0, 1000)),  # a non-ASCII digit
    ("bytes=" + ",".join(f"{i}-{i}" for i in range(100)), 200, None, slice(0, 1000)),  # too many
]


@pytest.mark.parametrize(("header", "status", "content_range", "part"), TABLE)
def test_range_table(
    media: Server, header: str, status: int, content_range: str | None, part: slice | None
) -> None:
    reply = get(media, range=header)
    assert reply.status_code == status, (header, reply.text[:200])
    assert reply.headers.get("content-range") == content_range
    assert reply.headers["accept-ranges"] == "bytes"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert int(reply.headers["content-length"]) == len(reply.content)
    if status == 416:
        assert reply.headers["content-type"] == "application/problem+json"
        assert reply.json()["code"] == "range_not_satisfiable"
    if part is not None:
        assert reply.content == DATA[part]
        assert reply.headers["content-type"] == "video/mp4"


def test_validators_and_conditional_requests(media: Server) -> None:
    plain = get(media)
    assert plain.status_code == 200 and plain.content == DATA
    etag, modified = plain.headers["etag"], plain.headers["last-modified"]
    assert etag.startswith('"') and etag.endswith('"')  # strong
    stamp = email.utils.parsedate_to_datetime(modified).timestamp()
    assert stamp == int(os.stat(media.folder / "clip.bin").st_mtime)  # type: ignore[attr-defined]

    for header in (etag, f"W/{etag}", '"other", ' + etag, "*"):
        reply = get(media, **{"if-none-match": header})
        assert reply.status_code == 304, header
        assert reply.content == b"" and reply.headers["etag"] == etag
    assert get(media, **{"if-none-match": '"other"'}).status_code == 200
    assert get(media, **{"if-modified-since": modified}).status_code == 304
    assert get(media, **{"if-modified-since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200
    assert get(media, **{"if-modified-since": "not a date"}).status_code == 200
    # If-None-Match wins over If-Modified-Since
    both = {"if-none-match": '"other"', "if-modified-since": modified}
    assert get(media, **both).status_code == 200

    assert get(media, **{"if-match": '"other"'}).status_code == 412
    assert get(media, **{"if-match": etag}).status_code == 200
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert get(media, **{"if-unmodified-since": old}).status_code == 412

    ranged = {"range": "bytes=0-9"}
    assert get(media, **ranged, **{"if-range": etag}).status_code == 206
    assert get(media, **ranged, **{"if-range": modified}).status_code == 206
    for stale in ('"other"', f"W/{etag}", old):  # a weak tag never matches If-Range
        reply = get(media, **ranged, **{"if-range": stale})
        assert reply.status_code == 200 and reply.content == DATA, stale


def test_head_has_the_headers_of_get_and_no_body(media: Server) -> None:
    for extra in ({}, {"range": "bytes=0-9"}):  # Range applies to GET only (RFC 9110 14.2)
        head = httpx.head(media.base_url + "/files/clip.bin", headers=extra, timeout=10)
        plain = get(media)
        assert head.status_code == 200 and head.content == b""
        for name in ("content-length", "content-type", "etag", "last-modified", "accept-ranges"):
            assert head.headers[name] == plain.headers[name], name
    head_304 = httpx.head(
        media.base_url + "/files/clip.bin",
        headers={"if-none-match": plain.headers["etag"]},
        timeout=10,
    )
    assert head_304.status_code == 304


def test_empty_missing_and_odd_files(media: Server) -> None:
    empty = get(media, "/files/empty.bin", range="bytes=0-0")
    assert (empty.status_code, empty.content, empty.headers["content-length"]) == (200, b"", "0")
    for path in ("/files/none.bin", "/files/sub", "/files/.."):
        missing = get(media, path)
        assert missing.status_code == 404, path
        assert missing.headers["content-type"] == "application/problem+json"
    nul = get(media, "/files/clip%00.bin")
    assert (nul.status_code, nul.json()["code"]) == (400, "invalid_path")


def test_streams_are_chunked_and_a_short_one_is_cut(media: Server) -> None:
    reply = get(media, "/stream")
    assert reply.status_code == 200
    assert reply.content == b"A" * 1000 + b"B" * 1000 + b"C" * 1000
    assert reply.headers.get("transfer-encoding") == "chunked"
    head = httpx.head(media.base_url + "/stream", timeout=10)
    assert head.status_code == 200 and head.content == b""

    with pytest.raises(httpx.RemoteProtocolError):  # the peer closed before 5000 bytes
        get(media, "/short-stream")
    assert get(media, "/stream").status_code == 200  # and the server serves on


def address(server: Server) -> tuple[str, int]:
    host, port = server.base_url.removeprefix("http://").split(":")
    return host, int(port)


def _raw_get(server: Server, path: str) -> socket.socket:
    sock = socket.create_connection(address(server), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the headers"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _drain(sock: socket.socket) -> int:
    total = 0
    try:
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return total


def test_a_file_that_shrinks_while_sent_cuts_the_connection(media: Server) -> None:
    """The Content-Length sent is the stat'ed size; the body never claims to be whole when short."""
    path = media.folder / "big.bin"  # type: ignore[attr-defined]
    path.write_bytes(b"\x01" * BIG)
    try:
        for ranged in (False, True):
            sock = _raw_get(media, "/files/big.bin")
            if ranged:
                sock.close()
                sock = socket.create_connection(address(media), timeout=10)
                sock.sendall(
                    b"GET /files/big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-\r\n\r\n"
                )
            head, rest = _read_head(sock)
            assert head.split(b" ")[1] in (b"200", b"206")
            declared = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
            )
            # The server is now blocked on a full socket; cut the file well short.
            time.sleep(0.2)
            with path.open("r+b") as handle:
                handle.truncate(1 << 20)
            received = len(rest) + _drain(sock)
            sock.close()
            assert received < declared, "a short file was sent as a whole message"
            path.write_bytes(b"\x01" * BIG)
        assert get(media).status_code == 200  # the worker lives on
        assert "Traceback" not in media.output()
    finally:
        path.unlink()


def test_a_client_that_leaves_stops_its_stream_and_file(media: Server) -> None:
    path = media.folder / "leave.bin"  # type: ignore[attr-defined]
    path.write_bytes(b"\x02" * BIG)
    before = get(media, "/stats").json()["closed_streams"]
    for target in ("/endless", "/files/leave.bin", "/files/leave.bin?r"):
        sock = _raw_get(media, target)
        if target.endswith("?r"):
            sock.close()
            sock = socket.create_connection(address(media), timeout=10)
            sock.sendall(b"GET /files/leave.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=10-\r\n\r\n")
        _read_head(sock)
        received = 0
        while received < 1 << 20:
            received += len(sock.recv(65536))
        sock.close()
    deadline = time.monotonic() + 30
    while get(media, "/stats").json()["closed_streams"] == before:
        assert time.monotonic() < deadline, "the endless stream outlived its client"
        time.sleep(0.05)
    assert get(media).status_code == 200
    assert "Traceback" not in media.output(), media.output()[-3000:]
