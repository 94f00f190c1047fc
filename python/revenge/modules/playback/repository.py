"""Playback's SQL: plain functions over a connection that never commit.

Visibility is the library's one rule (``modules/library/visibility.py``): an item the user
may not see is not found.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from revenge.modules.playback.transcoder import MediaInfo, PacketIndex, StreamInfo

Connection = AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class PlayableFile:
    id: int
    item_id: int
    path: bytes  # os.fsencode of the absolute path, exactly as on disk
    size: int
    mtime_ns: int
    duration: float | None
    probe_status: str
    missing: bool
    runtime_seconds: int | None

    @property
    def fspath(self) -> str:
        return os.fsdecode(self.path)


def _visible(alias: str) -> str:
    # library imports playback (the transcoder's key): importing library at this module's
    # top would be circular, so its visibility rule is read when first used
    from revenge.modules.library.visibility import item_visible_sql

    return item_visible_sql(alias)


def _viewer(user_id: int, admin: bool) -> dict[str, Any]:
    from revenge.modules.library.visibility import viewer_params

    return viewer_params(user_id, admin=admin)


# What a PlayableFile is read from (files aliased f, their items i), in its field order.
_FILE_COLUMNS = (
    "f.id, f.item_id, f.path, f.size, f.mtime_ns, f.duration, f.probe_status,"
    " f.missing_since IS NOT NULL, i.runtime_seconds"
)


def _playable(row: tuple[Any, ...] | None) -> PlayableFile | None:
    if row is None:
        return None
    return PlayableFile(
        int(row[0]), int(row[1]), bytes(row[2]), int(row[3]), int(row[4]),
        row[5], str(row[6]), bool(row[7]), row[8],
    )  # fmt: skip


async def playable_file(
    conn: Connection, user_id: int, admin: bool, item_id: int, file_id: int | None
) -> PlayableFile | None:
    """The file to play: ``file_id`` when it belongs to the item, else the item's best present,
    probed file (first part, tallest). ``None`` when the item is not visible to the user."""
    cur = await conn.execute(
        f"SELECT {_FILE_COLUMNS}"  # noqa: S608
        " FROM items i JOIN media_files f ON f.item_id = i.id"
        f" WHERE i.id = %(item)s AND {_visible('i')}"
        " AND (%(file)s::bigint IS NULL OR f.id = %(file)s)"
        " ORDER BY f.missing_since IS NOT NULL, f.probe_status = 'failed',"
        " f.part NULLS FIRST, f.height DESC NULLS LAST, f.id LIMIT 1",
        {**_viewer(user_id, admin), "item": item_id, "file": file_id},
    )
    return _playable(await cur.fetchone())


async def file_by_id(conn: Connection, file_id: int) -> PlayableFile | None:
    cur = await conn.execute(
        f"SELECT {_FILE_COLUMNS}"  # noqa: S608
        " FROM media_files f JOIN items i ON i.id = f.item_id WHERE f.id = %s",
        (file_id,),
    )
    return _playable(await cur.fetchone())


# --- the signing key ------------------------------------------------------------------------


async def signing_key(conn: Connection) -> bytes:
    """The shared key, made by the first caller (every process and host reads the same row)."""
    await conn.execute(
        "INSERT INTO playback_secret (id, key) VALUES (1, %s) ON CONFLICT (id) DO NOTHING",
        (secrets.token_bytes(32),),
    )
    cur = await conn.execute("SELECT key FROM playback_secret WHERE id = 1")
    row = await cur.fetchone()
    assert row is not None
    return bytes(row[0])


# --- probe and keyframe index ---------------------------------------------------------------


def media_to_json(media: MediaInfo) -> dict[str, Any]:
    data = asdict(media)
    for stream in data["streams"]:
        rate = stream["frame_rate"]
        stream["frame_rate"] = None if rate is None else [rate.numerator, rate.denominator]
    return data


def media_from_json(data: dict[str, Any]) -> MediaInfo:
    streams = []
    for raw in data["streams"]:
        fields = dict(raw)
        rate = fields.pop("frame_rate")
        streams.append(StreamInfo(**fields, frame_rate=Fraction(*rate) if rate else None))
    return MediaInfo(
        data["container"], data["duration"], data["bit_rate"], tuple(streams), data["start_time"]
    )


def packets_to_json(packets: PacketIndex) -> dict[str, Any]:
    return {
        "keyframes": list(packets.keyframes),
        "chunk_bytes": list(packets.chunk_bytes),
        "video_end": packets.video_end,
    }


def packets_from_json(data: dict[str, Any]) -> PacketIndex:
    return PacketIndex(
        tuple(float(k) for k in data["keyframes"]),
        tuple(int(b) for b in data["chunk_bytes"]),
        float(data["video_end"]),
    )


async def stored_media(
    conn: Connection, file_id: int, size: int, mtime_ns: int
) -> tuple[MediaInfo, PacketIndex | None] | None:
    cur = await conn.execute(
        "SELECT media, packets FROM playback_media WHERE file_id = %s AND size = %s"
        " AND mtime_ns = %s",
        (file_id, size, mtime_ns),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return media_from_json(row[0]), packets_from_json(row[1]) if row[1] else None


async def store_media(
    conn: Connection,
    file_id: int,
    size: int,
    mtime_ns: int,
    media: MediaInfo,
    packets: PacketIndex | None,
) -> None:
    await conn.execute(
        "INSERT INTO playback_media (file_id, size, mtime_ns, media, packets)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (file_id) DO UPDATE SET size = EXCLUDED.size,"
        " mtime_ns = EXCLUDED.mtime_ns, media = EXCLUDED.media,"
        " packets = coalesce(EXCLUDED.packets, CASE WHEN playback_media.size = EXCLUDED.size"
        " AND playback_media.mtime_ns = EXCLUDED.mtime_ns THEN playback_media.packets END)",
        (
            file_id, size, mtime_ns, Jsonb(media_to_json(media)),
            Jsonb(packets_to_json(packets)) if packets else None,
        ),
    )  # fmt: skip


# --- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    user_id: int
    item_id: int
    file_id: int
    method: str
    request: dict[str, Any]
    created_at: float  # epoch seconds
    expires_at: float
    ended: bool


async def insert_session(
    conn: Connection,
    session_id: str,
    user_id: int,
    item_id: int,
    file_id: int,
    method: str,
    request: dict[str, Any],
    ttl: float,
    owner: str | None,
) -> tuple[float, float]:
    """The session's (created_at, expires_at) as epoch seconds."""
    cur = await conn.execute(
        "INSERT INTO playback_sessions (id, user_id, item_id, file_id, method, request,"
        " expires_at, owner) VALUES (%s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s),"
        " %s) RETURNING extract(epoch FROM created_at), extract(epoch FROM expires_at)",
        (session_id, user_id, item_id, file_id, method, Jsonb(request), ttl, owner),
    )
    row = await cur.fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


