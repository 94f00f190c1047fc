"""Providers' HTTP answers cached in PostgreSQL for their lifetime (plain functions over
the pool; each is one statement).

The lifetime is the answer's ``Cache-Control: max-age`` (``no-store``/``no-cache``: not
kept), else the provider's configured default (:func:`lifetime`), at most 30 days. Keys
are the request's path and sorted query without credentials, so an API key never reaches
the table.

>>> lifetime("public, max-age=28800", 86400.0), lifetime("no-store", 86400.0), lifetime(None, 60.0)
(28800.0, 0.0, 60.0)
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from revenge.infra.db import Database
from revenge.infra.http_client import cache_lifetime

__all__ = ["HttpCache", "lifetime"]

MAX_LIFETIME = 30 * 86400.0
"""Nothing is kept longer than this, whatever the server says."""


def lifetime(cache_control: str | None, default: float) -> float:
    """Seconds an answer may be kept (0: not at all)."""
    return cache_lifetime(cache_control, default=default, cap=MAX_LIFETIME)


class HttpCache:
    """The ``metadata_http_cache`` rows of one provider."""

    __slots__ = ("db", "provider")

    def __init__(self, db: Database, provider: str) -> None:
        self.db = db
        self.provider = provider

    async def get(self, key: str) -> tuple[int, Any] | None:
        """``(status, body)`` of a live cached answer, else ``None``."""
        row = await self.db.fetch_one(
            "SELECT status, body FROM metadata_http_cache"
            " WHERE provider = %s AND key = %s AND expires_at > now()",
            (self.provider, key),
        )
        return None if row is None else (int(row[0]), row[1])

    async def put(self, key: str, status: int, body: Any, seconds: float) -> None:
        if seconds <= 0:
            return
        await self.db.execute(
            "INSERT INTO metadata_http_cache (provider, key, status, body, expires_at)"
            " VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))"
            " ON CONFLICT (provider, key) DO UPDATE SET status = EXCLUDED.status,"
            " body = EXCLUDED.body, fetched_at = now(), expires_at = EXCLUDED.expires_at",
            (self.provider, key, status, Jsonb(body), seconds),
        )
