"""SQL of the browse API: keyset pages, item detail, next up, continue watching, recently added.

Plain functions over a connection (they never commit); what a viewer may see comes in
as a :class:`~revenge.modules.library.visibility.Viewer` and its ``item_filter``.
Rows come back as the JSON-ready dicts the routes send (shapes: the module README),
built here once so the HTTP layer does no second pass over 100 rows.

Keyset order: ``(<sort column>, id)`` in the asked direction, NULLs last in both
directions. A nullable column's page is two index walks glued by ``UNION ALL ... LIMIT``
(the non-NULL values, then the NULL tail by id); PostgreSQL stops at the first branch
when it fills the page. The cursor says which of the two it stopped in.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
import psycopg

from revenge.modules.library.images import image_url, image_url_sql, image_version_sql
from revenge.modules.library.visibility import Viewer

__all__ = [
    "COUNT_CAP",
    "SORTS",
    "BadCursor",
    "Cursor",
    "Filters",
    "Page",
    "continue_watching",
    "decode_cursor",
    "encode_cursor",
    "item_detail",
    "items_body",
    "list_items",
    "next_up",
    "recently_added",
    "season_episodes",
    "series_seasons",
]

Conn = psycopg.AsyncConnection[Any]
Order = Literal["asc", "desc"]

COUNT_CAP = 10_000
"""A filtered total counts at most this many rows (then ``total_capped`` is true)."""


@dataclass(frozen=True, slots=True)
class Sort:
    column: str
    nullable: bool
    cast: str
    default_order: Order


SORTS: dict[str, Sort] = {
    "title": Sort("sort_title", False, "text", "asc"),
    "year": Sort("year", True, "integer", "desc"),
    "date_added": Sort("date_added", False, "timestamptz", "desc"),
    "rating": Sort("rating", True, "real", "desc"),
    "runtime": Sort("runtime_seconds", True, "integer", "desc"),
}

# -- cursors -------------------------------------------------------------------------------

_CURSOR_VERSION = 1


class BadCursor(ValueError):
    """The cursor is not one this API gave out for this sort and order."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the last row's sort value and id, and whether it was in the NULL tail."""

    sort: str
    order: Order
    null_tail: bool
    value: Any
    id: int


def encode_cursor(cursor: Cursor) -> str:
    value = cursor.value.isoformat() if isinstance(cursor.value, datetime) else cursor.value
    raw = orjson.dumps(
        [_CURSOR_VERSION, cursor.sort, cursor.order, int(cursor.null_tail), value, cursor.id]
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str, sort: str, order: Order) -> Cursor:
    """The cursor ``text`` names, checked against the page's ``sort`` and ``order``.

    >>> c = Cursor("year", "desc", False, 1999, 42)
    >>> decode_cursor(encode_cursor(c), "year", "desc") == c
    True
    >>> decode_cursor(encode_cursor(c), "title", "desc")
    Traceback (most recent call last):
    ...
    revenge.modules.library.browse.BadCursor: the cursor belongs to another sort or order
    """
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise BadCursor("the cursor is not one this API gave out") from None
    if not (isinstance(data, list) and len(data) == 6 and data[0] == _CURSOR_VERSION):
        raise BadCursor("the cursor is not one this API gave out")
    _, c_sort, c_order, tail, value, item_id = data
    if c_sort != sort or c_order != order:
        raise BadCursor("the cursor belongs to another sort or order")
    spec = SORTS[sort]
    if tail not in (0, 1) or type(item_id) is not int or not 0 < item_id < 2**63:
        raise BadCursor("the cursor is not one this API gave out")
    if tail:
        if not spec.nullable or value is not None:
            raise BadCursor("the cursor is not one this API gave out")
        return Cursor(sort, order, True, None, item_id)
    return Cursor(sort, order, False, _cursor_value(spec, value), item_id)


def _cursor_value(spec: Sort, value: Any) -> Any:
    ok: bool
    if spec.cast == "text":
        ok = isinstance(value, str) and len(value) <= 4096 and "\x00" not in value
    elif spec.cast == "integer":
        ok = type(value) is int and -(2**31) <= value < 2**31
    elif spec.cast == "real":
        ok = type(value) in (int, float) and -1e38 < value < 1e38
    else:  # timestamptz
        try:
            value = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            value = None
        ok = value is not None and value.tzinfo is not None
    if not ok:
        raise BadCursor("the cursor is not one this API gave out")
    return value


