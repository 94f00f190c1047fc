"""An administrator's edit of an item's metadata, and the locks that keep it.

The top rung of the metadata chain (``user > nfo > embedded > filename``): an edited field
is written with source ``user`` and, unless the edit says ``lock: false``, added to
``items.locked_fields``, so no scan (:mod:`.store`), probe (:mod:`.probe`) or remote fill
changes it again. ``locked_fields`` in an edit replaces the whole lock set (the edited
fields are added to it). A field taken out of the set also loses its recorded source, so
the next scan that reads the file's NFO (or tags, or name) writes its value again.

>>> plan_edit({"title": "Mine"}, None, True, current_locks=["overview"], sources={"title": "nfo"})
EditPlan(values={'title': 'Mine', 'sort_title': 'mine'}, locks=['overview', 'title'], sources={'title': 'user'})
>>> plan_edit({}, [], True, current_locks=["title"], sources={"title": "user", "year": "nfo"})
EditPlan(values={}, locks=[], sources={'year': 'nfo'})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from revenge.modules.library.plan import sort_title

__all__ = ["EDITABLE", "LOCKABLE", "EditPlan", "edit_item", "plan_edit"]

Conn = psycopg.AsyncConnection[Any]

EDITABLE: tuple[str, ...] = (
    "title",
    "original_title",
    "sort_title",
    "year",
    "premiered",
    "overview",
    "tagline",
    "runtime_seconds",
    "rating",
    "content_rating",
    "genres",
    "studios",
)
"""Fields an administrator may edit (the structural ones, season and episode numbers, are
the scanner's)."""

LOCKABLE: tuple[str, ...] = (*EDITABLE, "people", "provider_ids")
"""Fields that may be locked without an edit (cast and provider ids come from NFOs)."""

_COLUMNS = (
    "id, kind, title, sort_title, original_title, year, premiered, overview, tagline,"
    " runtime_seconds, rating, content_rating, genres, studios, locked_fields, field_sources"
)


@dataclass(frozen=True, slots=True)
class EditPlan:
    values: dict[str, Any]  # column -> new value (``sort_title`` is the stored sort key)
    locks: list[str]  # the item's whole lock set after the edit, sorted
    sources: dict[str, str]  # the item's whole field_sources after the edit


def plan_edit(
    values: Mapping[str, Any],
    locked_fields: Sequence[str] | None,
    lock: bool,
    *,
    current_locks: Sequence[str],
    sources: Mapping[str, str],
) -> EditPlan:
    """What an edit writes (pure). ``values``: the fields given (``None`` clears one);
    ``locked_fields``: the new lock set, or ``None`` to keep the current one."""
    out = dict(values)
    if "sort_title" in out or "title" in out:
        # the column holds the sort key; a given sort title is keyed like a scanned one
        given = out.get("sort_title") or out.get("title")
        if given is not None:
            out["sort_title"] = sort_title(given)
        else:
            out.pop("sort_title")  # cleared: the next line keeps the stored key
    locks = set(current_locks if locked_fields is None else locked_fields)
    if lock:
        locks |= set(values)
    new_sources = dict(sources)
    for name in values:
        new_sources[name] = "user"
    for name in set(current_locks) - locks:
        # unlocked: forget the source too, so the next scan's value (NFO, tags) wins
        new_sources.pop(name, None)
    return EditPlan(out, sorted(locks), new_sources)


def _row(row: Sequence[Any]) -> dict[str, Any]:
    names = [c.strip() for c in _COLUMNS.split(",")]
    data = dict(zip(names, row, strict=True))
    data["premiered"] = data["premiered"].isoformat() if data["premiered"] else None
    data["genres"] = list(data["genres"] or ())
    data["studios"] = list(data["studios"] or ())
    data["locked_fields"] = sorted(data["locked_fields"] or ())
    return data


async def edit_item(
    conn: Conn,
    item_id: int,
    values: Mapping[str, Any],
    locked_fields: Sequence[str] | None,
    lock: bool,
) -> dict[str, Any] | None:
    """Apply an edit to item ``item_id`` (its row locked meanwhile, so two edits never
    lose each other's locks); None when there is no such item. Does not commit."""
    cur = await conn.execute(
        "SELECT locked_fields, field_sources FROM items WHERE id = %s FOR UPDATE", (item_id,)
    )
    found = await cur.fetchone()
    if found is None:
        return None
    plan = plan_edit(values, locked_fields, lock, current_locks=found[0], sources=found[1])
    unknown = set(plan.values) - set(EDITABLE)
    if unknown:  # pragma: no cover - the route's model allows only EDITABLE
        raise ValueError(f"not editable: {sorted(unknown)}")
    # column names come from EDITABLE only (checked above), values are parameters
    sets = [f"{name} = %s" for name in plan.values]
    params: list[Any] = list(plan.values.values())
    sets += ["locked_fields = %s", "field_sources = %s"]
    params += [plan.locks, Jsonb(plan.sources)]
    cur = await conn.execute(
        f"UPDATE items SET {', '.join(sets)} WHERE id = %s RETURNING {_COLUMNS}",  # noqa: S608
        (*params, item_id),
    )
    row = await cur.fetchone()
    assert row is not None  # the row is locked above
    return _row(row)
