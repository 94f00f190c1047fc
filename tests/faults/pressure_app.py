"""``revenge.app`` as served, plus three test routes to see inside one worker.

    granian tests.faults.pressure_app:app

The memory-pressure test cannot fill the segment cache or wake the transcoder from
outside yet (the playback routes do not exist), so this target adds, on loopback
only and for the test:

* ``POST /test/segments?count=N&pinned=P`` puts N unpinned and P pinned 1 MiB
  segments into the worker's transcode cache;
* ``POST /test/transcoder`` builds the cold transcoder service (ffmpeg discovery);
* ``GET /test/state`` reports the pressure level, both caches' stats and whether
  the transcoder is built. Public, so that asking does not refill the session cache.
"""

from __future__ import annotations

from typing import Any

from revenge.app import app
from revenge.http import Request, Response, json_response
from revenge.runtime import Runtime

_runtime: Runtime = next(
    phase.start.__self__  # type: ignore[attr-defined]
    for phase in app.phases
    if phase.name == "runtime"
)
_pinned: list[int] = []


async def segments(request: Request) -> Response:
    cache = _runtime.get("transcode_cache")
    count = int(request.query.get("count", ["0"])[0])
    pinned = int(request.query.get("pinned", ["0"])[0])
    admitted = sum(cache.insert(f"test/seg{i}", bytes(1 << 20)) for i in range(count))
    for i in range(pinned):
        token = cache.insert_pinned(f"test/pinned{i}", bytes(1 << 20))
        if token is not None:
            _pinned.append(token)
    return json_response({"admitted": admitted, "pinned": len(_pinned), **cache.stats()})


async def transcoder(request: Request) -> Response:
    await _runtime.get("transcoder").get()
    return json_response({"initialized": True})


async def state(request: Request) -> Response:
    pressure = _runtime.pressure
    assert pressure is not None
    body: dict[str, Any] = {
        "level": pressure.level,
        "transcode": _runtime.get("transcode_cache").stats(),
        "sessions": _runtime.get("session_cache").stats(),
        "transcoder_initialized": _runtime.get("transcoder").peek() is not None,
        "budget": pressure.budget,
    }
    return json_response(body)


app.router.add("POST", "/test/segments", segments)
app.router.add("POST", "/test/transcoder", transcoder)
app.router.add("GET", "/test/state", state, public=True)
