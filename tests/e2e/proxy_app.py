"""A small app behind the proxy recipes (deploy/nginx, deploy/caddy) in their e2e tests.

``REVENGE_TEST_MEDIA_DIR`` is served under ``/files/`` (HLS playlists, segments, a
direct-play file); ``/headers`` echoes what reached the app; ``/gated`` sends a first
chunk and holds the rest until the test, having received that chunk, creates
``$REVENGE_TEST_MEDIA_DIR/<token>.gate``: a buffering proxy keeps the first chunk back,
the gate is never opened, and the stream ends with ``timeout`` instead of ``released``.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

from revenge.http import HttpApp, Request, Response, Router, json_response
from revenge.http.files import file_response
from revenge.http.response import StreamResponse

MEDIA = Path(os.environ.get("REVENGE_TEST_MEDIA_DIR", "/nonexistent"))
GATE_WAIT = 20.0
_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".mp4": "video/mp4"}


async def serve_file(request: Request) -> Response:
    name = request.path_params["name"]
    kind = _TYPES.get(Path(name).suffix, "application/octet-stream")
    return await file_response(request, MEDIA / name, content_type=kind)


async def headers(request: Request) -> Response:
    wanted = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "forwarded")
    return json_response(
        {"client": request.client, **{name: request.headers.get(name) for name in wanted}}
    )


async def _gated(gate: Path) -> AsyncIterator[bytes]:
    yield b"first chunk;"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GATE_WAIT
    while not gate.exists():
        if loop.time() > deadline:
            yield b"timeout"
            return
        await asyncio.sleep(0.01)
    yield b"released"


async def gated(request: Request) -> Response:
    token = request.path_params["token"]
    if not re.fullmatch(r"[a-z0-9]{1,32}", token):
        return json_response({"error": "bad token"}, status=400)
    body = _gated(MEDIA / f"{token}.gate")
    return StreamResponse(200, b"", [("content-type", "text/plain")], body)


async def live(request: Request) -> Response:
    return json_response({"status": "alive"})


router = Router()
files = Router()
files.add("GET", "/{name}", serve_file, public=True)
router.include("/files", files)
router.add("GET", "/headers", headers, public=True)
router.add("GET", "/gated/{token}", gated, public=True)
router.add("GET", "/health/live", live, public=True)

app = HttpApp(router, max_body_bytes=1 << 20, body_timeout=30.0)
