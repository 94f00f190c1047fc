"""Playback: sessions, direct play, HLS, the transcoder client and the segment cache.

``MODULE`` installs its services and routes (``docs/playback.md`` has the API):

* ``transcoder`` (cold): ffmpeg/ffprobe found on PATH at first use, offloaded when idle;
* ``transcode_cache`` (hot): the Rust ``TranscodeCache`` holding HLS segments, its
  byte budget a share of memory (``memory.transcode_cache_percent``) when the runtime
  watches memory, trimmed under pressure; ``DEFAULT_CACHE_BYTES`` when it does not;
* ``playback`` (warm: built after the database, whose shared URL key it reads; never
  offloaded): the session manager (:class:`.sessions.Playback`): sessions in
  memory, one ffmpeg per session, idle sessions reaped, the disk budget kept, the
  transcode folder swept of a previous run's leftovers at start;
* routes ``/api/v1/playback/sessions`` (:mod:`.routes`), a cleanup step for old
  session rows, and ``migrations/``.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

from revenge._core import TranscodeCache
from revenge.contract import Module, ModuleContext, ServiceKey, Tier
from revenge.modules.playback.indexing import index_for_probe
from revenge.modules.playback.metrics import PlaybackMetrics
from revenge.modules.playback.repository import delete_stale_sessions, store_media
from revenge.modules.playback.routes import add_routes
from revenge.modules.playback.sessions import Playback
from revenge.modules.playback.transcoder import MediaInfo, StreamInfo, Transcoder, TranscoderError

__all__ = [
    "MODULE",
    "PLAYBACK",
    "TRANSCODER",
    "TRANSCODE_CACHE",
    "MediaInfo",
    "Playback",
    "StreamInfo",
    "Transcoder",
    "TranscoderError",
    "index_for_probe",
    "install",
    "store_media",
]

TRANSCODER: ServiceKey[Transcoder] = ServiceKey("transcoder", Tier.COLD)
TRANSCODE_CACHE: ServiceKey[TranscodeCache] = ServiceKey("transcode_cache", Tier.HOT)
PLAYBACK: ServiceKey[Playback] = ServiceKey("playback", Tier.WARM)

DEFAULT_CACHE_BYTES = 256 << 20
"""The segment cache's budget when the runtime does not watch memory (embedding, tests)."""


def install(ctx: ModuleContext) -> None:
    settings = ctx.settings
    pressure = ctx.services.pressure
    if pressure is not None:
        segments = TranscodeCache(budget_bytes=pressure.transcode_budget_bytes)
        pressure.attach_transcode_cache("segments", segments)
    else:
        segments = TranscodeCache(budget_bytes=DEFAULT_CACHE_BYTES)
    ctx.provide(TRANSCODE_CACHE, lambda: segments)
    ctx.provide(TRANSCODER, Transcoder.discover, health=lambda t: t.check())
    ctx.migrations(resources.files(__name__) / "migrations")
    ctx.cleanup_step("stale_sessions", delete_stale_sessions)
    if ctx.role != "serve":
        return  # sessions, their ffmpeg and their routes live in serving processes only
    services = ctx.services
    root = (
        Path(settings.playback.transcode_dir).expanduser()
        if settings.playback.transcode_dir
        else settings.server.data_path / "transcode"
    )

    async def transcoder() -> Transcoder:
        return await services.lazy(TRANSCODER).get()

    async def start_playback() -> Playback:
        playback = Playback(
            ctx.database,
            settings.playback,
            root,
            segments,
            transcoder,
            workers=settings.server.workers,
            pressure_level=(lambda: pressure.level) if pressure is not None else None,
            metrics=PlaybackMetrics.get(),
        )
        await playback.start()
        return playback

    ctx.provide(PLAYBACK, start_playback, close=lambda p: p.close())

    def active_sessions() -> list[dict[str, object]]:
        """This process's playback sessions, for the operator's runtime page."""
        if not services.running:
            return []
        playback = services.get(PLAYBACK)
        now = time.monotonic()
        return [
            {
                "id": session.id,
                "user_id": session.user_id,
                "item_id": session.item_id,
                "method": str(session.decision.method.value),
                "position_ms": session.position_ms,
                "idle_s": round(now - session.last_seen, 1),
                **playback.info(session),
            }
            for session in list(playback.sessions.values())
        ]

    services.add_report("playback_sessions", active_sessions)
    ctx.on_scrape(lambda: services.get(PLAYBACK).sample())
    add_routes(ctx.router, lambda: services.get(PLAYBACK), ctx.authenticator)


MODULE = Module("playback", install)