# -- filters ---------------------------------------------------------------------------------

RESOLUTION_SQL = (
    "CASE WHEN f.width >= 3200 OR f.height >= 1800 THEN '4k'"
    " WHEN f.width >= 1800 OR f.height >= 1000 THEN '1080p'"
    " WHEN f.width >= 1200 OR f.height >= 700 THEN '720p' ELSE 'sd' END"
)
"""A file's resolution class: width first, so a scope 1920x800 is 1080p and 720x576 is SD."""


@dataclass(frozen=True, slots=True)
class Filters:
    genres: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    watched: bool | None = None
    favourite: bool | None = None
    resolution: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.genres) or any(
            v is not None
            for v in (self.year_min, self.year_max, self.watched, self.favourite, self.resolution)
        )


def _filter_sql(kind: str, filters: Filters, user_id: int) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if filters.genres:
        where.append("i.genres @> %s::text[]")
        params.append(list(filters.genres))
    if filters.year_min is not None:
        where.append("i.year >= %s")
        params.append(filters.year_min)
    if filters.year_max is not None:
        where.append("i.year <= %s")
        params.append(filters.year_max)
    if filters.watched is not None:
        if kind == "series":  # watched: it has episodes and every one of them is played
            watched = (
                "(EXISTS (SELECT 1 FROM items e WHERE e.series_id = i.id AND e.kind = 'episode')"
                " AND NOT EXISTS (SELECT 1 FROM items e WHERE e.series_id = i.id"
                " AND e.kind = 'episode' AND NOT EXISTS (SELECT 1 FROM user_item_state w"
                " WHERE w.user_id = %s AND w.item_id = e.id AND w.played)))"
            )
        else:
            watched = (
                "EXISTS (SELECT 1 FROM user_item_state w"
                " WHERE w.user_id = %s AND w.item_id = i.id AND w.played)"
            )
        where.append(watched if filters.watched else f"NOT {watched}")
        params.append(user_id)
    if filters.favourite is not None:
        fav = (
            "EXISTS (SELECT 1 FROM user_item_state w"
            " WHERE w.user_id = %s AND w.item_id = i.id AND w.favourite)"
        )
        where.append(fav if filters.favourite else f"NOT {fav}")
        params.append(user_id)
    if filters.resolution is not None:
        where.append(
            "EXISTS (SELECT 1 FROM media_files f WHERE f.item_id = i.id"  # noqa: S608
            f" AND f.missing_since IS NULL AND f.probe_status = 'ok' AND {RESOLUTION_SQL} = %s)"
        )
        params.append(filters.resolution)
    return where, params


# -- rows --------------------------------------------------------------------------------------

_ITEM_COLUMNS = (
    "id", "kind", "library_id", "parent_id", "series_id", "title", "original_title", "year",
    "premiered", "season_number", "episode_number", "episode_number_end", "rating",
    "runtime_seconds", "content_rating", "genres", "date_added", "missing_since",
)  # fmt: skip
# A real rating such as 7.3 reads back as 7.300000190734863: two decimals are what it says.
_ITEM_SELECT = ", ".join(
    "round(i.rating::numeric, 2)::float8 AS rating" if c == "rating" else f"i.{c}"
    for c in _ITEM_COLUMNS
)

# Each item leaves PostgreSQL as its JSON text (row_to_json keeps this key order): a page
# is 100 short strings to join, not 2,800 values to decode, map and encode again.
# row_to_json of a row is several times cheaper than one json_build_object of 20 pairs
# (which looks up every argument's type on every call). PostgreSQL writes times as
# RFC 3339 ("2026-12-02T12:00:00.5+00:00") and dates as ISO.
_ITEM_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "k.id"), ("kind", "k.kind"), ("library_id", "k.library_id"),
    ("parent_id", "k.parent_id"), ("series_id", "k.series_id"),
    ("series_title", "(SELECT t.title FROM items t WHERE t.id = k.series_id)"),
    ("title", "k.title"), ("original_title", "k.original_title"), ("year", "k.year"),
    ("premiered", "k.premiered"), ("season_number", "k.season_number"),
    ("episode_number", "k.episode_number"), ("episode_number_end", "k.episode_number_end"),
    ("rating", "k.rating"), ("runtime_seconds", "k.runtime_seconds"),
    ("content_rating", "k.content_rating"), ("genres", "k.genres"),
    ("date_added", "k.date_added"), ("available", "k.missing_since IS NULL"),
    ("poster", "CASE WHEN p.id IS NOT NULL THEN json_build_object('id', p.id, 'blurhash',"
               f" p.blurhash, 'url', {image_url_sql('p')}) END"),
    ("user", "json_build_object('position_ms', coalesce(s.position_ms, 0), 'played',"
             " coalesce(s.played, false), 'favourite', coalesce(s.favourite, false),"
             " 'play_count', coalesce(s.play_count, 0), 'last_played_at', s.last_played_at)"),
)  # fmt: skip
_EXTRAS_JOIN = (
    " LEFT JOIN LATERAL (SELECT im.id, im.blurhash, im.content_hash FROM images im"
    " WHERE im.item_id = k.id"
    " AND im.kind IN ('poster', 'primary', 'thumb') AND im.status <> 'failed'"
    " ORDER BY array_position(ARRAY['poster', 'primary', 'thumb'], im.kind), im.id LIMIT 1) p"
    " ON true"
    " LEFT JOIN user_item_state s ON s.user_id = %s AND s.item_id = k.id"
)


