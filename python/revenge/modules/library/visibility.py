"""Who sees what: the one place the rule lives (library README, "Who sees what").

A user sees a library when they are an administrator or a row ``library_grants
(user_id, library_id)`` exists; they see an item when they see its library. Every
browse query starts from a :class:`Viewer` (:func:`load_viewer`) and filters items
with :meth:`Viewer.item_filter`; a route answering in a single query (images) uses
:func:`item_visible_sql`. What the viewer may not see is a 404.

Parental limits (issue 15): a user who is not an administrator may have a maximum
content rating (``users.max_rating_age``, an age on the one scale of auth's
``ratings.py``) and a policy for unrated items (``users.blocks_unrated``). An item
is above the limit when its ``rating_age`` (stored, 0006_rating_age.sql) — or, for an
episode, season or extra without its own, its series' or parent's — is older than the
limit; an unrated one counts as allowed, or as above the limit when blocked.
Administrators are never limited.
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
    max_age: int | None = None
    """The parental limit (an age); ``None``: none (always for an administrator)."""
    blocks_unrated: bool = False

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
        ``item_counts`` are no total and lists count their rows): a parental limit."""
        return self.max_age is not None

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
        params: list[Any]
        if len(ids) == 1:
            sql, params = f"{alias}.library_id = %s", [ids[0]]
        else:
            sql, params = f"{alias}.library_id = ANY(%s)", [ids]
        if self.max_age is None:
            return sql, params
        unrated = UNRATED_BLOCKED if self.blocks_unrated else 0
        return f"{sql} AND {rating_age_sql(alias)} <= %s", [*params, unrated, self.max_age]

    def counted_total_sql(self, kind: str) -> tuple[str, list[Any]] | None:
        """A predicate on ``item_rating_counts`` rows giving this viewer's unfiltered total
        of ``kind`` (``sum(n)``), or ``None`` when it must be counted item by item.

        Movies and series carry their own rating (no parent to inherit one from), so their
        per-rating counts (0007_rating_counts.sql) answer a limited viewer's total.
        """
        if self.max_age is None or kind not in ("movie", "series"):
            return None
        unrated = UNRATED_BLOCKED if self.blocks_unrated else 0
        return (
            "CASE WHEN rating_age = -1 THEN %s ELSE rating_age END <= %s",
            [unrated, self.max_age],
        )


UNRATED_BLOCKED = 99
"""The age an unrated item counts as when the user's policy blocks them (above any limit)."""


def rating_age_sql(alias: str) -> str:
    """The age of items ``alias`` for a limit, one ``%s`` for what an unrated item counts as.

    COALESCE and CASE evaluate lazily: the series' (or parent's) row is read only for a
    season, episode or extra without a rating of its own.
    """
    return (
        f"coalesce({alias}.rating_age, CASE WHEN {alias}.series_id IS NOT NULL"  # noqa: S608
        f" OR {alias}.parent_id IS NOT NULL THEN (SELECT p.rating_age FROM items p"
        f" WHERE p.id = coalesce({alias}.series_id, {alias}.parent_id)) END, %s)"
    )


async def load_viewer(conn: Conn, user_id: int, *, admin: bool) -> Viewer:
    """The libraries ``user_id`` sees (every one for an administrator, else the granted
    ones) and, for anyone but an administrator, their parental limit: one statement."""
    if admin:
        cur = await conn.execute("SELECT id, kind FROM libraries")
        return Viewer(user_id, admin, {int(i): k for i, k in await cur.fetchall()})
    # One round trip: this runs before every list, detail and state change.
    cur = await conn.execute(
        "SELECT u.max_rating_age, u.blocks_unrated,"
        " array_agg(l.id) FILTER (WHERE l.id IS NOT NULL),"
        " array_agg(l.kind) FILTER (WHERE l.id IS NOT NULL)"
        " FROM users u LEFT JOIN library_grants g ON g.user_id = u.id"
        " LEFT JOIN libraries l ON l.id = g.library_id WHERE u.id = %s GROUP BY u.id",
        (user_id,),
    )
    row = await cur.fetchone()
    if row is None:  # no such user (deleted meanwhile): sees nothing
        return Viewer(user_id, admin, {})
    libraries = {int(i): k for i, k in zip(row[2] or (), row[3] or (), strict=True)}
    return Viewer(user_id, admin, libraries, row[0], bool(row[1]))


def item_visible_sql(alias: str) -> str:
    """The same rule as one predicate on items ``alias``, for a caller answering in one
    query (the image route, playback); its parameters are named: :func:`viewer_params`.

    The user's row is read here (role, limit), so a caller that does not know whether
    the user is an administrator may pass ``admin=False``.
    """
    age = rating_age_sql(alias).replace("%s", "vu.blocks_unrated::int * %(viewer_unrated)s")
    return (
        f"(%(viewer_admin)s OR EXISTS (SELECT 1 FROM users vu WHERE vu.id = %(viewer_user)s"  # noqa: S608
        f" AND (vu.role = 'admin' OR (EXISTS (SELECT 1 FROM library_grants vg"
        f" WHERE vg.user_id = vu.id AND vg.library_id = {alias}.library_id)"
        f" AND NOT coalesce(vu.max_rating_age < {age}, false)))))"
    )


def viewer_params(user_id: int, *, admin: bool) -> dict[str, Any]:
    return {"viewer_admin": admin, "viewer_user": user_id, "viewer_unrated": UNRATED_BLOCKED}
