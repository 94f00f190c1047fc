"""Who sees what: the one place the rule lives (library README, "Who sees what").

A user sees a library when they are an administrator or a row ``library_grants
(user_id, library_id)`` exists; they see an item when they see its library. Every
browse query starts from a :class:`Viewer` (:func:`load_viewer`) and filters items
with :meth:`Viewer.item_filter`; a route answering in a single query (images) uses
:func:`item_visible_sql`. A later rule (a parental limit: a maximum content rating per
user) is added here, in ``load_viewer``, ``item_filter`` and ``item_visible_sql``, and
every list, detail, image and state route follows. What the viewer may not see is a 404.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

__all__ = ["Viewer", "item_visible_sql", "load_viewer", "viewer_params"]

Conn = psycopg.AsyncConnection[Any]

LIBRARY_KIND_OF_ITEM = {
    "movie": "movies",
    "series": "tv",
    "season": "tv",
    "episode": "tv",
}
"""The library kind holding each item kind (extras live in both)."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller and the libraries they may see (``library id -> library kind``)."""

    user_id: int
    admin: bool
    libraries: dict[int, str]

    def library_ids(self, item_kind: str | None = None, only: int | None = None) -> list[int]:
        """Visible libraries that can hold ``item_kind`` (all when None), narrowed to ``only``."""
        wanted = LIBRARY_KIND_OF_ITEM.get(item_kind or "")
        ids = [
            lib
            for lib, kind in self.libraries.items()
            if (wanted is None or kind == wanted) and (only is None or lib == only)
        ]
        ids.sort()
        return ids

    @property
    def restricts_items(self) -> bool:
        """True when a rule hides some items of a visible library (then the per-library
        ``item_counts`` are no total and lists count their rows). None does yet."""
        return False

    def sees_library(self, library_id: int) -> bool:
        return library_id in self.libraries

    def item_filter(self, alias: str, library_ids: Iterable[int]) -> tuple[str, list[Any]]:
        """SQL (``AND``-able, no leading ``AND``) and its parameters: the items of
        ``library_ids`` (visible ones, from :meth:`library_ids`) this viewer may see.

        One library is an equality, so the ``(library_id, kind, <col>, id)`` keyset
        indexes serve the order; several are ``= ANY``, served by the ``(kind, <col>, id)``
        indexes of ``0003_browse.sql`` (one ordered walk skipping other libraries) or
        by the rows of those libraries sorted, as the planner prefers.
        """
        ids = list(library_ids)
        if len(ids) == 1:
            return f"{alias}.library_id = %s", [ids[0]]
        return f"{alias}.library_id = ANY(%s)", [ids]


async def load_viewer(conn: Conn, user_id: int, *, admin: bool) -> Viewer:
    """The libraries ``user_id`` sees: every library for an administrator, else the granted ones."""
    if admin:
        cur = await conn.execute("SELECT id, kind FROM libraries")
    else:
        cur = await conn.execute(
            "SELECT l.id, l.kind FROM library_grants g JOIN libraries l ON l.id = g.library_id"
            " WHERE g.user_id = %s",
            (user_id,),
        )
    return Viewer(user_id, admin, {int(i): k for i, k in await cur.fetchall()})


def item_visible_sql(alias: str) -> str:
    """The same rule as one predicate on items ``alias``, for a caller answering in one
    query (the image route); its parameters are named: :func:`viewer_params`."""
    return (
        f"(%(viewer_admin)s OR EXISTS (SELECT 1 FROM library_grants vg"  # noqa: S608
        f" WHERE vg.user_id = %(viewer_user)s AND vg.library_id = {alias}.library_id))"
    )


def viewer_params(user_id: int, *, admin: bool) -> dict[str, Any]:
    return {"viewer_admin": admin, "viewer_user": user_id}