def _items_sql(inner: str, *, extra: Sequence[tuple[str, str]] = (), more: str = "") -> str:
    """Each item ``k`` of ``inner`` (selecting ``_ITEM_SELECT`` and maybe more) as one JSON
    text (``extra`` adds keys), then ``more`` columns; one parameter: the caller's id."""
    fields = ", ".join(f'{value} AS "{name}"' for name, value in (*_ITEM_FIELDS, *extra))
    return (
        f"SELECT row_to_json(j)::text{more} FROM ({inner}) AS k{_EXTRAS_JOIN}"  # noqa: S608
        f" CROSS JOIN LATERAL (SELECT {fields}) AS j"
    )


def items_body(items: Sequence[str], **fields: Any) -> bytes:
    """``{"items": [...], <fields>}`` from the items' JSON texts.

    >>> items_body(['{"id":1}'], next_cursor=None)
    b'{"items":[{"id":1}],"next_cursor":null}'
    """
    tail = orjson.dumps(fields)[1:-1] if fields else b""
    return b'{"items":[' + ",".join(items).encode() + b"]" + (b"," + tail if tail else b"") + b"}"


# -- keyset pages --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]
    """Each item's JSON text (:func:`items_body` makes the answer)."""
    next_cursor: str | None
    total: int | None
    total_capped: bool


