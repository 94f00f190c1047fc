"""A small app on the HTTP layer alone, served by Granian in the media e2e tests.

``REVENGE_TEST_MEDIA_DIR`` is the folder ``GET /files/{name}`` serves; the stream
and echo routes exercise streaming bodies and request-body reading.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from revenge.http import HttpApp, Request, Response, Router, json_response
from revenge.http.files import file_response
from revenge.http.response import StreamResponse

MEDIA = Path(os.environ.get("REVENGE_TEST_MEDIA_DIR", "/nonexistent"))


async def serve_file(request: Request) -> Response:
    """One file of the media folder, with Range and conditional requests."""
    name = request.path_params["name"]
    return await file_response(request, MEDIA / name, content_type="video/mp4")


async def _chunks(count: int, size: int) -> AsyncIterator[bytes]:
    for index in range(count):
        yield bytes([65 + index % 26]) * size


async def stream(request: Request) -> Response:
    """Three chunks, length unknown up front: chunked."""
    return StreamResponse(200, b"", [("content-type", "text/plain")], _chunks(3, 1000))


async def short_stream(request: Request) -> Response:
    """Declares 5000 bytes, yields 2000: the connection must be cut, not the message ended."""
    headers = [("content-type", "text/plain"), ("content-length", "5000")]
    return StreamResponse(200, b"", headers, _chunks(2, 1000))


closed_streams = 0


async def _endless() -> AsyncIterator[bytes]:
    global closed_streams
    try:
        while True:
            yield b"x" * 65536
            await asyncio.sleep(0.001)  # Granian's RSGI stream channel is unbounded: pace it
    finally:
        closed_streams += 1


async def endless(request: Request) -> Response:
    """Never ends on its own: the server must stop it when the client goes."""
    return StreamResponse(200, b"", [("content-type", "application/octet-stream")], _endless())


async def stats(request: Request) -> Response:
    return json_response({"closed_streams": closed_streams})


async def echo(request: Request) -> Response:
    """The body's length, read within the body deadline."""
    return json_response({"received": len(await request.body())})


router = Router()
media = Router()
media.add("GET", "/{name}", serve_file, public=True)
router.include("/files", media)
router.add("GET", "/stream", stream, public=True)
router.add("GET", "/short-stream", short_stream, public=True)
router.add("POST", "/echo", echo, public=True)
router.add("GET", "/endless", endless, public=True)
router.add("GET", "/stats", stats, public=True)


async def live(request: Request) -> Response:
    return json_response({"status": "alive"})


router.add("GET", "/health/live", live, public=True)


app = HttpApp(
    router,
    max_body_bytes=1 << 20,
    body_timeout=float(os.environ.get("REVENGE_TEST_BODY_TIMEOUT", "30")),
)
