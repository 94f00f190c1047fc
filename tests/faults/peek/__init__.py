"""A module for the memory-pressure test: three routes that look inside one worker.

Wired by ``REVENGE_MODULES__EXTRA='["tests.faults.peek"]'``; never shipped. The
segment cache cannot be filled nor the transcoder woken from outside yet (the
playback routes do not exist), so, on a loopback test server only:

* ``POST /test/segments?count=N&pinned=P`` puts N unpinned and P pinned 1 MiB
  segments into the worker's transcode cache;
* ``POST /test/transcoder`` builds the cold transcoder service (ffmpeg discovery);
* ``GET /test/state`` reports the pressure level and budget, both caches' stats and
  whether the transcoder is built. Public, so that asking does not refill the
  session cache.
"""

from __future__ import annotations

from typing import Any

from revenge.contract import Module, ModuleContext
from revenge.http import Request, Response, json_response
from revenge.modules.auth import SESSION_CACHE
from revenge.modules.playback import TRANSCODE_CACHE, TRANSCODER

EXTRA = '["tests.faults.peek"]'


def install(ctx: ModuleContext) -> None:
    services = ctx.services
    pinned: list[int] = []

    def one(request: Request, name: str) -> int:
        return int(request.query.get(name, ["0"])[0])

    async def segments(request: Request) -> Response:
        cache = services.get(TRANSCODE_CACHE)
        admitted = sum(
            cache.insert(f"test/seg{i}", bytes(1 << 20)) for i in range(one(request, "count"))
        )
        for i in range(one(request, "pinned")):
            token = cache.insert_pinned(f"test/pinned{i}", bytes(1 << 20))
            if token is not None:
                pinned.append(token)
        return json_response({"admitted": admitted, "pinned": len(pinned), **cache.stats()})

    async def transcoder(request: Request) -> Response:
        await services.lazy(TRANSCODER).get()
        return json_response({"initialized": True})

    async def state(request: Request) -> Response:
        pressure = services.pressure
        assert pressure is not None, "the runtime watches no memory"
        body: dict[str, Any] = {
            "level": pressure.level,
            "budget": pressure.budget,
            "transcode": services.get(TRANSCODE_CACHE).stats(),
            "sessions": services.get(SESSION_CACHE).stats(),
            "transcoder_initialized": services.lazy(TRANSCODER).initialized,
        }
        return json_response(body)

    ctx.route("POST", "/test/segments", segments)
    ctx.route("POST", "/test/transcoder", transcoder)
    ctx.route("GET", "/test/state", state, public=True)


MODULE = Module("faults_peek", install)
