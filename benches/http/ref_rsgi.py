"""Reference (b), the floor: a bare Granian RSGI app with a dict session check.

No router, no request object, no problem documents: read the header, hash the
token, look it up in a dict, send a ready body. Revenge's ``/api/v1/me`` does
the same work plus routing, a Principal and a bounded, TTL'd Rust cache.

Run: ``granian --interface rsgi benches.http.ref_rsgi:app``
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import orjson

_token = os.environ.get("BENCH_TOKEN", "")
# BENCH_ME: the JSON Revenge answers for the token, so every app sends the same body
# (the harness checks that before timing).
_ME = os.environ.get(
    "BENCH_ME",
    '{"id":1,"username":"admin","role":"admin","created_at":"2026-01-01T00:00:00+00:00"}',
)
SESSIONS: dict[str, bytes] = {}
if _token:
    SESSIONS[hashlib.sha256(_token.encode()).hexdigest()] = orjson.dumps(orjson.loads(_ME))
_JSON = [("content-type", "application/json")]
_DENIED = b'{"status":401,"code":"unauthenticated"}'


async def app(scope: Any, protocol: Any) -> None:
    authorization = scope.headers.get("authorization")
    body = None
    if authorization and authorization[:7].lower() == "bearer ":
        body = SESSIONS.get(hashlib.sha256(authorization[7:].strip().encode()).hexdigest())
    if body is None or scope.path != "/api/v1/me":
        protocol.response_bytes(401, _JSON, _DENIED)
    else:
        protocol.response_bytes(200, _JSON, body)
