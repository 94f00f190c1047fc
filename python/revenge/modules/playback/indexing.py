"""A file's keyframe index, made when the library probes the file (``media_probe``), so that
playback never waits for it: the packet scan reads the whole file (seconds for a feature film).

The index is kept in ``playback_media`` with ffprobe's answer, valid while the file's size and
mtime are those it was made from; a file probed before the index was made at probe time (or
changed since) is scanned at its first playback instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

from revenge.modules.playback.transcoder import MediaInfo, PacketIndex, Transcoder, TranscoderError

log = logging.getLogger("revenge.playback")


async def keyframe_index(transcoder: Transcoder, path: Path, media: MediaInfo) -> PacketIndex:
    """The keyframes of the first playable video stream and the bytes between them
    (``TranscoderError`` when there is no video stream or ffprobe fails)."""
    video = media.of_kind("video")
    if not video:
        raise TranscoderError("no video stream")
    return await transcoder.packets(path, video_stream=video[0].index, start_time=media.start_time)


async def index_for_probe(
    transcoder: Transcoder, path: Path, media: MediaInfo
) -> PacketIndex | None:
    """The index at probe time; ``None`` when it cannot be made (the probe still counts:
    playback tries again, and says why, when the file is played)."""
    try:
        return await keyframe_index(transcoder, path, media)
    except TranscoderError as exc:
        log.info("no keyframe index for %s: %s", path, exc)
        return None
