"""The session manager (hot): playback sessions in memory, one ffmpeg per session, segments
through the transcode cache, idle sessions reaped, the disk bounded.

A session is made by ``create`` (decision, HLS plan, a row in ``playback_sessions``) and lives
in this process's memory while it is used; a worker that has not seen it (another Granian
worker, or this one after the idle timeout) builds it again from its row: the decision and the
plan are pure functions of the stored request and probe, so every worker plans the same
segments.

Segments: the session's one ffmpeg run (``TranscodeJob``) writes into a run folder of its own;
a collector task moves each finished segment into the Rust ``TranscodeCache`` pinned (it is in
the client's near window) and deletes the file at once. A segment request is served from the
cache; a request the run will not reach soon (a seek), or one behind it that the cache has
lost, restarts ffmpeg at that segment, with the plan's numbering and timestamps. Pins behind
the client's position are released as it moves on; the segments stay in the cache (LRU)
until memory is wanted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg

from revenge._core import TranscodeCache
from revenge.config import PlaybackSettings
from revenge.infra.db import Database
from revenge.modules.auth import read_preferences
from revenge.modules.playback import repository
from revenge.modules.playback.decision import (
    AudioSupport,
    ClientCaps,
    Decision,
    Method,
    NoPlayableFormat,
    Preferences,
    StoredPreferences,
    SubtitleMode,
    VideoSupport,
    decide,
)
from revenge.modules.playback.ffmpeg import Tuning
from revenge.modules.playback.hls import (
    INIT_NAME,
    HlsPlan,
    PlanError,
    Variant,
    master_playlist,
    media_playlist,
    plan_hls,
    subtitle_playlist,
)
from revenge.modules.playback.indexing import keyframe_index
from revenge.modules.playback.job import TranscodeFailed, TranscodeJob, extract_subtitle
from revenge.modules.playback.metrics import PlaybackMetrics
from revenge.modules.playback.repository import PlayableFile
from revenge.modules.playback.signing import UrlSigner
from revenge.modules.playback.transcoder import (
    MediaInfo,
    PacketIndex,
    StreamInfo,
    Transcoder,
    TranscoderError,
)
from revenge.runtime.errors import DomainError, ServiceUnavailable

log = logging.getLogger("revenge.playback")

SEGMENT_WAIT = 60.0  # longest wait for one segment before the request fails
RESTART_AHEAD = 2  # a request this many segments past the encoder restarts it there
KEEP_BEHIND = 1  # segments behind the client's position that stay pinned (player retries)
REAP_INTERVAL = 0.5  # seconds between looks at idle sessions and the disk
RETRY_AFTER = 30  # seconds a refused client is told to wait
CREATE_CONCURRENCY = 4
# ffmpeg's -readrate bounds (times real time). The disk budget sets the rate (read_rate); the
# top bound only keeps one copy from taking the whole disk's bandwidth. ffmpeg 5.1 (Debian 12)
# has no -readrate_initial_burst: a remux's first segment costs its duration / the rate.
READ_RATE_MIN, READ_RATE_MAX = 4.0, 256.0

API = "/api/v1/playback/sessions"
CHANNEL = "revenge_playback"  # PostgreSQL NOTIFY: segment requests for the owner, session ends
HANDOFF_POLL = 0.003  # seconds between looks for a segment another worker hands over

PressureLevelOf = Callable[[], str]
TranscoderOf = Callable[[], Awaitable[Transcoder]]


class SessionNotFound(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "playback_session_not_found", "Playback session not found", kind="not_found"
        )


class ItemNotFound(DomainError):
    def __init__(self) -> None:
        super().__init__("item_not_found", "Item not found", kind="not_found")


class MediaUnavailable(DomainError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            "media_unavailable", "The media file cannot be played", kind="conflict", detail=detail
        )


class TooManyTranscodes(DomainError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            "transcode_limit_reached",
            "Too many transcodes",
            kind="throttled",
            detail=f"at most {limit} transcodes of one user at once",
            retry_after=RETRY_AFTER,
        )


class TooManySessions(DomainError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            "session_limit_reached",
            "Too many playback sessions",
            kind="throttled",
            detail=f"at most {limit} open playback sessions per user",
            retry_after=RETRY_AFTER,
        )


class SegmentNotFound(DomainError):
    def __init__(self, detail: str) -> None:
        super().__init__("segment_not_found", "Segment not found", kind="not_found", detail=detail)


class Bandwidth:
    """What the client pulls, in bytes per second: one-second windows, exponentially smoothed.

    >>> bw = Bandwidth()
    >>> bw.add(1_000_000, now=10.0); bw.add(1_000_000, now=11.0)
    >>> bw.bytes_per_second
    1000000
    """

    __slots__ = ("_smoothed", "_window_bytes", "_window_start")
    ALPHA = 0.3
    GAP = 10.0  # seconds without bytes after which a window starts afresh

    def __init__(self) -> None:
        self._smoothed = 0.0
        self._window_start: float | None = None
        self._window_bytes = 0

    def add(self, size: int, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        start = self._window_start
        if start is None or now - start > self.GAP:
            self._window_start, self._window_bytes = now, size
            return
        elapsed = now - start
        if elapsed >= 1.0:
            sample = self._window_bytes / elapsed
            smoothed = self._smoothed
            self._smoothed = (
                sample if smoothed == 0 else self.ALPHA * sample + (1 - self.ALPHA) * smoothed
            )
            self._window_start, self._window_bytes = now, size
        else:
            self._window_bytes += size

    @property
    def bytes_per_second(self) -> int:
        return round(self._smoothed)


@dataclass(eq=False)
class Session:
    id: str
    user_id: int
    item_id: int
    file: PlayableFile
    media: MediaInfo
    decision: Decision
    plan: HlsPlan | None
    request: dict[str, Any]
    created_at: float
    expires_at: float
    start_segment: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    job: TranscodeJob | None = None
    collector: asyncio.Task[None] | None = None
    pins: dict[str, int] = field(default_factory=dict)
    inits: dict[str, bytes] = field(default_factory=dict)  # fMP4 init sections, by variant
    bandwidth: Bandwidth = field(default_factory=Bandwidth)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    runs: int = 0
    failed_runs: set[int] = field(default_factory=set)  # pids of runs that failed on their own
    counted_play: bool = False
    owned: bool = False  # this process runs (or may run) the session's ffmpeg: the row says so
    externals: dict[int, Path] = field(default_factory=dict)  # subtitle files beside the video
    position_ms: int = 0
    read_up_to: int = -1

    @property
    def source(self) -> Path:
        return Path(self.file.fspath)

    @property
    def method(self) -> Method:
        return self.decision.method

    def touch(self) -> None:
        self.last_seen = time.monotonic()


@dataclass(frozen=True, slots=True)
class Served:
    """A segment's bytes: from the cache, or read from its file when the cache refused it."""

    data: bytes
    content_type: str


