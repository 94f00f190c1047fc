"""The floor: a bare Granian RSGI app answering every request with one pooled ``SELECT 1``.

No router, no middleware, no Revenge: what Granian + psycopg_pool + PostgreSQL can
do on this machine. The Revenge DB-backed route is measured against it in the
same session (``benches/http_db.py``).

    granian --interface rsgi --loop uvloop --working-dir benches floor_db_rsgi:app

Environment: ``REVENGE_BENCH_DB_URL`` (default: the local server's ``postgres``
database), ``FLOOR_POOL_MIN`` / ``FLOOR_POOL_MAX`` (2 / 50, Revenge's defaults),
``FLOOR_TRANSACTION=1`` for a transaction per request instead of autocommit,
``FLOOR_POOL=revenge`` to go through ``revenge.infra.database.Database`` instead
of a bare psycopg_pool (the same app otherwise: the HTTP cost of that layer).
"""

from __future__ import annotations

import asyncio
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
        from revenge.infra.database import Database, PoolConfig

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
            kwargs={"autocommit": AUTOCOMMIT},
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