async def load_session(conn: Connection, session_id: str) -> SessionRow | None:
    cur = await conn.execute(
        "SELECT id, user_id, item_id, file_id, method, request, extract(epoch FROM created_at),"
        " extract(epoch FROM expires_at), ended_at IS NOT NULL"
        " FROM playback_sessions WHERE id = %s",
        (session_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return SessionRow(
        str(row[0]), int(row[1]), int(row[2]), int(row[3]), str(row[4]), dict(row[5]),
        float(row[6]), float(row[7]), bool(row[8]),
    )  # fmt: skip


async def end_session(conn: Connection, session_id: str) -> None:
    await conn.execute(
        "UPDATE playback_sessions SET ended_at = now(), owner = NULL"
        " WHERE id = %s AND ended_at IS NULL",
        (session_id,),
    )


async def claim_owner(
    conn: Connection, session_id: str, me: str, alive: Callable[[str], bool]
) -> str | None:
    """The session's owner after this call: ``me`` when it had none, was ``me``, or its owner
    is dead (the row is locked while deciding, so two workers never both take it)."""
    cur = await conn.execute(
        "SELECT owner FROM playback_sessions WHERE id = %s FOR UPDATE", (session_id,)
    )
    row = await cur.fetchone()
    if row is None:
        return None
    owner = row[0]
    if owner is not None and owner != me and alive(owner):
        return str(owner)
    if owner != me:
        await conn.execute(
            "UPDATE playback_sessions SET owner = %s WHERE id = %s", (me, session_id)
        )
    return me


async def release_owner(conn: Connection, session_id: str, me: str) -> None:
    await conn.execute(
        "UPDATE playback_sessions SET owner = NULL WHERE id = %s AND owner = %s", (session_id, me)
    )


async def touch_sessions(conn: Connection, ids: list[str]) -> None:
    if ids:
        await conn.execute(
            "UPDATE playback_sessions SET last_seen = now() WHERE id = ANY(%s)", (ids,)
        )


async def open_sessions_of(conn: Connection, user_id: int) -> int:
    cur = await conn.execute(
        "SELECT count(*) FROM playback_sessions WHERE user_id = %s AND ended_at IS NULL"
        " AND expires_at > now()",
        (user_id,),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def delete_stale_sessions(conn: Connection) -> int:
    """Cleanup step: sessions expired or ended more than a day ago."""
    cur = await conn.execute(
        "DELETE FROM playback_sessions WHERE expires_at < now() - interval '1 day'"
        " OR ended_at < now() - interval '1 day'"
    )
    return int(cur.rowcount)


# --- what the user did ------------------------------------------------------------------------


async def resume_position(conn: Connection, user_id: int, item_id: int) -> int:
    """Where the user stopped (0 when never started or finished)."""
    cur = await conn.execute(
        "SELECT position_ms FROM user_item_state WHERE user_id = %s AND item_id = %s"
        " AND NOT played",
        (user_id, item_id),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def save_progress(
    conn: Connection, user_id: int, item_id: int, position_ms: int, played: bool, count: bool
) -> None:
    """Position and watched state; a finished item's position goes back to 0 and, once per
    playback session (``count``), its play count goes up."""
    await conn.execute(
        "INSERT INTO user_item_state (user_id, item_id, position_ms, played, play_count,"
        " last_played_at) VALUES (%(user)s, %(item)s, %(pos)s, %(played)s,"
        " CASE WHEN %(count)s THEN 1 ELSE 0 END, now())"
        " ON CONFLICT (user_id, item_id) DO UPDATE SET position_ms = EXCLUDED.position_ms,"
        " played = user_item_state.played OR EXCLUDED.played,"
        " play_count = user_item_state.play_count + CASE WHEN %(count)s THEN 1 ELSE 0 END,"
        " last_played_at = now()",
        {
            "user": user_id,
            "item": item_id,
            "pos": 0 if played else position_ms,
            "played": played,
            "count": count,
        },
    )
