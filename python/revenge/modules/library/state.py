"""Per-user state of an item (``user_item_state``): position, played, favourite.

Plain functions over a connection; they never commit. Rules of a change
(``PUT /api/v1/items/{id}/state``):

* ``played: true`` marks it played: position back to 0, ``play_count`` + 1 when it was
  not played, ``last_played_at`` now. ``played: false`` only clears the flag.
* ``position_ms`` records where playback is (``last_played_at`` now); a played item
  stays played (a rewatch).
* ``favourite`` sets or clears the flag.
* On a series or a season, ``played`` applies to every episode under it (and the
  container's own row); a position there means nothing (the service refuses it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

__all__ = ["StateChange", "get_state", "set_state"]

Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class StateChange:
    position_ms: int | None = None
    played: bool | None = None
    favourite: bool | None = None


_UPSERT = """
INSERT INTO user_item_state AS s
    (user_id, item_id, position_ms, played, play_count, last_played_at, favourite)
SELECT %(user)s, t.id,
       coalesce(%(pos)s::bigint, 0),
       coalesce(%(played)s::boolean, false),
       CASE WHEN %(played)s::boolean THEN 1 ELSE 0 END,
       CASE WHEN %(pos)s::bigint IS NOT NULL OR %(played)s::boolean THEN now() END,
       coalesce(%(fav)s::boolean, false)
  FROM ({targets}) AS t
ON CONFLICT (user_id, item_id) DO UPDATE SET
    position_ms = CASE
        WHEN %(pos)s::bigint IS NOT NULL THEN %(pos)s::bigint
        WHEN %(played)s::boolean THEN 0
        ELSE s.position_ms END,
    play_count = s.play_count
        + CASE WHEN %(played)s::boolean AND NOT s.played THEN 1 ELSE 0 END,
    played = coalesce(%(played)s::boolean, s.played),
    last_played_at = CASE WHEN %(pos)s::bigint IS NOT NULL OR %(played)s::boolean
        THEN now() ELSE s.last_played_at END,
    favourite = coalesce(%(fav)s::boolean, s.favourite)
"""


async def set_state(
    conn: Conn, user_id: int, item_id: int, kind: str, change: StateChange
) -> dict[str, Any]:
    """Apply ``change`` for ``user_id`` (``kind`` is the item's); the item's new state."""
    params = {
        "user": user_id,
        "item": item_id,
        "pos": change.position_ms,
        "played": change.played,
        "fav": change.favourite,
    }
    await conn.execute(_UPSERT.format(targets="SELECT %(item)s::bigint AS id"), params)
    if change.played is not None and kind in ("series", "season"):
        column = "series_id" if kind == "series" else "parent_id"
        episodes = f"SELECT id FROM items WHERE {column} = %(item)s AND kind = 'episode'"  # noqa: S608
        await conn.execute(
            _UPSERT.format(targets=episodes),
            params | {"fav": None, "pos": None},
        )
    state = await get_state(conn, user_id, item_id)
    assert state is not None
    return state


async def get_state(conn: Conn, user_id: int, item_id: int) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT position_ms, played, play_count, favourite, last_played_at, updated_at"
        " FROM user_item_state WHERE user_id = %s AND item_id = %s",
        (user_id, item_id),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return {
        "item_id": item_id,
        "position_ms": row[0],
        "played": row[1],
        "play_count": row[2],
        "favourite": row[3],
        "last_played_at": row[4],
        "updated_at": row[5],
    }
