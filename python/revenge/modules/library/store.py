"""The scanner's SQL: one batch of items, files and images per transaction; missing marks.

Each batch is a handful of statements over ``jsonb_to_recordset`` (one parameter, one round
trip each), so 500 files cost a few milliseconds of locks, never a long table lock.
Item values merge by source rank (``user > nfo > embedded > filename``): a stored value
wins over a new one from a lower source, and a locked field never changes. Locks an NFO
declares (``lockdata``, ``lockedfields``) join the item's ``locked_fields`` after the
values of that write (set against the stored locks), so the NFO's own values land first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from revenge.modules.library.plan import FilePlan, ItemRow

__all__ = [
    "Known",
    "KnownFile",
    "LibraryGone",
    "Move",
    "adopt",
    "load_known",
    "mark_missing",
    "write_batch",
]

Conn = psycopg.AsyncConnection[Any]

# (column, SQL type in the recordset); arrays and jsonb merge the same way as scalars
_FIELDS: tuple[tuple[str, str], ...] = (
    ("title", "text"),
    ("original_title", "text"),
    ("year", "integer"),
    ("premiered", "date"),
    ("season_number", "integer"),
    ("episode_number", "integer"),
    ("episode_number_end", "integer"),
    ("absolute_number", "integer"),
    ("extra_type", "text"),
    ("overview", "text"),
    ("tagline", "text"),
    ("runtime_seconds", "integer"),
    ("rating", "real"),
    ("content_rating", "text"),
    ("genres", "text[]"),
    ("studios", "text[]"),
    ("people", "jsonb"),
    ("provider_ids", "jsonb"),
)
_RANK = "coalesce(array_position(ARRAY['filename','embedded','nfo','user'], {}), 0)"


def _merge(col: str) -> str:
    new_rank = _RANK.format(f"EXCLUDED.field_sources->>'{col}'")
    old_rank = _RANK.format(f"i.field_sources->>'{col}'")
    return (
        f"{col} = CASE WHEN '{col}' = ANY(i.locked_fields)"
        f" OR NOT (EXCLUDED.field_sources ? '{col}') THEN i.{col}"
        f" WHEN {new_rank} >= {old_rank} THEN EXCLUDED.{col} ELSE i.{col} END"
    )


_SOURCES_MERGE = (
    "field_sources = i.field_sources || coalesce((SELECT jsonb_object_agg(k, v)"  # noqa: S608
    " FROM jsonb_each_text(EXCLUDED.field_sources) AS e(k, v)"
    f" WHERE NOT k = ANY(i.locked_fields) AND {_RANK.format('v')}"
    f" >= {_RANK.format('i.field_sources->>k')}), '{{}}'::jsonb)"
)

_DEFAULTS = {"genres": "'{}'::text[]", "studios": "'{}'::text[]", "people": "'[]'::jsonb",
             "provider_ids": "'{}'::jsonb"}  # fmt: skip
_COLS = ", ".join(c for c, _ in _FIELDS if c != "title")
_VALUES = ", ".join(
    f"coalesce(x.{c}, {_DEFAULTS[c]})" if c in _DEFAULTS else f"x.{c}"
    for c, _ in _FIELDS
    if c != "title"
)
_RECORD = ", ".join(
    f"{c} {t}"
    for c, t in (
        ("kind", "text"),
        ("key", "text"),
        ("parent_key", "text"),
        ("series_key", "text"),
        ("sort_title", "text"),
        ("sources", "jsonb"),
        ("nfo_status", "text"),
        ("ord", "integer"),
        ("locks", "text[]"),
        *_FIELDS,
    )
)

UPSERT_ITEMS = f"""
INSERT INTO items AS i (library_id, kind, key, parent_id, series_id, title, sort_title,
                        field_sources, nfo_status, locked_fields, {_COLS})
SELECT %(library)s, x.kind, x.key,
       (SELECT p.id FROM items p WHERE p.library_id = %(library)s AND p.key = x.parent_key),
       (SELECT s.id FROM items s WHERE s.library_id = %(library)s AND s.key = x.series_key),
       x.title, x.sort_title, x.sources, x.nfo_status, coalesce(x.locks, '{{}}'), {_VALUES}
  FROM jsonb_to_recordset(%(rows)s) AS x({_RECORD})
 ORDER BY x.ord
