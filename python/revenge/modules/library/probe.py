"""The ``media_probe`` job: ffprobe one file through the playback module's cold transcoder.

A file ffprobe cannot read (corrupt, truncated, zero bytes, vanished) is recorded as
``probe_status = 'failed'`` with the reason; it stays listed and is not playable.
The item gets the runtime (an ``embedded`` value: an NFO's wins) and its best height;
attached pictures (cover art) become ``embedded`` images for ``images_process``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from revenge.infra.db import Database
from revenge.modules.library.images import record_embedded
from revenge.modules.playback import MediaInfo, Transcoder, TranscoderError

__all__ = ["probe_file"]

_STREAM_KINDS = frozenset({"video", "audio", "subtitle", "attachment", "data"})


async def probe_file(db: Database, transcoder: Transcoder, file_id: int) -> str | None:
    """Probe file ``file_id``; its new status (None when the row is gone)."""
    row = await db.fetch_one("SELECT path, item_id FROM media_files WHERE id = %s", (file_id,))
    if row is None:
        return None
    path, item_id = Path(os.fsdecode(bytes(row[0]))), int(row[1])
    try:
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
    await _store(db, file_id, item_id, info)
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
