"""SQL of the metadata step: plain functions over a connection; they never commit.

Fill-only writes: :func:`fill_item` re-reads the item under its row lock and sets a field
only while it is still empty and not locked, so a scan that filled it meanwhile wins and a
user's lock always holds. Filled fields get the source ``remote``, which ranks below every
local source (``filename < embedded < nfo < user``): the next scan that finds a local
value replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from revenge.modules.metadata.provider import FIELDS, RemoteImage

__all__ = [
    "ItemView",
    "due_items",
    "fill_item",
    "load_item",
    "record_lookup",
    "remove_expired_cache",
]

Conn = psycopg.AsyncConnection[Any]

_COLUMNS = tuple(sorted(FIELDS))
_JSONB = frozenset({"people", "provider_ids"})
_SELECT = (
    "SELECT i.id, i.kind, i.title, i.season_number, i.episode_number, i.locked_fields,"  # noqa: S608 (fixed column names)
    " s.title, coalesce(s.provider_ids, '{}'::jsonb), "
    + ", ".join(f"i.{c}" for c in _COLUMNS)
    + " FROM items i LEFT JOIN items s ON s.id = i.series_id WHERE i.id = %s"
)


@dataclass(frozen=True, slots=True)
class ItemView:
    """An item as the metadata step sees it: its current values of :data:`FIELDS`."""

    id: int
    kind: str
    title: str
    season_number: int | None
    episode_number: int | None
    locked: frozenset[str]
    series_title: str | None
    series_ids: Mapping[str, str]
    values: Mapping[str, Any]

    @property
    def ids(self) -> dict[str, str]:
        raw = self.values.get("provider_ids") or {}
        return {str(k): str(v) for k, v in raw.items() if v not in (None, "")}

    def empty(self) -> frozenset[str]:
        """Fields no local source filled and nobody locked (``provider_ids`` is merged
        key by key, so it counts as empty unless locked)."""
        return frozenset(
            c
            for c in _COLUMNS
            if c not in self.locked and (c == "provider_ids" or _blank(self.values.get(c)))
        )


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _view(row: Sequence[Any]) -> ItemView:
    values = dict(zip(_COLUMNS, row[8:], strict=True))
    return ItemView(
        int(row[0]), row[1], row[2], row[3], row[4], frozenset(row[5] or ()), row[6],
        {str(k): str(v) for k, v in (row[7] or {}).items()}, values,
    )  # fmt: skip


async def load_item(conn: Conn, item_id: int, *, lock: bool = False) -> ItemView | None:
    cur = await conn.execute(_SELECT + (" FOR UPDATE OF i" if lock else ""), (item_id,))
    row = await cur.fetchone()
    return None if row is None else _view(row)


async def fill_item(
    conn: Conn,
    item_id: int,
    values: Mapping[str, Any],
    ids: Mapping[str, str],
    images: Sequence[RemoteImage],
) -> tuple[list[str], list[int]]:
    """Write ``values`` into the fields of ``item_id`` that are still empty and not locked,
    merge ``ids`` into ``provider_ids`` (keys it lacks), and add each remote image whose kind
    the item has no image of. The fields written and the ids of images to process."""
    item = await load_item(conn, item_id, lock=True)
    if item is None:
        return [], []
    empty = item.empty()
    sets: list[str] = []
    params: list[Any] = []
    filled: list[str] = []
    for column in _COLUMNS:
        if column == "provider_ids" or column not in empty or _blank(values.get(column)):
            continue
        value = values[column]
        sets.append(f"{column} = %s")
        params.append(Jsonb(value) if column in _JSONB else value)
        filled.append(column)
    new_ids = {k: v for k, v in ids.items() if k not in item.ids}
    if new_ids and "provider_ids" in empty:
        sets.append("provider_ids = provider_ids || %s")
        params.append(Jsonb(new_ids))
        filled.append("provider_ids")
    sources = {c: "remote" for c in filled if c != "provider_ids"}
    if sources:
        sets.append("field_sources = field_sources || %s")
        params.append(Jsonb(sources))
    if sets:
        await conn.execute(
            f"UPDATE items SET {', '.join(sets)} WHERE id = %s",  # noqa: S608 (fixed names)
            (*params, item_id),
        )
    pending = await _add_images(conn, item_id, images)
    return filled, pending


async def _add_images(conn: Conn, item_id: int, images: Sequence[RemoteImage]) -> list[int]:
    cur = await conn.execute(
        "SELECT kind FROM images WHERE item_id = %s AND source <> 'remote' AND status <> 'failed'",
        (item_id,),
    )
    local = {str(r[0]) for r in await cur.fetchall()}
    pending: list[int] = []
    seen: set[str] = set()
    for image in images:
        if image.kind in local or image.kind in seen:
            continue
        seen.add(image.kind)
        # one remote image per (item, kind): a new URL, or a failed download, starts over
        cur = await conn.execute(
            "INSERT INTO images (item_id, kind, source, source_url) VALUES (%s, %s, 'remote', %s)"
            " ON CONFLICT (item_id, kind, source, coalesce(source_path, ''::bytea),"
            "  coalesce(file_id, 0))"
            " DO UPDATE SET source_url = EXCLUDED.source_url,"
            "  status = CASE WHEN images.status = 'failed'"
            "   OR images.source_url IS DISTINCT FROM EXCLUDED.source_url"
            "   THEN 'pending' ELSE images.status END"
            " RETURNING id, status",
            (item_id, image.kind, image.url),
        )
        row = await cur.fetchone()
        if row is not None and row[1] == "pending":
            pending.append(int(row[0]))
    return pending


async def record_lookup(
    conn: Conn,
    item_id: int,
    outcome: str,
    *,
    provider: str | None = None,
    filled: Sequence[str] = (),
    reason: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO metadata_lookups (item_id, outcome, provider, filled, reason)"
        " SELECT %s, %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM items WHERE id = %s)"
        " ON CONFLICT (item_id) DO UPDATE SET looked_up_at = now(), outcome = EXCLUDED.outcome,"
        " provider = EXCLUDED.provider, filled = EXCLUDED.filled, reason = EXCLUDED.reason",
        (item_id, outcome, provider, list(filled), reason[:500] if reason else None, item_id),
    )


UNAVAILABLE_RETRY = 3600.0
"""An item whose provider was down is asked again after this long (the job's own retries
come first); a matched or unmatched one after ``metadata.refresh_after``."""


async def due_items(
    conn: Conn, kinds: Sequence[str], *, refresh_after: float, limit: int
) -> list[int]:
    """Items of ``kinds`` never asked about, or asked longer ago than their outcome allows;
    series before their episodes (an episode is matched through its series)."""
    cur = await conn.execute(
        "SELECT i.id FROM items i LEFT JOIN metadata_lookups m ON m.item_id = i.id"
        " WHERE i.kind = ANY(%s) AND i.missing_since IS NULL"
        "   AND (m.item_id IS NULL"
        "    OR (m.outcome = 'unavailable' AND m.looked_up_at < now() - make_interval(secs => %s))"
        "    OR m.looked_up_at < now() - make_interval(secs => %s))"
        " ORDER BY CASE i.kind WHEN 'episode' THEN 1 ELSE 0 END, i.id LIMIT %s",
        (list(kinds), UNAVAILABLE_RETRY, refresh_after, limit),
    )
    return [int(r[0]) for r in await cur.fetchall()]


async def remove_expired_cache(conn: Conn) -> int:
    """The cleanup step: cached provider answers past their lifetime."""
    cur = await conn.execute("DELETE FROM metadata_http_cache WHERE expires_at < now()")
    return int(cur.rowcount)