async def list_items(
    conn: Conn,
    viewer: Viewer,
    *,
    kind: str,
    library_ids: Sequence[int],
    sort: str,
    order: Order,
    filters: Filters,
    cursor: Cursor | None,
    limit: int,
) -> Page:
    """A page of ``kind`` items of ``library_ids`` (all visible to ``viewer``): one statement.

    ``total`` is given on the first page only (no cursor): ``item_counts`` when
    unfiltered (one row per library), a count capped at :data:`COUNT_CAP` otherwise;
    either is a sub-select of the page's statement, run once.
    """
    if not library_ids:
        return Page([], None, 0 if cursor is None else None, False)
    spec = SORTS[sort]
    visible, base_params = viewer.item_filter("i", library_ids)
    extra, extra_params = _filter_sql(kind, filters, viewer.user_id)
    base = " AND ".join([visible, "i.kind = %s", *extra])
    base_params = [*base_params, kind, *extra_params]
    col = f"i.{spec.column}"
    desc = order == "desc"
    cmp, direction = ("<", " DESC") if desc else (">", "")
    branches: list[tuple[str, list[Any]]] = []
    if cursor is None or not cursor.null_tail:
        where, params = base, list(base_params)
        if spec.nullable:
            where += f" AND {col} IS NOT NULL"
        if cursor is not None:
            where += f" AND ({col}, i.id) {cmp} (%s::{spec.cast}, %s)"
            params += [cursor.value, cursor.id]
        branches.append(
            (
                f"SELECT {_ITEM_SELECT}, 0 AS tail, {col} AS sortval FROM items i WHERE {where}"  # noqa: S608
                f" ORDER BY {col}{direction}, i.id{direction} LIMIT %s",
                [*params, limit + 1],
            )
        )
    if spec.nullable:
        where, params = f"{base} AND {col} IS NULL", list(base_params)
        if cursor is not None and cursor.null_tail:
            where += f" AND i.id {cmp} %s"
            params.append(cursor.id)
        branches.append(
            (
                f"SELECT {_ITEM_SELECT}, 1 AS tail, {col} AS sortval FROM items i WHERE {where}"  # noqa: S608
                f" ORDER BY i.id{direction} LIMIT %s",
                [*params, limit + 1],
            )
        )
    params = [p for _, ps in branches for p in ps]
    if len(branches) == 1:
        inner = branches[0][0]
    else:
        inner = " UNION ALL ".join(f"({sql})" for sql, _ in branches) + " LIMIT %s"
        params.append(limit + 1)
    by_rating = None if filters.any else viewer.counted_total_sql(kind)
    counted = (filters.any or viewer.restricts_items) and by_rating is None
    total_params: list[Any]
    if cursor is not None:
        total_sql, total_params = "NULL::bigint", []
    elif by_rating is not None:  # a parental limit: the per-rating counts of the libraries
        total_sql = (
            "(SELECT coalesce(sum(n), 0)::bigint FROM item_rating_counts"  # noqa: S608
            f" WHERE library_id = ANY(%s) AND kind = %s AND {by_rating[0]})"
        )
        total_params = [list(library_ids), kind, *by_rating[1]]
    elif not counted:
        total_sql = (
            "(SELECT coalesce(sum(n), 0)::bigint FROM item_counts"
            " WHERE library_id = ANY(%s) AND kind = %s)"
        )
        total_params = [list(library_ids), kind]
    else:
        total_sql = f"(SELECT count(*) FROM (SELECT 1 FROM items i WHERE {base} LIMIT %s) c)"  # noqa: S608
        total_params = [*base_params, COUNT_CAP + 1]
    sql = _items_sql(inner, more=f", k.tail, k.sortval, k.id, {total_sql}") + (
        f" ORDER BY k.tail, k.sortval{direction}, k.id{direction}"
    )
    cur = await conn.execute(sql, [*total_params, *params, viewer.user_id])
    rows = await cur.fetchall()
    total: int | None = None
    capped = False
    if cursor is None:
        n = int(rows[0][4]) if rows else 0
        total, capped = (min(n, COUNT_CAP), n > COUNT_CAP) if counted else (n, False)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        _, tail, value, last_id, _ = rows[-1]
        next_cursor = encode_cursor(
            Cursor(sort, order, bool(tail), None if tail else value, last_id)
        )
    return Page([r[0] for r in rows], next_cursor, total, capped)


# -- one item -------------------------------------------------------------------------------------


async def visible_item(conn: Conn, viewer: Viewer, item_id: int) -> dict[str, Any] | None:
    """The item as lists show it, or None when it does not exist or the viewer cannot see it."""
    ids = viewer.library_ids()
    if not ids:
        return None
    visible, params = viewer.item_filter("i", ids)
    inner = f"SELECT {_ITEM_SELECT} FROM items i WHERE i.id = %s AND {visible}"  # noqa: S608
    cur = await conn.execute(_items_sql(inner), [item_id, *params, viewer.user_id])
    row = await cur.fetchone()
    return None if row is None else dict(orjson.loads(row[0]))


async def item_detail(conn: Conn, viewer: Viewer, item_id: int) -> dict[str, Any] | None:
    """Everything about one item the viewer may see: files with streams and chapters,
    images, people, the caller's state, and its children (seasons, episodes, extras)."""
    item = await visible_item(conn, viewer, item_id)
    if item is None:
        return None
    cur = await conn.execute(
        "SELECT overview, tagline, studios, people, provider_ids, sort_title, extra_type,"
        " absolute_number, updated_at FROM items WHERE id = %s",
        (item_id,),
    )
    more = await cur.fetchone()
    assert more is not None
    item |= {
        "overview": more[0],
        "tagline": more[1],
        "studios": more[2],
        "people": more[3],
        "provider_ids": more[4],
        "sort_title": more[5],
        "extra_type": more[6],
        "absolute_number": more[7],
        "updated_at": more[8],
        "files": await _files(conn, item_id, admin=viewer.admin),
        "images": await _images(conn, item_id),
        "seasons": [],
        "episodes": [],
        "extras": _parsed(await _children(conn, viewer, item_id, "extra")),
    }
    if item["kind"] == "series":
        item["seasons"] = _parsed(await series_seasons(conn, viewer, item_id))
    elif item["kind"] == "season":
        item["episodes"] = _parsed(await _children(conn, viewer, item_id, "episode"))
    return item