def read_rate(media: MediaInfo, size: int, disk_budget: int, top: float = READ_RATE_MAX) -> float:
    """How many times real time ffmpeg may read the source: a second of its writing is at
    most an eighth of the process's disk budget (a remux of a 1.6 GB film otherwise lands on
    disk in 3 s, before any pause can act), between ``READ_RATE_MIN`` and ``top``.

    >>> read_rate(MediaInfo("matroska", 100.0, 8_000_000, ()), 100_000_000, 2 << 30)
    256.0
    >>> read_rate(MediaInfo("matroska", 40.0, 12_000_000, ()), 60_000_000, 32 << 20)
    4.0
    """
    rate = media.bit_rate or (size * 8 / media.duration if media.duration else 20_000_000)
    bytes_per_second = max(rate / 8, 1.0)
    return max(READ_RATE_MIN, min(top, disk_budget / 8 / bytes_per_second))


def caps_from_request(raw: dict[str, Any]) -> tuple[ClientCaps, Preferences]:
    """The stored request (the API body, as JSON) as the decision's inputs."""
    caps = raw["capabilities"]
    client = ClientCaps(
        containers=frozenset(c.lower() for c in caps.get("containers", ())),
        video=tuple(
            VideoSupport(
                v["codec"].lower(),
                frozenset(p.lower() for p in v.get("profiles", ())),
                v.get("max_level"),
                v.get("max_bit_depth", 8),
                frozenset(v.get("hdr", ())),
            )
            for v in caps.get("video", ())
        ),
        audio=tuple(
            AudioSupport(a["codec"].lower(), a.get("max_channels", 2))
            for a in caps.get("audio", ())
        ),
        max_width=caps.get("max_width"),
        max_height=caps.get("max_height"),
        max_bitrate=caps.get("max_bitrate"),
        segment_format=caps.get("segment_format", "fmp4"),
        subtitles=frozenset(s.lower() for s in caps.get("subtitles", ("vtt",))),
    )
    prefs = Preferences(
        audio_languages=tuple(raw.get("audio_languages") or ()),
        subtitle_languages=tuple(raw.get("subtitle_languages") or ()),
        subtitle_mode=SubtitleMode(raw.get("subtitle_mode") or "forced"),
        burn_in_image_subtitles=bool(raw.get("burn_in_image_subtitles", False)),
        max_bitrate=raw.get("max_bitrate"),
        audio_stream=raw.get("audio_stream"),
        subtitle_stream=raw.get("subtitle_stream"),
    )
    return client, prefs


def with_preferences(request: dict[str, Any], saved: StoredPreferences) -> dict[str, Any]:
    """The request with what it left out filled from the user's saved preferences.

    >>> from revenge.modules.auth import UserPreferences
    >>> with_preferences({"subtitle_mode": None, "audio_languages": ["de"]},
    ...                  UserPreferences(subtitle_mode="always", audio_languages=("en",)))
    {'subtitle_mode': 'always', 'audio_languages': ['de'], 'subtitle_languages': [], 'max_bitrate': None}
    """
    full = dict(request)
    defaults = {
        "subtitle_mode": saved.subtitle_mode,
        "audio_languages": list(saved.audio_languages),
        "subtitle_languages": list(saved.subtitle_languages),
        "max_bitrate": saved.max_bitrate,
    }
    for key, value in defaults.items():
        if full.get(key) is None:
            full[key] = value
    return full


EXTERNAL_SUBTITLE_BASE = 10_000  # stream numbers of subtitle files beside the video
_SUBTITLE_CODECS = {"srt": "subrip", "ass": "ass", "ssa": "ass", "vtt": "webvtt"}
_SUBTITLE_FLAGS = frozenset({"forced", "foreign", "sdh", "cc", "hi", "default"})


def with_external_subtitles(media: MediaInfo, video: str) -> tuple[MediaInfo, dict[int, Path]]:
    """The probe plus the subtitle files named after the video (``Movie.srt``,
    ``Movie.en.forced.ass``, ``Movie - fr.vtt``) as subtitle streams numbered from
    ``EXTERNAL_SUBTITLE_BASE`` in name order, and where each one is. Runs in a thread (lists
    the video's folder)."""
    path = Path(video)
    stem = path.stem
    try:
        names = sorted(os.listdir(path.parent))
    except OSError:
        return media, {}
    streams: list[StreamInfo] = []
    files: dict[int, Path] = {}
    for name in names:
        base, _, ext = name.rpartition(".")
        codec = _SUBTITLE_CODECS.get(ext.lower())
        if codec is None or not base.startswith(stem):
            continue
        rest = base[len(stem) :]
        if rest and rest[0] not in "._ -":
            continue  # "Movie2.srt" names another video, not "Movie"
        tags = [t for t in re.split(r"[._ -]", rest.lower()) if t]
        language = next(
            (t for t in tags if t not in _SUBTITLE_FLAGS and re.fullmatch(r"[a-z]{2,3}", t)), None
        )
        index = EXTERNAL_SUBTITLE_BASE + len(streams)
        streams.append(StreamInfo(
            index, "subtitle", codec, language=language,
            forced="forced" in tags or "foreign" in tags, default="default" in tags, title=name,
        ))  # fmt: skip
        files[index] = path.parent / name
    if not streams:
        return media, {}
    return replace(media, streams=(*media.streams, *streams)), files


