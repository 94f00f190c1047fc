"""Playback: the transcoder client and the segment cache.

``MODULE`` installs its services:

* ``transcoder`` (cold): ffmpeg/ffprobe found on PATH at first use, offloaded when idle;
* ``transcode_cache`` (hot): the Rust ``TranscodeCache`` holding HLS segments, its
  byte budget a share of memory (``memory.transcode_cache_percent``), trimmed under
  memory pressure. Only when the runtime watches memory (it sizes the budget).
"""

from __future__ import annotations

from revenge._core import TranscodeCache
from revenge.contract import Module, ModuleContext, ServiceKey, Tier
from revenge.modules.playback.transcoder import MediaInfo, StreamInfo, Transcoder, TranscoderError

__all__ = [
    "MODULE",
    "TRANSCODER",
    "TRANSCODE_CACHE",
    "MediaInfo",
    "StreamInfo",
    "Transcoder",
    "TranscoderError",
    "install",
]

TRANSCODER: ServiceKey[Transcoder] = ServiceKey("transcoder", Tier.COLD)
TRANSCODE_CACHE: ServiceKey[TranscodeCache] = ServiceKey("transcode_cache", Tier.HOT)


def install(ctx: ModuleContext) -> None:
    pressure = ctx.services.pressure
    if pressure is not None:
        segments = TranscodeCache(budget_bytes=pressure.transcode_budget_bytes)
        pressure.attach_transcode_cache("segments", segments)
        ctx.provide(TRANSCODE_CACHE, lambda: segments)
    ctx.provide(TRANSCODER, Transcoder.discover, health=lambda t: t.check())


MODULE = Module("playback", install)