def _parsed(items: Sequence[str]) -> list[Any]:
    return [orjson.loads(item) for item in items]


async def _files(conn: Conn, item_id: int, *, admin: bool) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT id, path_text, size, container, duration, bitrate, width, height, video_codec,"
        " hdr, version_label, part, stereo, probe_status, probe_reason, missing_since, date_added"
        " FROM media_files WHERE item_id = %s"
        " ORDER BY version_label NULLS FIRST, part NULLS FIRST, id",
        (item_id,),
    )
    files = [
        {
            "id": r[0],
            "name": r[1].rsplit("/", 1)[-1],
            "path": r[1] if admin else None,
            "size": r[2],
            "container": r[3],
            "duration": r[4],
            "bitrate": r[5],
            "width": r[6],
            "height": r[7],
            "video_codec": r[8],
            "hdr": r[9],
            "version_label": r[10],
            "part": r[11],
            "stereo": r[12],
            "probe_status": r[13],
            "probe_reason": r[14],
            "available": r[15] is None,
            "date_added": r[16],
            "streams": [],
            "chapters": [],
        }
        for r in await cur.fetchall()
    ]
    if not files:
        return files
    by_id = {f["id"]: f for f in files}
    cur = await conn.execute(
        "SELECT file_id, index, kind, codec, profile, level, width, height, bit_depth, hdr,"
        " frame_rate, channels, channel_layout, sample_rate, bitrate, language, title,"
        " is_default, is_forced, is_hearing_impaired, external_path IS NOT NULL"
        " FROM media_streams WHERE file_id = ANY(%s) ORDER BY file_id, index",
        (list(by_id),),
    )
    for r in await cur.fetchall():
        by_id[r[0]]["streams"].append(
            {
                "index": r[1], "kind": r[2], "codec": r[3], "profile": r[4], "level": r[5],
                "width": r[6], "height": r[7], "bit_depth": r[8], "hdr": r[9],
                "frame_rate": r[10], "channels": r[11], "channel_layout": r[12],
                "sample_rate": r[13], "bitrate": r[14], "language": r[15], "title": r[16],
                "default": r[17], "forced": r[18], "hearing_impaired": r[19], "external": r[20],
            }
        )  # fmt: skip
    cur = await conn.execute(
        'SELECT file_id, index, start, "end", title FROM media_chapters'
        " WHERE file_id = ANY(%s) ORDER BY file_id, index",
        (list(by_id),),
    )
    for r in await cur.fetchall():
        by_id[r[0]]["chapters"].append({"index": r[1], "start": r[2], "end": r[3], "title": r[4]})
    return files


async def _images(conn: Conn, item_id: int) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT id, kind, source, width, height, blurhash, status,"  # noqa: S608
        f" {image_version_sql('images')} FROM images"
        " WHERE item_id = %s AND status <> 'failed' ORDER BY kind, id",
        (item_id,),
    )
    return [
        {
            "id": r[0],
            "kind": r[1],
            "source": r[2],
            "width": r[3],
            "height": r[4],
            "blurhash": r[5],
            "status": r[6],
            "url": image_url(r[0], r[7]),
        }
        for r in await cur.fetchall()
    ]


_CHILD_ORDER = "k.season_number NULLS LAST, k.episode_number NULLS LAST, k.premiered, k.id"


async def _children(conn: Conn, viewer: Viewer, parent_id: int, kind: str) -> list[str]:
    """Items of ``kind`` directly under ``parent_id`` (which the caller checked is visible)."""
    visible, params = viewer.item_filter("i", viewer.library_ids())
    inner = (
        f"SELECT {_ITEM_SELECT} FROM items i"  # noqa: S608
        f" WHERE i.parent_id = %s AND i.kind = %s AND {visible}"
    )
    cur = await conn.execute(
        _items_sql(inner) + f" ORDER BY {_CHILD_ORDER}",
        [parent_id, kind, *params, viewer.user_id],
    )
    return [r[0] for r in await cur.fetchall()]