def content_type(name: str) -> str:
    if name.endswith(".m3u8"):
        return "application/vnd.apple.mpegurl"
    if name.endswith(".ts"):
        return "video/mp2t"
    if name.endswith(".vtt"):
        return "text/vtt; charset=utf-8"
    return "video/mp4"


_DIRECT_TYPES = {
    "mkv": "video/x-matroska",
    "webm": "video/webm",
    "mp4": "video/mp4",
    "ts": "video/mp2t",
    "avi": "video/x-msvideo",
}


def direct_content_type(media: MediaInfo) -> str:
    names = media.container.split(",")
    if "matroska" in names:
        codecs = {s.codec for s in media.streams}
        webm = codecs <= {"vp8", "vp9", "av1", "opus", "vorbis", "webvtt"}
        return _DIRECT_TYPES["webm" if webm else "mkv"]
    if "mp4" in names or "mov" in names:
        return _DIRECT_TYPES["mp4"]
    if "mpegts" in names:
        return _DIRECT_TYPES["ts"]
    if "avi" in names:
        return _DIRECT_TYPES["avi"]
    return "application/octet-stream"


class Playback:
    """Every playback session of this process; built at start, closed (every ffmpeg killed) at
    stop."""

    def __init__(
        self,
        db: Database,
        settings: PlaybackSettings,
        transcode_root: Path,
        cache: TranscodeCache,
        transcoder: TranscoderOf,
        *,
        workers: int = 1,
        pressure_level: PressureLevelOf | None = None,
        metrics: PlaybackMetrics | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.root = transcode_root
        self.folder = transcode_root / str(os.getpid())
        self.cache = cache
        self._transcoder = transcoder
        self.disk_budget = max(16 << 20, settings.transcode_disk_max // max(1, workers))
        self._pressure_level = pressure_level
        self.metrics = metrics or PlaybackMetrics.get()
        self.sessions: dict[str, Session] = {}
        self.signer: UrlSigner | None = None
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._reaper: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._handoffs: set[asyncio.Task[None]] = set()
        self._disk_paused: set[str] = set()
        self._starting: dict[int, int] = {}  # user -> runs being started (count as running)
        # sessions made at once: a burst waits here, not for pooled connections (whose wait is
        # bounded and answered 503); each creation holds one connection at a time
        self._creating = asyncio.Semaphore(CREATE_CONCURRENCY)
        self.disk_bytes = 0
        self.disk_peak = 0

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        secret = self.settings.url_secret.get_secret_value()
        if secret:
            key = secret.encode()
        else:
            async with self.db.transaction() as conn:
                key = await repository.signing_key(conn)
        self.signer = UrlSigner(key if len(key) >= 32 else key.ljust(32, b"\0"))
        await asyncio.to_thread(sweep, self.root)
        await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
        self._reaper = asyncio.create_task(self._reap_forever(), name="playback-reaper")
        self._listener = asyncio.create_task(self._listen_forever(), name="playback-listener")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._listening.wait()

    async def close(self) -> None:
        for task in (self._reaper, self._listener, *self._handoffs):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for session in list(self.sessions.values()):
            await self._drop(session)
        await asyncio.to_thread(shutil.rmtree, self.folder, True)

    def sample(self) -> None:
        """Set the gauges (before each ``/metrics`` answer)."""
        m = self.metrics
        by_method = dict.fromkeys(("direct", "remux", "transcode"), 0)
        for session in self.sessions.values():
            by_method[session.method.value] += 1
        for method, count in by_method.items():
            m.sessions_active.labels(method).set(count)
        m.transcodes_running.set(self.running_transcodes())
        m.disk_bytes.set(self.disk_bytes)
        m.disk_budget.set(self.settings.transcode_disk_max)
        m.pinned_bytes.set(self.cache.stats()["pinned_bytes"])
        m.bandwidth.set(sum(s.bandwidth.bytes_per_second * 8 for s in self.sessions.values()))

    # --- creating and finding sessions -------------------------------------------------------

    async def create(
        self, user_id: int, item_id: int, file_id: int | None, request: dict[str, Any],
        start_ms: int | None, *, admin: bool = False,
    ) -> Session:  # fmt: skip
        """``request``: the API body's capabilities and choices; what it leaves out (``None``)
        comes from the user's saved preferences, and the stored request holds the result, so
        a session rebuilt later decides the same however the preferences changed since."""
        async with self._creating:
            return await self._create(user_id, item_id, file_id, request, start_ms, admin=admin)

    async def _create(
        self, user_id: int, item_id: int, file_id: int | None, request: dict[str, Any],
        start_ms: int | None, *, admin: bool,
    ) -> Session:  # fmt: skip
        async with self.db.connection() as conn:
            file = await repository.playable_file(conn, user_id, admin, item_id, file_id)
            if file is None:
                raise ItemNotFound()
            saved = await read_preferences(conn, user_id)
            if start_ms is None:
                resume = saved.resume == "resume"
                start_ms = await repository.resume_position(conn, user_id, item_id) if resume else 0
            request = with_preferences(request, saved)
            if (
                await repository.open_sessions_of(conn, user_id)
                >= self.settings.max_sessions_per_user
            ):
                raise TooManySessions(self.settings.max_sessions_per_user)
        media, packets = await self._probe(file)
        media, externals = await asyncio.to_thread(with_external_subtitles, media, file.fspath)
        decision, plan = self._decide(media, packets, request)
        session_id = uuid.uuid4().hex
        start_segment = self._segment_at(plan, start_ms)
        session_kind = decision.method.value
        # a transcode's slot is taken before the first await: 50 requests at once cannot all
        # pass the limit before any of them has started its ffmpeg
        with self._slot(user_id, None) if plan is not None else contextlib.nullcontext():
            async with self.db.transaction() as conn:
                created, expires = await repository.insert_session(
                    conn, session_id, user_id, item_id, file.id, session_kind, request,
                    self.settings.session_ttl, self.owner if plan else None,
                )  # fmt: skip
            session = Session(
                session_id, user_id, item_id, file, media, decision, plan, request, created,
                expires, start_segment, position_ms=start_ms,
            )  # fmt: skip
            session.owned = plan is not None
            session.externals = externals
            self.sessions[session_id] = session
            self.metrics.sessions_created.labels(session_kind).inc()
            if plan is not None:
                # ffmpeg starts now: the client's first segment request finds it on its way
                try:
                    async with session.lock:
                        await self._launch(session, plan.variants[0], start_segment)
                except BaseException:
                    await self.end(session)
                    raise
        return session

    async def find(self, session_id: str) -> Session | None:
        """The live session (from memory, or rebuilt from its row), or ``None``."""
        session = self.sessions.get(session_id)
        if session is not None:
            if session.expires_at < time.time():
                await self._drop(session)
                return None
            return session
        if len(session_id) > 64:
            return None
        async with self.db.connection() as conn:
            row = await repository.load_session(conn, session_id)
            if row is None or row.ended or row.expires_at < time.time():
                return None
            file = await repository.file_by_id(conn, row.file_id)
        if file is None:
            return None
        session = self.sessions.get(session_id)  # built by a concurrent request meanwhile
        if session is not None:
            return session
        try:
            media, packets = await self._probe(file)
            media, externals = await asyncio.to_thread(with_external_subtitles, media, file.fspath)
            decision, plan = self._decide(media, packets, row.request)
        except DomainError:
            return None
        session = Session(
            row.id, row.user_id, row.item_id, file, media, decision, plan, row.request,
            row.created_at, row.expires_at,
        )  # fmt: skip
        session.externals = externals
        return self.sessions.setdefault(session_id, session)

    async def end(self, session: Session) -> None:
        await self._drop(session)
        async with self.db.transaction() as conn:
            await repository.end_session(conn, session.id)
            await _notify(conn, {"op": "end", "session": session.id})

    async def progress(
        self, session: Session, position_ms: int, *, ended: bool = False
    ) -> tuple[int, bool]:
        """Save the position (and watched state) into ``user_item_state``: watched at the end,
        or past 90 % of the duration. The played count goes up once per session."""
        session.touch()
        duration = session.media.duration or 0
        position_ms = min(position_ms, round(duration * 1000)) if duration else position_ms
        played = ended or (duration > 0 and position_ms >= 0.9 * duration * 1000)
        count = played and not session.counted_play
        async with self.db.transaction() as conn:
            await repository.save_progress(
                conn, session.user_id, session.item_id, position_ms, played, count
            )
        session.counted_play = session.counted_play or played
        session.position_ms = position_ms
        return position_ms, played

    # --- URLs ----------------------------------------------------------------------------------

    def query(self, session: Session) -> str:
        assert self.signer is not None
        expires = int(min(session.expires_at, time.time() + self.settings.url_ttl))
        return self.signer.query(
            session.id, user_id=session.user_id, item_id=session.item_id, expires=expires
        )

    def urls(self, session: Session) -> dict[str, Any]:
        query = self.query(session)
        base = f"{API}/{session.id}"
        subtitles = {
            str(s.stream): f"{base}/hls/subtitles/{s.stream}.vtt?{query}"
            for s in session.decision.subtitles
            if s.delivery.value == "webvtt"
        }
        if session.plan is None:
            return {"direct": f"{base}/direct?{query}", "master": None, "subtitles": subtitles}
        return {"direct": None, "master": f"{base}/hls/master.m3u8?{query}", "subtitles": subtitles}

    def master(self, session: Session) -> str:
        plan = self._plan(session)
        query = self.query(session)
        return master_playlist(plan, lambda name: f"{name}?{query}")

    def media_playlist(self, session: Session, variant_name: str) -> str:
        plan = self._plan(session)
        query = self.query(session)
        return media_playlist(plan, self._variant(plan, variant_name), lambda n: f"{n}?{query}")

    def subtitle_playlist(self, session: Session, stream: int) -> str:
        plan = self._plan(session)
        query = self.query(session)
        rendition = next((s for s in plan.subtitles if s.stream == stream), None)
        if rendition is None:
            raise SegmentNotFound(f"no subtitle rendition {stream}")
        return subtitle_playlist(rendition, lambda n: f"{n}?{query}")

    async def subtitle_file(self, session: Session, stream: int) -> Path:
        """The stream as one WebVTT file, extracted once per session (a text track is small)."""
        if not any(
            s.stream == stream and s.delivery.value == "webvtt" for s in session.decision.subtitles
        ):
            raise SegmentNotFound(f"no WebVTT subtitle {stream}")
        out = self.folder / session.id / "subtitles" / f"{stream}.vtt"
        async with session.lock:
            if not await asyncio.to_thread(out.exists):
                transcoder = await self._transcoder()
                fmt = session.plan.segment_format if session.plan else "fmp4"
                external = session.externals.get(stream)
                source, index = (external, 0) if external else (session.source, stream)
                try:
                    await extract_subtitle(source, index, out, fmt, ffmpeg=transcoder.ffmpeg)
                except TranscodeFailed as exc:
                    self.metrics.failures.inc()
                    raise MediaUnavailable(str(exc)) from None
        return out

    # --- segments --------------------------------------------------------------------------------

    async def init_section(self, session: Session, variant_name: str) -> bytes:
        plan = self._plan(session)
        variant = self._variant(plan, variant_name)
        if plan.segment_format != "fmp4":
            raise SegmentNotFound("TS variants have no initialization section")
        cached = session.inits.get(variant_name)
        if cached is not None:
            return cached
        owner = await self._owner_elsewhere(session)
        if owner is not None:
            data = await self._ask_owner(session, owner, variant_name, INIT_NAME)
            if data is not None:
                session.inits.setdefault(variant_name, data)
                return data
        async with session.lock:
            job = session.job
            stale = job is not None and not job.running and job.ready(job.start_segment) is None
            if job is None or job.variant.name != variant_name or stale:
                await self._start_job(session, variant, self._start_for(session, variant))
            job = session.job
        assert job is not None
        try:
            async with asyncio.timeout(SEGMENT_WAIT):
                await job.wait_for_segment(job.start_segment)  # the init is whole by then
        except TranscodeFailed as exc:
            raise self._transcode_failed(exc) from None
        except TimeoutError:
            raise ServiceUnavailable(
                "transcoder", "ffmpeg is too slow", retry_after=RETRY_AFTER
            ) from None
        init_path = job.init_path
        assert init_path is not None
        data = await asyncio.to_thread(init_path.read_bytes)
        session.inits.setdefault(variant_name, data)
        return session.inits[variant_name]

    async def segment(self, session: Session, variant_name: str, index: int) -> Served:
        plan = self._plan(session)
        variant = self._variant(plan, variant_name)
        if not 0 <= index < len(variant.segments):
            raise SegmentNotFound(f"segment {index} is not in the playlist")
        kind = content_type("x.ts" if plan.segment_format == "ts" else "x.m4s")
        key = self._key(session, variant_name, index)
        data = self.cache.get(key)
        if data is not None:
            self.metrics.cache_hits.inc()
            self._served(session, index, len(data))
            return Served(data, kind)
        self.metrics.cache_misses.inc()
        owner = await self._owner_elsewhere(session)
        if owner is not None:
            data = await self._ask_owner(session, owner, variant_name, str(index))
            if data is not None:
                self._served(session, index, len(data))
                return Served(data, kind)
        for attempt in range(2):
            job = await self._job_for(session, variant, index)
            job.mark_read(index - 1)
            try:
                async with asyncio.timeout(SEGMENT_WAIT):
                    await job.wait_for_segment(index)
            except TimeoutError:
                raise ServiceUnavailable(
                    "transcoder", "ffmpeg is too slow", retry_after=RETRY_AFTER
                ) from None
            except TranscodeFailed as exc:
                if job is not session.job:  # replaced by another request's restart meanwhile
                    continue
                self._count_failure(session, job, exc)
                if attempt == 1:
                    raise self._transcode_failed(exc) from None
                continue  # _job_for restarts it
            served = await self._take(session, job, key, index, kind)
            if served is not None:
                return served
        raise SegmentNotFound(f"segment {index} could not be produced")

    async def _take(
        self, session: Session, job: TranscodeJob, key: str, index: int, kind: str
    ) -> Served | None:
        """The segment from the cache (the collector put it there) or from its file (read
        whole: the collector may unlink it the moment it is cached)."""
        for _ in range(50):
            data = self.cache.get(key)
            if data is not None:
                self._served(session, index, len(data))
                return Served(data, kind)
            ready = job.ready(index)
            if ready is None:
                return None
            try:
                data = await asyncio.to_thread(ready.path.read_bytes)
            except FileNotFoundError:
                await asyncio.sleep(0.002)  # the collector is between cache and unlink
                continue
            self._served(session, index, len(data))
            return Served(data, kind)
        return None

    def _served(self, session: Session, index: int, size: int) -> None:
        session.touch()
        session.bandwidth.add(size)
        self.metrics.bytes_served.labels("segment").inc(size)
        session.read_up_to = max(session.read_up_to, index - 1)
        job = session.job
        if job is not None:
            job.mark_read(index - 1)
        # pins behind the client's position go: it has those segments
        floor = index - KEEP_BEHIND
        for key in [k for k in session.pins if _index_of(k) < floor]:
            self.cache.unpin(key, session.pins.pop(key))

    async def _job_for(self, session: Session, variant: Variant, index: int) -> TranscodeJob:
        """The run that has or will soon write ``index``; else a new run starting there."""
        async with session.lock:
            job = session.job
            if job is not None and self._crashed(job):
                failure = TranscodeFailed(f"ffmpeg exited with {job.process.returncode}")
                self._count_failure(session, job, failure)
            if job is not None and job.variant.name == variant.name and job.covers(index):
                if job.ready(index) is not None:
                    key = self._key(session, variant.name, index)
                    if self.cache.get(key) is not None or await asyncio.to_thread(
                        _exists, job, index
                    ):
                        return job
                    # written, then lost from the cache: this run will not write it again
                elif job.running and index <= job.next_segment + RESTART_AHEAD:
                    return job
            await self._start_job(session, variant, index)
            assert session.job is not None
            return session.job

    def _count_failure(self, session: Session, job: TranscodeJob, exc: TranscodeFailed) -> None:
        """A run that failed on its own is restarted once per session; the second is the
        client's clear error (``409 transcode_failed``)."""
        if job.pid not in session.failed_runs:
            session.failed_runs.add(job.pid)
            self.metrics.failures.inc()
            log.warning("session %s: %s", session.id, exc)
        if len(session.failed_runs) > 1:
            raise self._transcode_failed(exc)

    def read_rate(self, session: Session) -> float:
        return read_rate(session.media, session.file.size, self.disk_budget)

    @staticmethod
    def _crashed(job: TranscodeJob) -> bool:
        """ffmpeg ended on its own before writing every segment it was to write (a run we
        replace is killed after it stops being the session's)."""
        code = job.process.returncode
        return code is not None and code != 0 and job.next_segment < len(job.variant.segments)

    # --- ffmpeg runs --------------------------------------------------------------------------

    def running_transcodes(self, user_id: int | None = None) -> int:
        """ffmpeg runs alive, and those being started (their slots are taken)."""
        running = sum(
            1
            for s in self.sessions.values()
            if s.job is not None and s.job.running and (user_id is None or s.user_id == user_id)
        )
        starting = (
            sum(self._starting.values()) if user_id is None else self._starting.get(user_id, 0)
        )
        return running + starting

    @contextlib.contextmanager
    def _slot(self, user_id: int, session: Session | None) -> Iterator[None]:
        """Check the limits and hold a place while a run starts (no await between the two)."""
        self._check_can_transcode(user_id, session)
        self._starting[user_id] = self._starting.get(user_id, 0) + 1
        try:
            yield
        finally:
            left = self._starting[user_id] - 1
            if left:
                self._starting[user_id] = left
            else:
                del self._starting[user_id]

    def _check_can_transcode(self, user_id: int, session: Session | None) -> None:
        if session is not None and session.job is not None and session.job.running:
            return  # a restart replaces the session's own run
        if self._pressure_level is not None and self._pressure_level() == "critical":
            self.metrics.refusals.labels("memory_pressure").inc()
            raise ServiceUnavailable(
                "transcoder",
                "memory is critically short: no new transcodes",
                retry_after=RETRY_AFTER,
            )
        if self.running_transcodes() >= self.settings.max_transcodes:
            self.metrics.refusals.labels("server_limit").inc()
            raise ServiceUnavailable(
                "transcoder",
                f"{self.settings.max_transcodes} transcodes are running",
                retry_after=RETRY_AFTER,
            )
        if self.running_transcodes(user_id) >= self.settings.max_transcodes_per_user:
            self.metrics.refusals.labels("user_limit").inc()
            raise TooManyTranscodes(self.settings.max_transcodes_per_user)

    async def _start_job(self, session: Session, variant: Variant, start: int) -> None:
        """Replace the session's run with one writing ``variant`` from segment ``start`` (the
        caller holds ``session.lock``), within the limits."""
        with self._slot(session.user_id, session):
            await self._launch(session, variant, start)

    async def _launch(self, session: Session, variant: Variant, start: int) -> None:
        plan = self._plan(session)
        if not await asyncio.to_thread(os.path.isfile, session.source):
            raise MediaUnavailable("the file is no longer on disk")
        if not session.owned:
            async with self.db.transaction() as conn:
                owner = await repository.claim_owner(conn, session.id, self.owner, _owner_alive)
            session.owned = owner == self.owner
        await self._stop_job(session)
        transcoder = await self._transcoder()
        session.runs += 1
        workdir = self.folder / session.id / f"{variant.name}-{session.runs}"
        try:
            job = await TranscodeJob.start(
                session.source, session.media, plan, variant, start, workdir,
                ffmpeg=transcoder.ffmpeg, max_ahead=self.settings.max_ahead,
                tuning=Tuning(read_rate=self.read_rate(session)),
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            self.metrics.failures.inc()
            raise MediaUnavailable(f"ffmpeg could not start: {exc}") from None
        if session.runs > 1:
            self.metrics.restarts.inc()
        session.job = job
        session.collector = asyncio.create_task(
            self._collect(session, job), name=f"playback-collect-{session.id}"
        )

    async def _stop_job(self, session: Session) -> None:
        job, collector = session.job, session.collector
        session.job = session.collector = None
        if collector is not None:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
        if job is not None:
            await job.kill()
            await asyncio.to_thread(shutil.rmtree, job.workdir, True)

    async def _collect(self, session: Session, job: TranscodeJob) -> None:
        """Each finished segment into the cache, pinned (the client is about to read it), and off
        the disk; a segment the cache refuses stays on disk and is served from there."""
        name = job.variant.name
        total = len(job.variant.segments)
        for index in range(job.start_segment, total):
            try:
                ready = await job.wait_for_segment(index)
            except TranscodeFailed:
                return
            if index == job.start_segment:
                self.metrics.first_segment.labels(
                    "copy" if job.variant.chunked else "encode"
                ).observe(ready.ready_at - job.started_at)
            try:
                data = await asyncio.to_thread(ready.path.read_bytes)
            except FileNotFoundError:
                continue
            key = self._key(session, name, index)
            token = self.cache.insert_pinned(key, data)
            if token is None:
                self.metrics.cache_refused.inc()
                continue
            old = session.pins.pop(key, None)
            if old is not None:
                self.cache.unpin(key, old)
            if index < session.read_up_to - KEEP_BEHIND:
                self.cache.unpin(key, token)  # the client is already past it
            else:
                session.pins[key] = token
            self.metrics.cache_bytes_in.inc(len(data))
            await job.discard(index)

    # --- keeping things bounded ----------------------------------------------------------------

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(REAP_INTERVAL)
            try:
                await self.reap()
            except Exception:  # the next round tries again; never let the reaper die
                log.exception("playback reaper failed")

    async def reap(self) -> None:
        """Idle and expired sessions dropped; the disk budget enforced; last-seen saved."""
        now, wall = time.monotonic(), time.time()
        for session in list(self.sessions.values()):
            idle = now - session.last_seen > self.settings.idle_timeout
            if idle or session.expires_at < wall:
                self.metrics.idle_reaped.inc()
                await self._drop(session)
        await self._enforce_disk()
        await asyncio.to_thread(_remove_stale, self.folder / "handoff", SEGMENT_WAIT)

    async def _enforce_disk(self) -> None:
        used, per_session = await asyncio.to_thread(_disk_usage, self.folder)
        self.disk_bytes = used
        self.disk_peak = max(self.disk_peak, used)
        running = [s for s in self.sessions.values() if s.job is not None and s.job.running]
        if used > 0.75 * self.disk_budget:
            # hold back the runs furthest ahead of their clients first
            for session in sorted(running, key=lambda s: -per_session.get(s.id, 0)):
                job = session.job
                assert job is not None
                if job.next_segment - 1 > session.read_up_to + 1 and not job.paused:
                    job.pause()
                    self._disk_paused.add(session.id)
                    self.metrics.disk_pauses.inc()
        elif used < 0.5 * self.disk_budget and self._disk_paused:
            for session_id in list(self._disk_paused):
                self._disk_paused.discard(session_id)
                held = self.sessions.get(session_id)
                if held is not None and held.job is not None:
                    held.job.mark_read(held.read_up_to)  # resumes unless max_ahead says no

    async def _drop(self, session: Session) -> None:
        """Forget the session here: its ffmpeg killed (the whole group), its pins released, its
        folder removed. Its row stays: a later request builds it again."""
        self.sessions.pop(session.id, None)
        self._disk_paused.discard(session.id)
        await self._stop_job(session)
        for key, token in session.pins.items():
            self.cache.unpin(key, token)
        session.pins.clear()
        session.inits.clear()
        await asyncio.to_thread(shutil.rmtree, self.folder / session.id, True)
        if session.owned:
            session.owned = False
            with contextlib.suppress(psycopg.Error, ServiceUnavailable):
                async with self.db.transaction() as conn:
                    await repository.release_owner(conn, session.id, self.owner)

    # --- several workers: one owner per session ----------------------------------------------

    async def _owner_elsewhere(self, session: Session) -> str | None:
        """The live process that runs this session's ffmpeg, when it is not this one; else
        ``None`` and this process owns the session from now (it was free, or its owner died)."""
        if session.owned:
            return None
        async with self.db.transaction() as conn:
            owner = await repository.claim_owner(conn, session.id, self.owner, _owner_alive)
        if owner == self.owner:
            session.owned = True
            return None
        return owner

    async def _ask_owner(
        self, session: Session, owner: str, variant: str, name: str
    ) -> bytes | None:
        """A segment (or init section) from the worker that owns the session: asked over
        PostgreSQL NOTIFY, handed over as a file in its folder (renamed into place whole).
        ``None`` when this process became the owner meanwhile (the owner let go or died)."""
        folder = self.root / owner.rsplit(":", 1)[1] / "handoff"
        path = folder / _handoff_name(session.id, variant, name)
        failed = path.with_name(path.name + ".err")
        async with self.db.connection() as conn:
            payload = {"op": "want", "session": session.id, "variant": variant, "name": name}
            await _notify(conn, payload)
        self.metrics.handoffs.inc()
        deadline = time.monotonic() + SEGMENT_WAIT
        recheck = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                data = await asyncio.to_thread(_take_file, path)
            except FileNotFoundError:
                pass
            else:
                return data
            with contextlib.suppress(FileNotFoundError):
                reason = await asyncio.to_thread(_take_file, failed)
                raise SegmentNotFound(reason.decode(errors="replace")[:300])
            if time.monotonic() > recheck:  # the owner may have let go of it, or died
                recheck = time.monotonic() + 1.0
                if await self._owner_elsewhere(session) is None:
                    return None
            await asyncio.sleep(HANDOFF_POLL)
        raise ServiceUnavailable("transcoder", "the session's owner did not answer",
                                 retry_after=1)  # fmt: skip

    def _on_notify(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            op, session_id = message["op"], str(message["session"])
        except (ValueError, KeyError, TypeError):
            return
        session = self.sessions.get(session_id)
        if session is None:
            if op == "want":  # not here (any more): let the asker take it if the row says us
                task = asyncio.create_task(self._release(session_id))
                self._handoffs.add(task)
                task.add_done_callback(self._handoffs.discard)
            return
        if op == "end":
            task = asyncio.create_task(self._drop(session))
        elif op == "want" and session.owned:
            task = asyncio.create_task(
                self._hand_over(session, str(message["variant"]), str(message["name"]))
            )
        else:
            return
        self._handoffs.add(task)
        task.add_done_callback(self._handoffs.discard)

    async def _release(self, session_id: str) -> None:
        with contextlib.suppress(psycopg.Error, ServiceUnavailable):
            async with self.db.transaction() as conn:
                await repository.release_owner(conn, session_id, self.owner)

    async def _hand_over(self, session: Session, variant: str, name: str) -> None:
        folder = self.folder / "handoff"
        path = folder / _handoff_name(session.id, variant, name)
        try:
            if name == INIT_NAME:
                data = await self.init_section(session, variant)
            else:
                data = (await self.segment(session, variant, int(name))).data
        except (DomainError, ServiceUnavailable, ValueError) as exc:
            await asyncio.to_thread(
                _put_file, path.with_name(path.name + ".err"), str(exc).encode()
            )
            return
        await asyncio.to_thread(_put_file, path, data)

    async def _listen_forever(self) -> None:
        delay = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.db.url, autocommit=True, connect_timeout=5,
                    application_name="revenge-playback-listener",
                )  # fmt: skip
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    delay = 0.1
                    async for notify in conn.notifies():
                        self._on_notify(notify.payload)
            except psycopg.Error as exc:
                log.warning("playback listener: %s; reconnecting in %.1fs", exc, delay)
            finally:
                self._listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    # --- helpers --------------------------------------------------------------------------------

    async def _probe(self, file: PlayableFile) -> tuple[MediaInfo, PacketIndex | None]:
        if file.missing:
            raise MediaUnavailable("the file is missing from its library folder")
        try:
            info = await asyncio.to_thread(os.stat, file.path)
        except OSError:
            raise MediaUnavailable("the file cannot be read") from None
        async with self.db.connection() as conn:
            stored = await repository.stored_media(conn, file.id, info.st_size, info.st_mtime_ns)
        if stored is not None:
            media, packets = stored
            if packets is not None or not media.of_kind("video"):
                return media, packets
        # not indexed at probe time (probed before that was done there, or changed since):
        # this first playback pays the scan, once
        transcoder = await self._transcoder()
        try:
            media = await transcoder.probe(Path(file.fspath))
            packets = (
                await keyframe_index(transcoder, Path(file.fspath), media)
                if media.of_kind("video")
                else None
            )
        except TranscoderError as exc:
            raise MediaUnavailable(str(exc)) from None
        async with self.db.transaction() as conn:
            await repository.store_media(
                conn, file.id, info.st_size, info.st_mtime_ns, media, packets
            )
        return media, packets

    def _decide(
        self, media: MediaInfo, packets: PacketIndex | None, request: dict[str, Any]
    ) -> tuple[Decision, HlsPlan | None]:
        client, prefs = caps_from_request(request)
        try:
            decision = decide(media, client, prefs)
            if decision.method is Method.DIRECT:
                return decision, None
            return decision, plan_hls(media, decision, self.settings.segment_length, packets)
        except NoPlayableFormat as exc:
            raise DomainError(
                exc.code, "No playable format", kind="invalid", detail=str(exc)
            ) from None
        except PlanError as exc:
            raise MediaUnavailable(str(exc)) from None

    def _segment_at(self, plan: HlsPlan | None, start_ms: int) -> int:
        if plan is None:
            return 0
        t = start_ms / 1000
        segments = plan.variants[0].segments
        return next((s.index for s in reversed(segments) if s.start <= t), 0)

    def _start_for(self, session: Session, variant: Variant) -> int:
        t = session.position_ms / 1000
        return next((s.index for s in reversed(variant.segments) if s.start <= t), 0)

    @staticmethod
    def _plan(session: Session) -> HlsPlan:
        if session.plan is None:
            raise SegmentNotFound("a direct-play session has no HLS playlists")
        return session.plan

    @staticmethod
    def _variant(plan: HlsPlan, name: str) -> Variant:
        try:
            return plan.variant(name)
        except KeyError:
            raise SegmentNotFound(f"no variant {name!r}") from None

    @staticmethod
    def _key(session: Session, variant: str, index: int) -> str:
        return f"{session.id}/{variant}/{index}"

    def _transcode_failed(self, exc: TranscodeFailed) -> DomainError:
        return DomainError(
            "transcode_failed", "The transcode failed", kind="conflict", detail=str(exc)[:500]
        )

    def recommended_variant(self, session: Session) -> str | None:
        """The best variant whose peak bit rate fits in 80 % of what the client pulls."""
        if session.plan is None:
            return None
        rate = session.bandwidth.bytes_per_second * 8
        if rate == 0:
            return None
        fitting = [v for v in session.plan.variants if v.bandwidth <= 0.8 * rate]
        return (
            max(fitting, key=lambda v: v.bandwidth).name
            if fitting
            else session.plan.variants[-1].name
        )

    def info(self, session: Session) -> dict[str, Any]:
        job = session.job
        return {
            "transcode": None
            if job is None
            else {
                "variant": job.variant.name,
                "running": job.running,
                "paused": job.paused,
                "start_segment": job.start_segment,
                "next_segment": job.next_segment,
            },
            "bandwidth_bps": session.bandwidth.bytes_per_second * 8,
            "recommended_variant": self.recommended_variant(session),
        }


async def _notify(conn: Any, message: dict[str, Any]) -> None:
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps(message)))


def _handoff_name(session_id: str, variant: str, name: str) -> str:
    return f"{session_id}.{variant}.{name}"


def _take_file(path: Path) -> bytes:
    """Read and remove a handed-over file (it appears whole: written aside, then renamed)."""
    data = path.read_bytes()
    path.unlink(missing_ok=True)
    return data


def _put_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    partial.rename(path)


def _owner_alive(owner: str) -> bool:
    """Whether the process named ``host:pid`` lives. Another host's owner is taken to live (its
    lease is the row; see docs/playback.md on several hosts)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    if not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(folder: Path, age: float) -> None:
    """Handed-over files nobody took (the asker gave up) go after ``age`` seconds."""
    limit = time.time() - age
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < limit:
                    os.unlink(entry.path)


def _index_of(key: str) -> int:
    tail = key.rsplit("/", 1)[1]
    return int(tail) if tail.isdigit() else 1 << 62


def _exists(job: TranscodeJob, index: int) -> bool:
    ready = job.ready(index)
    return ready is not None and ready.path.exists()


def _disk_usage(folder: Path) -> tuple[int, dict[str, int]]:
    """Bytes under ``folder``, and per session (its first-level sub-folders)."""
    total = 0
    per_session: dict[str, int] = {}
    try:
        sessions = list(os.scandir(folder))
    except FileNotFoundError:
        return 0, {}
    for entry in sessions:
        size = 0
        for root, _, files in os.walk(entry.path):
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    size += os.stat(os.path.join(root, name)).st_size
        per_session[entry.name] = size
        total += size
    return total, per_session


def sweep(root: Path) -> int:
    """Start-up: kill ffmpeg left by a process of an earlier run (or a worker that died) and
    remove its folder. A folder is named after the pid of its process; one of a live process is
    another worker's and stays. The number of ffmpeg processes killed."""
    root.mkdir(parents=True, exist_ok=True)
    dead = [
        entry.path
        for entry in os.scandir(root)
        if not entry.name.isdigit() or not _alive(int(entry.name))
    ]
    killed = 0
    if dead:
        for pid, argv in _processes():
            if Path(argv[0]).name.startswith("ffmpeg") and any(
                arg.startswith(folder + "/") for folder in dead for arg in argv
            ):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
                    killed += 1
        for folder in dead:
            if os.path.isdir(folder):
                shutil.rmtree(folder, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(folder)
    return killed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a folder of ours at start is a previous process's that had our pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _processes() -> list[tuple[int, list[str]]]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        argv = [os.fsdecode(a) for a in raw.split(b"\0") if a]
        if argv:
            found.append((int(entry.name), argv))
    return found
