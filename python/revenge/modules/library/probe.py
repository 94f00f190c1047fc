"""The ``media_probe`` job: ffprobe one file through the playback module's cold transcoder.

The file's keyframe index (the packet scan: it reads the whole file, seconds for a feature
film) is made here too and kept with ffprobe's answer by the playback module, so that a first
playback never waits for it.

A file ffprobe cannot read (corrupt, truncated, zero bytes, vanished) is recorded as
``probe_status = 'failed'`` with the reason; it stays listed and is not playable.
The item gets the runtime (an ``embedded`` value: an NFO's wins) and its best height;
attached pictures (cover art) become ``embedded`` images for ``images_process``.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

from revenge.infra.db import Database
from revenge.modules.library.images import record_embedded
from revenge.modules.library.plan import sort_title
from revenge.modules.playback import (
    MediaInfo,
    Transcoder,
    TranscoderError,
    index_for_probe,
    store_media,
)

__all__ = ["probe_file"]

_STREAM_KINDS = frozenset({"video", "audio", "subtitle", "attachment", "data"})


async def probe_file(db: Database, transcoder: Transcoder, file_id: int) -> str | None:
    """Probe file ``file_id``; its new status (None when the row is gone)."""
    row = await db.fetch_one("SELECT path, item_id FROM media_files WHERE id = %s", (file_id,))
    if row is None:
        return None
    path, item_id = Path(os.fsdecode(bytes(row[0]))), int(row[1])
    try:
        # the file as probed: a change during the probe leaves a stale (size, mtime) with the
        # keyframe index, which playback then ignores and scans again
        stat = await asyncio.to_thread(os.stat, path)
        info = await transcoder.probe(path)
    except (TranscoderError, OSError) as exc:
        await db.execute(
            "UPDATE media_files SET probe_status = 'failed', probe_reason = %s, probed_at = now()"
            " WHERE id = %s",
            (str(exc)[:1000] or type(exc).__name__, file_id),
        )
        return "failed"
    if not any(s.kind == "video" and not s.cover for s in info.streams):
        await db.execute(
            "UPDATE media_files SET probe_status = 'failed', probe_reason = %s,"
            " probed_at = now(), container = %s, duration = %s WHERE id = %s",
            ("no video stream", info.container, info.duration, file_id),
        )
        return "failed"
    packets = await index_for_probe(transcoder, path, info)
    await _store(db, file_id, item_id, info)
    async with db.transaction() as conn:
        await store_media(conn, file_id, stat.st_size, stat.st_mtime_ns, info, packets)
    return "ok"


async def _store(db: Database, file_id: int, item_id: int, info: MediaInfo) -> None:
    video = next(s for s in info.streams if s.kind == "video" and not s.cover)
    streams: list[tuple[Any, ...]] = [
        (
            file_id, s.index, s.kind if s.kind in _STREAM_KINDS else "data", s.codec, s.profile,
            s.level, s.width, s.height, s.bit_depth, s.hdr,
            float(s.frame_rate) if s.frame_rate else None, s.channels, s.sample_rate,
            s.bit_rate, s.language, s.title, s.default, s.forced,
        )
        for s in info.streams
    ]  # fmt: skip
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE media_files SET probe_status = 'ok', probe_reason = NULL, probed_at = now(),"
            " container = %s, duration = %s, bitrate = %s, width = %s, height = %s,"
            " video_codec = %s, hdr = %s WHERE id = %s",
            (info.container, info.duration, info.bit_rate, video.width, video.height,
             video.codec, video.hdr, file_id),
        )  # fmt: skip
        await conn.execute("DELETE FROM media_streams WHERE file_id = %s", (file_id,))
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO media_streams (file_id, index, kind, codec, profile, level, width,"
                " height, bit_depth, hdr, frame_rate, channels, sample_rate, bitrate, language,"
                " title, is_default, is_forced)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                streams,
            )
        # cover art inside the file (MP4 covr, Matroska cover attachments): images_process
        await record_embedded(
            conn, file_id, item_id, [(s.index, s.title) for s in info.streams if s.cover]
        )
        await conn.execute("DELETE FROM media_chapters WHERE file_id = %s", (file_id,))
        if info.chapters:
            async with conn.cursor() as cur:
                await cur.executemany(
                    'INSERT INTO media_chapters (file_id, index, start, "end", title)'
                    " VALUES (%s, %s, %s, %s, %s)",
                    [(file_id, n, c.start, c.end, c.title) for n, c in enumerate(info.chapters)],
                )
        await _apply_tags(conn, item_id, embedded_values(dict(info.tags)))
        runtime = int(info.duration) if info.duration else None
        await conn.execute(
            "UPDATE items SET video_height = greatest(video_height, %s),"
            " runtime_seconds = CASE WHEN 'runtime_seconds' = ANY(locked_fields)"
            "   OR field_sources->>'runtime_seconds' IN ('nfo', 'user') OR %s IS NULL"
            "   THEN runtime_seconds ELSE %s END,"
            " field_sources = CASE WHEN %s IS NULL OR 'runtime_seconds' = ANY(locked_fields)"
            "   OR field_sources->>'runtime_seconds' IN ('nfo', 'user') THEN field_sources"
            '   ELSE field_sources || \'{"runtime_seconds": "embedded"}\' END'
            " WHERE id = %s",
            (video.height, runtime, runtime, runtime, item_id),
        )


_YEAR = re.compile(r"^\s*(\d{4})(?:\D|$)")
_RELEASE_NAME = re.compile(r"^[\w'&!,()-]+(?:\.[\w'&!,()-]+){2,}$")  # The.Matrix.1999.1080p...


def embedded_values(tags: dict[str, str]) -> dict[str, Any]:
    """Title and year from a container's tags, when they look like a title and a year.

    A release name (``The.Matrix.1999.1080p.x264``) or a web address in the title tag says
    nothing the file name did not; an encoder's ``creation_time`` is no release year.

    >>> embedded_values({"title": "Blade Runner", "date": "1982-06-25"})
    {'title': 'Blade Runner', 'year': 1982}
    >>> embedded_values({"title": "The.Matrix.1999.1080p.BluRay.x264", "year": "99"})
    {}
    """
    out: dict[str, Any] = {}
    title = " ".join(tags.get("title", "").split())
    lowered = title.lower()
    if (
        0 < len(title) <= 200
        and not _RELEASE_NAME.match(title)
        and not any(w in lowered for w in ("www.", ".com", ".org", ".net", "http"))
    ):
        out["title"] = title
    for name in ("date", "year", "originaldate", "release_date"):
        found = _YEAR.match(tags.get(name, ""))
        if found and 1800 <= int(found.group(1)) <= 2200:
            out["year"] = int(found.group(1))
            break
    return out


async def _apply_tags(conn: Any, item_id: int, values: dict[str, Any]) -> None:
    """Fill fields from embedded tags where no user edit or NFO gave them (rank
    ``user > nfo > embedded > filename``); the sort title follows the title."""
    if not values:
        return
    sets, params, sources = [], [], []
    for name, value in values.items():
        can = (
            f"(NOT '{name}' = ANY(locked_fields)"
            f" AND coalesce(field_sources->>'{name}', 'filename') IN ('filename', 'embedded'))"
        )
        sets.append(f"{name} = CASE WHEN {can} THEN %s ELSE {name} END")
        params.append(value)
        if name == "title":
            sets.append(f"sort_title = CASE WHEN {can} THEN %s ELSE sort_title END")
            params.append(sort_title(value))
        sources.append(
            f"CASE WHEN {can} THEN '{{\"{name}\": \"embedded\"}}'::jsonb ELSE '{{}}' END"
        )
    sets.append(f"field_sources = field_sources || {' || '.join(sources)}")
    await conn.execute(
        f"UPDATE items SET {', '.join(sets)} WHERE id = %s",  # noqa: S608 (names are ours)
        (*params, item_id),
    )