ON CONFLICT (library_id, key) DO UPDATE SET
    parent_id = coalesce(EXCLUDED.parent_id, i.parent_id),
    nfo_status = coalesce(EXCLUDED.nfo_status, i.nfo_status),
    missing_since = NULL,
    sort_title = CASE WHEN i.locked_fields && ARRAY['title', 'sort_title'] THEN i.sort_title
                      WHEN {_RANK.format("EXCLUDED.field_sources->>'title'")}
                           >= {_RANK.format("i.field_sources->>'title'")}
                      THEN EXCLUDED.sort_title ELSE i.sort_title END,
    {", ".join(_merge(c) for c, _ in _FIELDS)},
    {_SOURCES_MERGE},
    locked_fields = CASE WHEN EXCLUDED.locked_fields <@ i.locked_fields THEN i.locked_fields
                         ELSE ARRAY(SELECT DISTINCT unnest(i.locked_fields
                                                           || EXCLUDED.locked_fields)
                                    ORDER BY 1) END
RETURNING id, key, kind, parent_id
"""  # noqa: S608

UPSERT_FILES = """
INSERT INTO media_files AS f (item_id, library_id, root_id, path, path_text, size, mtime_ns,
                              inode, device, version_label, part, stereo)
SELECT i.id, %(library)s, x.root, decode(x.path, 'hex'), x.path_text, x.size, x.mtime_ns,
       x.inode, x.device, x.version_label, x.part, x.stereo
  FROM jsonb_to_recordset(%(rows)s) AS x(item_key text, root bigint, path text, path_text text,
       size bigint, mtime_ns bigint, inode bigint, device bigint, version_label text,
       part integer, stereo text)
  JOIN items i ON i.library_id = %(library)s AND i.key = x.item_key
ON CONFLICT (path) DO UPDATE SET
    item_id = EXCLUDED.item_id, size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns,
    inode = EXCLUDED.inode, device = EXCLUDED.device, root_id = EXCLUDED.root_id,
    version_label = EXCLUDED.version_label, part = EXCLUDED.part, stereo = EXCLUDED.stereo,
    missing_since = NULL, probe_status = 'pending', probe_reason = NULL, fingerprint = NULL
RETURNING id
"""

UPSERT_IMAGES = """
INSERT INTO images AS g (item_id, kind, source, source_path, source_size, source_mtime_ns)
SELECT i.id, x.kind, 'sidecar', decode(x.path, 'hex'), x.size, x.mtime_ns
  FROM jsonb_to_recordset(%(rows)s) AS x(item_key text, kind text, path text, size bigint,
       mtime_ns bigint)
  JOIN items i ON i.library_id = %(library)s AND i.key = x.item_key
ON CONFLICT (item_id, kind, source, coalesce(source_path, ''::bytea), coalesce(file_id, 0))
DO UPDATE SET source_size = EXCLUDED.source_size, source_mtime_ns = EXCLUDED.source_mtime_ns,
    status = CASE WHEN g.source_size IS DISTINCT FROM EXCLUDED.source_size
                    OR g.source_mtime_ns IS DISTINCT FROM EXCLUDED.source_mtime_ns
                  THEN 'pending' ELSE g.status END
RETURNING id, status
"""

# the fingerprint stays when the content is known to be the same: matched by it, or a
# rename that kept the mtime
MOVE_FILE = """
UPDATE media_files SET path = %s, path_text = %s, size = %s, mtime_ns = %s, inode = %s,
       device = %s, root_id = %s, missing_since = NULL,
       fingerprint = CASE WHEN %s OR mtime_ns = %s THEN fingerprint END
 WHERE id = %s