async def series_seasons(conn: Conn, viewer: Viewer, series_id: int) -> list[str]:
    """Seasons of a visible series in order, each with its episode and played counts."""
    visible, params = viewer.item_filter("i", viewer.library_ids())
    inner = (
        f"SELECT {_ITEM_SELECT}, (SELECT count(*) FROM items e WHERE e.parent_id = i.id"  # noqa: S608
        " AND e.kind = 'episode') AS episode_count,"
        " (SELECT count(*) FROM items e JOIN user_item_state w ON w.item_id = e.id"
        " AND w.user_id = %s AND w.played WHERE e.parent_id = i.id AND e.kind = 'episode')"
        f" AS played_count FROM items i WHERE i.parent_id = %s AND i.kind = 'season' AND {visible}"
    )
    counts = (("episode_count", "k.episode_count"), ("played_count", "k.played_count"))
    cur = await conn.execute(
        _items_sql(inner, extra=counts) + f" ORDER BY {_CHILD_ORDER}",
        [viewer.user_id, series_id, *params, viewer.user_id],
    )
    return [r[0] for r in await cur.fetchall()]


async def season_episodes(conn: Conn, viewer: Viewer, season_id: int) -> list[str]:
    return await _children(conn, viewer, season_id, "episode")


# -- home rows --------------------------------------------------------------------------------------


async def continue_watching(conn: Conn, viewer: Viewer, limit: int) -> list[str]:
    """Started, unfinished movies and episodes, most recently played first."""
    ids = viewer.library_ids()
    if not ids:
        return []
    visible, params = viewer.item_filter("i", ids)
    inner = (
        f"SELECT {_ITEM_SELECT}, r.last_played_at AS resumed FROM user_item_state r"  # noqa: S608
        f" JOIN items i ON i.id = r.item_id WHERE r.user_id = %s AND r.position_ms > 0"
        f" AND NOT r.played AND {visible} ORDER BY r.last_played_at DESC LIMIT %s"
    )
    cur = await conn.execute(
        _items_sql(inner) + " ORDER BY k.resumed DESC, k.id DESC",
        [viewer.user_id, *params, limit, viewer.user_id],
    )
    return [r[0] for r in await cur.fetchall()]


async def recently_added(
    conn: Conn, viewer: Viewer, kind: str, limit: int, library: int | None = None
) -> list[str]:
    ids = viewer.library_ids(kind, library)
    if not ids:
        return []
    visible, params = viewer.item_filter("i", ids)
    inner = (
        f"SELECT {_ITEM_SELECT} FROM items i WHERE {visible} AND i.kind = %s"  # noqa: S608
        " ORDER BY i.date_added DESC, i.id DESC LIMIT %s"
    )
    cur = await conn.execute(
        _items_sql(inner) + " ORDER BY k.date_added DESC, k.id DESC",
        [*params, kind, limit, viewer.user_id],
    )
    return [r[0] for r in await cur.fetchall()]


async def next_up(
    conn: Conn, viewer: Viewer, limit: int, series_id: int | None = None
) -> list[str]:
    """Per series the caller watched: the first unplayed episode after the one played last;
    series by when that was, most recent first (finished series give nothing).

    ``user_series_progress`` (migration 0005, kept by a trigger on ``user_item_state``)
    holds the episode played last per series, so this walks the caller's series newest
    first and stops at ``limit``, however many episodes they played.
    """
    ids = viewer.library_ids("episode")
    if not ids:
        return []
    visible, params = viewer.item_filter("i", ids)
    one_series = " AND g.series_id = %s" if series_id is not None else ""
    inner = (
        f"SELECT {_ITEM_SELECT}, g.last_played_at AS watched_at"  # noqa: S608
        " FROM user_series_progress g JOIN items le ON le.id = g.episode_id"
        " CROSS JOIN LATERAL (SELECT n.id FROM items n WHERE n.series_id = g.series_id"
        " AND n.kind = 'episode' AND n.missing_since IS NULL"
        " AND (n.season_number, n.episode_number, n.id) > (coalesce(le.season_number, -1),"
        " coalesce(le.episode_number, -1), le.id)"
        " AND NOT EXISTS (SELECT 1 FROM user_item_state p WHERE p.user_id = g.user_id"
        " AND p.item_id = n.id AND p.played)"
        " ORDER BY n.season_number, n.episode_number, n.id LIMIT 1) nx"
        " JOIN items i ON i.id = nx.id"
        f" WHERE g.user_id = %s{one_series} AND {visible}"
        " ORDER BY g.last_played_at DESC, g.series_id LIMIT %s"
    )
    values: list[Any] = [viewer.user_id]
    if series_id is not None:
        values.append(series_id)
    values += [*params, limit, viewer.user_id]
    cur = await conn.execute(_items_sql(inner) + " ORDER BY k.watched_at DESC, k.series_id", values)
    return [r[0] for r in await cur.fetchall()]
