"""The floors: bare Granian RSGI apps doing one pooled query per request.

No router, no middleware, no Revenge: what Granian + psycopg_pool + PostgreSQL can
do on this machine. The Revenge DB-backed route is measured against them in the
same session (``python -m benches.http.db``).

* ``app``: every request answers one pooled ``SELECT 1``.
* ``sessions``: ``GET /api/v1/auth/sessions`` done by hand: the bearer token's
  SHA-256 looked up in a dict (``BENCH_TOKEN`` -> its user), then exactly the
  ``SELECT`` of ``revenge.modules.auth.repository.list_sessions`` through
  psycopg_pool, and the same JSON body Revenge sends (the harness checks that
  the two bodies are equal before measuring).

    granian --interface rsgi --loop uvloop benches.http.floor_db:app
    BENCH_TOKEN=... BENCH_USER_ID=1 granian ... benches.http.floor_db:sessions

Environment: ``REVENGE_BENCH_DB_URL`` (default: the local server's ``postgres``
database), ``FLOOR_POOL_MIN`` / ``FLOOR_POOL_MAX`` (2 / 50, Revenge's defaults),
``FLOOR_TRANSACTION=1`` for a transaction per request instead of autocommit,
``FLOOR_POOL=revenge`` to go through ``revenge.infra.db.Database`` instead
of a bare psycopg_pool (the same app otherwise: the HTTP cost of that layer).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import orjson
from psycopg_pool import AsyncConnectionPool

DB_URL = os.environ.get("REVENGE_BENCH_DB_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
POOL_MIN = int(os.environ.get("FLOOR_POOL_MIN", "2"))
POOL_MAX = int(os.environ.get("FLOOR_POOL_MAX", "50"))
AUTOCOMMIT = os.environ.get("FLOOR_TRANSACTION", "0") != "1"
USE_REVENGE = os.environ.get("FLOOR_POOL", "bare") == "revenge"
HEADERS = [("content-type", "application/json")]


class RevengePoolApp:
    """The same app through Revenge's ``Database`` (stale check, 503 translation, scaler)."""

    def __init__(self) -> None:
        from revenge.infra.db import Database, PoolConfig

        self.db = Database(DB_URL, PoolConfig(min_conns=POOL_MIN, max_conns=POOL_MAX))

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.db.start())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.db.close())

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT 1")
            row = await cur.fetchone()
        proto.response_bytes(200, HEADERS, orjson.dumps({"value": row[0] if row else None}))


class FloorApp:
    """RSGI application object: the pool opens in ``__rsgi_init__`` on the worker's loop."""

    def __init__(self) -> None:
        self.pool: AsyncConnectionPool[Any] | None = None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = AsyncConnectionPool(
            DB_URL,
            min_size=POOL_MIN,
            max_size=POOL_MAX,
            kwargs={"autocommit": AUTOCOMMIT, "application_name": "bench-floor"},
            timeout=2.0,
            open=False,
        )
        loop.run_until_complete(self.pool.open(wait=True))

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.pool is not None:
            loop.run_until_complete(self.pool.close())

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        assert self.pool is not None
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT 1")
            row = await cur.fetchone()
        proto.response_bytes(200, HEADERS, orjson.dumps({"value": row[0] if row else None}))


app: FloorApp | RevengePoolApp = RevengePoolApp() if USE_REVENGE else FloorApp()

# Copied from revenge.modules.auth.repository.list_sessions: the floor must run the same SQL.
SESSIONS_SQL = (
    "SELECT id, token_hash, created_at, expires_at, last_seen_at, client, host(ip) "
    "FROM sessions WHERE user_id = %s AND expires_at > now() ORDER BY last_seen_at DESC"
)
SESSIONS_PATH = "/api/v1/auth/sessions"
_DENIED = b'{"status":401,"code":"unauthenticated"}'


class SessionsFloorApp(FloorApp):
    """``GET /api/v1/auth/sessions`` with a dict token check and one pooled ``SELECT``."""

    def __init__(self) -> None:
        super().__init__()
        token = os.environ.get("BENCH_TOKEN", "")
        user_id = int(os.environ.get("BENCH_USER_ID", "0"))
        self.users: dict[str, int] = {}
        if token:
            self.users[hashlib.sha256(token.encode()).hexdigest()] = user_id

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        assert self.pool is not None
        authorization = scope.headers.get("authorization")
        digest = user_id = None
        if authorization and authorization[:7].lower() == "bearer ":
            digest = hashlib.sha256(authorization[7:].strip().encode()).hexdigest()
            user_id = self.users.get(digest)
        if user_id is None or scope.path != SESSIONS_PATH:
            proto.response_bytes(401, HEADERS, _DENIED)
            return
        async with self.pool.connection() as conn:
            cur = await conn.execute(SESSIONS_SQL, (user_id,))
            rows = await cur.fetchall()
        body = {
            "sessions": [
                {
                    "id": row[0],
                    "created_at": row[2],
                    "expires_at": row[3],
                    "last_seen_at": row[4],
                    "client": row[5],
                    "ip": row[6],
                    "current": row[1] == digest,
                }
                for row in rows
            ]
        }
        proto.response_bytes(
            200, HEADERS, orjson.dumps(body, option=orjson.OPT_UTC_Z)
        )  # as Revenge answers


sessions = SessionsFloorApp()
