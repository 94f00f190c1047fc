"""The browse floor: ``GET /api/v1/movies?limit=100`` by a bare Granian RSGI app and psycopg_pool.

No router, no middleware, no pydantic, no Revenge service: a dict token check, then
the same statements Revenge runs for that page (the caller's libraries; the keyset
page, whose rows are each item's JSON text, with the ``item_counts`` total), recorded
once at start from ``revenge.modules.library`` itself so they cannot drift, and the
same answer joined by hand (``python -m benches.bench_browse`` checks both answers are
equal before timing).

Environment: ``REVENGE_BENCH_DB_URL``, ``BENCH_TOKEN``, ``BENCH_USER_ID``,
``FLOOR_POOL_MIN`` / ``FLOOR_POOL_MAX`` (2 / 50, Revenge's defaults).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from typing import Any

import orjson
from psycopg_pool import AsyncConnectionPool

DB_URL = os.environ.get("REVENGE_BENCH_DB_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
POOL_MIN = int(os.environ.get("FLOOR_POOL_MIN", "2"))
POOL_MAX = int(os.environ.get("FLOOR_POOL_MAX", "50"))
PATH = "/api/v1/movies"
LIMIT = 100
HEADERS = [("content-type", "application/json")]
_DENIED = b'{"status":401,"code":"unauthenticated"}'


class _Recorder:
    """A stand-in connection that keeps every statement and answers nothing."""

    def __init__(self, rows: list[Any] | None = None) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.rows = rows or []

    async def execute(self, sql: str, params: Any = None) -> _Recorder:
        self.statements.append((sql, params))
        return self

    async def fetchall(self) -> list[Any]:
        return self.rows

    async def fetchone(self) -> Any:
        return None


async def recorded_statements(user_id: int) -> tuple[tuple[str, Any], list[tuple[str, Any]]]:
    """Revenge's own statements for the first title page of ``LIMIT`` movies: the viewer
    query (its library list is read live) and the page and total queries of a viewer of
    one movies library (the library id is filled in per request, as Revenge does)."""
    from revenge.modules.library import browse
    from revenge.modules.library.visibility import Viewer, load_viewer

    viewer_conn = _Recorder()
    await load_viewer(viewer_conn, user_id, admin=False)  # type: ignore[arg-type]
    if len(viewer_conn.statements) != 1:
        raise SystemExit("the floor replays one viewer statement; load_viewer runs more")
    page_conn = _Recorder()
    viewer = Viewer(user_id, False, {-1: "movies"})
    await browse.list_items(
        page_conn, viewer, kind="movie", library_ids=[-1], sort="title", order="asc",  # type: ignore[arg-type]
        filters=browse.Filters(), cursor=None, limit=LIMIT,
    )  # fmt: skip
    return viewer_conn.statements[0], page_conn.statements


def _cursor(sort_value: str, item_id: int) -> str:
    raw = orjson.dumps([1, "title", "asc", 0, sort_value, item_id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class BrowseFloor:
    def __init__(self) -> None:
        self.pool: AsyncConnectionPool[Any] | None = None
        self.user_id = int(os.environ.get("BENCH_USER_ID", "0"))
        token = os.environ.get("BENCH_TOKEN", "")
        self.users = {hashlib.sha256(token.encode()).hexdigest(): self.user_id} if token else {}

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.viewer_sql, self.page = loop.run_until_complete(recorded_statements(self.user_id))
        self.pool = AsyncConnectionPool(
            DB_URL, min_size=POOL_MIN, max_size=POOL_MAX,
            kwargs={"autocommit": True, "application_name": "bench-floor-browse"},
            timeout=2.0, open=False,
        )  # fmt: skip
        loop.run_until_complete(self.pool.open(wait=True))

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.pool is not None:
            loop.run_until_complete(self.pool.close())

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        assert self.pool is not None
        authorization = scope.headers.get("authorization")
        user_id = None
        if authorization and authorization[:7].lower() == "bearer ":
            digest = hashlib.sha256(authorization[7:].strip().encode()).hexdigest()
            user_id = self.users.get(digest)
        if user_id is None or scope.path != PATH:
            proto.response_bytes(401, HEADERS, _DENIED)
            return
        ((page_sql, page_params),) = self.page
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.viewer_sql[0], (user_id,))
            row = await cur.fetchone()
            library = next(i for i, k in zip(row[2], row[3], strict=True) if k == "movies")
            params = [library if p == -1 else [library] if p == [-1] else p for p in page_params]
            cur = await conn.execute(page_sql, params)
            rows = await cur.fetchall()
        more = len(rows) > LIMIT
        rows = rows[:LIMIT]
        body = (
            b'{"items":['
            + ",".join(r[0] for r in rows).encode()
            + b'],"next_cursor":'
            + (orjson.dumps(_cursor(rows[-1][2], rows[-1][3])) if more else b"null")
            + b',"total":'
            + str(int(rows[0][4]) if rows else 0).encode()
            + b',"total_capped":false}'
        )
        proto.response_bytes(200, HEADERS, body)


app = BrowseFloor()
