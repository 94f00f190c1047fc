"""Browsing as a signed-in user sees it: the rules between the routes and the SQL.

Each call takes one pooled connection, loads the caller's :class:`Viewer` (who sees
what, :mod:`.visibility`) and runs :mod:`.browse`, :mod:`.state` or :mod:`.grants`
on it. Refusals are problems with stable codes: ``item_not_found`` and
``library_not_found`` (404, also for what exists but is not granted),
``cursor_invalid`` and ``state_invalid`` (422), ``user_not_found`` (404).
"""

from __future__ import annotations

from typing import Any

from revenge.http import Problem
from revenge.infra.db import Database
from revenge.modules.library import browse, grants
from revenge.modules.library import state as user_state
from revenge.modules.library.browse import Filters, Order, Page
from revenge.modules.library.state import StateChange
from revenge.modules.library.visibility import Conn, Viewer, load_viewer

__all__ = ["Browse", "item_not_found"]


def item_not_found(item_id: int) -> Problem:
    return Problem(404, "item_not_found", "Item not found", f"no item {item_id}")


def _library_not_found(library_id: int) -> Problem:
    return Problem(404, "library_not_found", "Library not found", f"no library {library_id}")


class Browse:
    """Lists, details, home rows and per-user state, each seen through the caller's grants.

    Lists come back as each item's JSON text (``browse.items_body`` joins them)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(
        self,
        user_id: int,
        admin: bool,
        *,
        kind: str,
        library: int | None,
        sort: str,
        order: Order | None,
        filters: Filters,
        cursor: str | None,
        limit: int,
    ) -> Page:
        order = order or browse.SORTS[sort].default_order
        position = None
        if cursor is not None:
            try:
                position = browse.decode_cursor(cursor, sort, order)
            except browse.BadCursor as exc:
                raise Problem(
                    422, "cursor_invalid", "Invalid cursor", str(exc), extra={"field": "cursor"}
                ) from None
        async with self.db.connection() as conn:
            viewer = await load_viewer(conn, user_id, admin=admin)
            ids = viewer.library_ids(kind, library)
            if library is not None and not ids:
                raise _library_not_found(library)
            return await browse.list_items(
                conn, viewer, kind=kind, library_ids=ids, sort=sort, order=order,
                filters=filters, cursor=position, limit=limit,
            )  # fmt: skip

    async def item(self, user_id: int, admin: bool, item_id: int) -> dict[str, Any]:
        async with self.db.connection() as conn:
            viewer = await load_viewer(conn, user_id, admin=admin)
            found = await browse.item_detail(conn, viewer, item_id)
        if found is None:
            raise item_not_found(item_id)
        return found

    async def _container(self, conn: Conn, viewer: Viewer, item_id: int, kind: str) -> None:
        found = await browse.visible_item(conn, viewer, item_id)
        if found is None or found["kind"] != kind:
            raise item_not_found(item_id)

    async def seasons(self, user_id: int, admin: bool, series_id: int) -> list[str]:
        async with self.db.connection() as conn:
            viewer = await load_viewer(conn, user_id, admin=admin)
            await self._container(conn, viewer, series_id, "series")
            return await browse.series_seasons(conn, viewer, series_id)

    async def episodes(self, user_id: int, admin: bool, season_id: int) -> list[str]:
        async with self.db.connection() as conn:
            viewer = await load_viewer(conn, user_id, admin=admin)
            await self._container(conn, viewer, season_id, "season")
            return await browse.season_episodes(conn, viewer, season_id)

    async def next_up(self, user_id: int, admin: bool, limit: int, series: int | None) -> list[str]:
        async with self.db.connection() as conn:
            viewer = await load_viewer(conn, user_id, admin=admin)
            if series is not None:
                await self._container(conn, viewer, series, "series")
            return await browse.next_up(conn, viewer, limit, series)

    async def continue_watching(self, user_id: int, admin: bool, limit: int) -> list[str]:
        async with self.db.connection() as conn:
            viewer = await load_viewer(conn, user_id, admin=admin)
            return await browse.continue_watching(conn, viewer, limit)

    async def recently_added(
        self, user_id: int, admin: bool, kind: str, limit: int, library: int | None
    ) -> list[str]:
        async with self.db.connection() as conn:
            viewer = await load_viewer(conn, user_id, admin=admin)
            if library is not None and not viewer.sees_library(library):
                raise _library_not_found(library)
            return await browse.recently_added(conn, viewer, kind, limit, library)

    async def set_state(
        self, user_id: int, admin: bool, item_id: int, change: StateChange
    ) -> dict[str, Any]:
        async with self.db.transaction() as conn:
            viewer = await load_viewer(conn, user_id, admin=admin)
            found = await browse.visible_item(conn, viewer, item_id)
            if found is None:
                raise item_not_found(item_id)
            if change.position_ms is not None and found["kind"] in ("series", "season"):
                raise Problem(
                    422,
                    "state_invalid",
                    "Invalid state",
                    f"a {found['kind']} has no playback position (set it on an episode)",
                    extra={"field": "position_ms"},
                )
            return await user_state.set_state(conn, user_id, item_id, found["kind"], change)

    # -- grants (administrators; the route says so) ------------------------------------------

    async def grant(self, library_id: int, user_id: int) -> None:
        async with self.db.transaction() as conn:
            missing = await grants.put_grant(conn, library_id, user_id)
        if missing == "library":
            raise _library_not_found(library_id)
        if missing == "user":
            raise Problem(404, "user_not_found", "User not found", f"no user {user_id}")

    async def revoke(self, library_id: int, user_id: int) -> bool:
        """Revoke it; False when the user had no grant (still a success: idempotent)."""
        async with self.db.transaction() as conn:
            if await self._library_exists(conn, library_id) is False:
                raise _library_not_found(library_id)
            return await grants.delete_grant(conn, library_id, user_id)

    async def grants(self, library_id: int) -> list[grants.Grant]:
        async with self.db.connection() as conn:
            if not await self._library_exists(conn, library_id):
                raise _library_not_found(library_id)
            return await grants.list_grants(conn, library_id)

    @staticmethod
    async def _library_exists(conn: Conn, library_id: int) -> bool:
        cur = await conn.execute("SELECT 1 FROM libraries WHERE id = %s", (library_id,))
        return await cur.fetchone() is not None