"""


_LEVELS = (("movie", "series"), ("season",), ("episode", "extra"))


class LibraryGone(Exception):
    """The library was deleted while it was being scanned."""


@dataclass(frozen=True, slots=True)
class KnownFile:
    id: int
    size: int
    mtime_ns: int
    inode: int
    device: int
    item_key: str
    missing: bool
    fingerprint: bytes | None = None


Known = dict[bytes, KnownFile]


@dataclass(frozen=True, slots=True)
class Move:
    """Known file ``file_id`` is now at ``path`` (renamed, or copied elsewhere and the
    original deleted): its row moves, so item, images and watch state stay."""

    file_id: int
    root_id: int
    path: bytes
    size: int
    mtime_ns: int
    inode: int
    device: int
    by_content: bool = False  # matched by fingerprint (a new inode)


async def load_known(conn: Conn, library_id: int, prefixes: Sequence[bytes] | None = None) -> Known:
    """Every file of the library, by path: what an unchanged rescan compares against.

    ``prefixes`` (folders ending in ``/``): only the files under them (a folder's scan;
    ranges over the unique ``path`` index, not the whole library).
    """
    if prefixes is None:
        cur = await conn.execute(
            "SELECT f.path, f.id, f.size, f.mtime_ns, f.inode, f.device, i.key,"
            " f.missing_since IS NOT NULL, f.fingerprint"
            " FROM media_files f JOIN items i ON i.id = f.item_id"
            " WHERE f.library_id = %s",
            (library_id,),
        )
    else:
        # every path under "<folder>/" sorts between it and "<folder>0" ('0' follows '/')
        ends = [p[:-1] + b"0" for p in prefixes]
        cur = await conn.execute(
            "SELECT f.path, f.id, f.size, f.mtime_ns, f.inode, f.device, i.key,"
            " f.missing_since IS NOT NULL, f.fingerprint"
            " FROM unnest(%s::bytea[], %s::bytea[]) AS r(lo, hi)"
            " JOIN media_files f ON f.path >= r.lo AND f.path < r.hi"
            " JOIN items i ON i.id = f.item_id WHERE f.library_id = %s",
            (list(prefixes), ends, library_id),
        )
    known: Known = {}
    for path, fid, size, mtime, inode, device, key, missing, mark in await cur.fetchall():
        known[bytes(path)] = KnownFile(
            fid, size, mtime, inode, device, key, missing, None if mark is None else bytes(mark)
        )
    return known


def _item_json(rows: Sequence[ItemRow]) -> list[dict[str, Any]]:
    # a batch names a series or season once per episode: keep the richest (last) and
    # order parents before children so the sub-selects find them
    by_key: dict[str, dict[str, Any]] = {}
    for row in rows:
        data = row.as_json()
        old = by_key.get(row.key)
        if old is not None:
            for name, source in old["sources"].items():
                if name not in data["sources"]:
                    data[name] = old[name]
                    data["sources"][name] = source
        by_key[row.key] = data
    order = {"movie": 0, "series": 0, "season": 1, "episode": 2, "extra": 3}
    out = sorted(by_key.values(), key=lambda d: order[d["kind"]])
    for n, d in enumerate(out):
        d["ord"] = n
    return out


@dataclass(frozen=True, slots=True)
class BatchResult:
    items: list[tuple[int, str, str]]  # id, key, kind of every item written
    files: list[int]  # ids of files written (new or changed): to probe
    orphans: list[tuple[int, str]]  # items whose parent was not written yet: (id, parent key)
    images: list[int] = field(default_factory=list)  # new or changed images: to process


async def adopt(conn: Conn, library_id: int, orphans: Sequence[tuple[int, str]]) -> None:
    """Point items at parents written by a later batch (an extra before its movie)."""
    if orphans:
        await conn.execute(
            "UPDATE items e SET parent_id = p.id FROM unnest(%s::bigint[], %s::text[]) AS v(id, key)"
            " JOIN items p ON p.library_id = %s AND p.key = v.key WHERE e.id = v.id",
            ([o[0] for o in orphans], [o[1] for o in orphans], library_id),
        )


async def write_batch(
    conn: Conn,
    library_id: int,
    plans: Sequence[tuple[int, FilePlan]],
    moves: Sequence[Move] = (),
) -> BatchResult:
    """Upsert one batch in one transaction; ``plans`` are (root id, plan). Raises LibraryGone."""
    items = _item_json([row for _, plan in plans for row in plan.items])
    files = [
        {
            "item_key": p.file.item_key,
            "root": root,
            "path": p.file.path.hex(),
            "path_text": p.file.path.decode("utf-8", "replace").replace("\x00", ""),
            "size": p.file.size,
            "mtime_ns": p.file.mtime_ns,
            "inode": p.file.inode,
            "device": p.file.device,
            "version_label": p.file.version_label,
            "part": p.file.part,
            "stereo": p.file.stereo,
        }
        for root, p in plans
    ]
    # one folder poster serves every version of a movie: one row per (item, kind, path)
    images = list(
        {
            (g.item_key, g.kind, g.path): {"item_key": g.item_key, "kind": g.kind,
             "path": g.path.hex(), "size": g.size, "mtime_ns": g.mtime_ns}
            for _, p in plans
            for g in p.images
        }.values()
    )  # fmt: skip
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "SELECT 1 FROM libraries WHERE id = %s FOR SHARE", (library_id,)
            )
            if await cur.fetchone() is None:
                raise LibraryGone(library_id)
            written: list[tuple[int, str, str]] = []
            orphans: list[tuple[int, str]] = []
            parents = {d["key"]: d["parent_key"] for d in items if d["parent_key"]}
            # one statement per level: a statement's sub-selects do not see its own rows
            for level in _LEVELS:
                rows = [d for d in items if d["kind"] in level]
                if rows:
                    cur = await conn.execute(
                        UPSERT_ITEMS, {"library": library_id, "rows": Jsonb(rows, dumps=_dumps)}
                    )
                    for r in await cur.fetchall():
                        written.append((int(r[0]), r[1], r[2]))
                        parent = parents.get(r[1])
                        if r[3] is None and parent is not None:
                            orphans.append((int(r[0]), parent))
            file_ids: list[int] = []
            if files:
                cur = await conn.execute(
                    UPSERT_FILES, {"library": library_id, "rows": Jsonb(files, dumps=_dumps)}
                )
                file_ids = [int(r[0]) for r in await cur.fetchall()]
            image_ids: list[int] = []
            if images:
                cur = await conn.execute(
                    UPSERT_IMAGES, {"library": library_id, "rows": Jsonb(images, dumps=_dumps)}
                )
                image_ids = [int(r[0]) for r in await cur.fetchall() if r[1] == "pending"]
            if moves:
                async with conn.cursor() as mc:
                    await mc.executemany(
                        MOVE_FILE,
                        [
                            (
                                m.path,
                                m.path.decode("utf-8", "replace"),
                                m.size,
                                m.mtime_ns,
                                m.inode,
                                m.device,
                                m.root_id,
                                m.by_content,
                                m.mtime_ns,
                                m.file_id,
                            )
                            for m in moves
                        ],
                    )
    except psycopg.errors.ForeignKeyViolation:
        raise LibraryGone(library_id) from None
    return BatchResult(written, file_ids, orphans, image_ids)


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


async def mark_missing(
    conn: Conn, library_id: int, gone: Sequence[int], back: Sequence[int]
) -> tuple[int, int]:
    """Files not found (``gone``) get ``missing_since``; found again (``back``) lose it.

    Items follow their files: an item none of whose files is present is missing.
    """
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE media_files SET missing_since = now()"
            " WHERE id = ANY(%s) AND missing_since IS NULL",
            (list(gone),),
        )
        marked = cur.rowcount
        await conn.execute(
            "UPDATE media_files SET missing_since = NULL WHERE id = ANY(%s)", (list(back),)
        )
        await conn.execute(
            "UPDATE items i SET missing_since = now()"
            " WHERE i.library_id = %s AND i.missing_since IS NULL"
            " AND i.kind IN ('movie', 'episode', 'extra')"
            " AND NOT EXISTS (SELECT 1 FROM media_files f WHERE f.item_id = i.id"
            "                 AND f.missing_since IS NULL)",
            (library_id,),
        )
        cur = await conn.execute(
            "UPDATE items i SET missing_since = NULL"
            " WHERE i.library_id = %s AND i.missing_since IS NOT NULL"
            " AND EXISTS (SELECT 1 FROM media_files f WHERE f.item_id = i.id"
            "             AND f.missing_since IS NULL)",
            (library_id,),
        )
    return marked, cur.rowcount
