"""The floors of ``benches/bench_playback.py``: a bare Granian RSGI app with no router, no auth, no
session: ``/bytes`` answers the same bytes as a cached segment from memory, ``/file`` sends the
same file as direct play with Granian's own ``response_file``.

Run: ``granian --interface rsgi benches.playback_floor:app`` with ``FLOOR_BYTES`` and ``FLOOR_FILE``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_FILE = os.environ.get("FLOOR_FILE", "")
_BYTES = Path(os.environ["FLOOR_BYTES"]).read_bytes() if os.environ.get("FLOOR_BYTES") else b""
_SEGMENT = [("content-type", "video/mp4")]
_MP4 = [("content-type", "video/mp4"), ("accept-ranges", "bytes")]


async def app(scope: Any, protocol: Any) -> None:
    if scope.path == "/bytes":
        protocol.response_bytes(200, _SEGMENT, _BYTES)
    elif scope.path == "/file":
        protocol.response_file(200, _MP4, _FILE)
    else:
        protocol.response_bytes(200, [], b"ok")
