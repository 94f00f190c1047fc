"""How to play a file on a client: direct play, remux into HLS, or transcode, and why.

A pure function of the probe (``MediaInfo``), what the client says it can play (``ClientCaps``) and
what the user prefers (``Preferences``); no I/O, so the whole policy is one table of tests.

>>> from revenge.modules.playback.transcoder import MediaInfo, StreamInfo
>>> movie = MediaInfo("matroska,webm", 60.0, 4_000_000, (
...     StreamInfo(0, "video", "h264", 1920, 1080, profile="High", level=41, bit_depth=8),
...     StreamInfo(1, "audio", "aac", channels=2, default=True),
... ))
>>> browser = ClientCaps(
...     containers=frozenset({"mp4"}),
...     video=(VideoSupport("h264", max_level=5.1),), audio=(AudioSupport("aac"),),
... )
>>> d = decide(movie, browser)
>>> d.method.value, [r.value for r in d.reasons], d.video.action.value if d.video else None
('remux', ['container_unsupported'], 'copy')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

from revenge.modules.playback.transcoder import MediaInfo, StreamInfo

SegmentFormat = Literal["fmp4", "ts"]


class Method(StrEnum):
    DIRECT = "direct"  # the file as it is, with Range
    REMUX = "remux"  # every stream copied, into HLS segments
    TRANSCODE = "transcode"  # at least one stream re-encoded (or subtitles burned in), into HLS


class Reason(StrEnum):
    """Why a file is not played directly; stable strings, shown to clients and in metrics."""

    CONTAINER = "container_unsupported"
    AUDIO_TRACK = "audio_track_not_default"
    VIDEO_CODEC = "video_codec_unsupported"
    VIDEO_PROFILE = "video_profile_unsupported"
    VIDEO_LEVEL = "video_level_unsupported"
    VIDEO_BIT_DEPTH = "video_bit_depth_unsupported"
    VIDEO_HDR = "video_hdr_unsupported"
    VIDEO_RESOLUTION = "video_resolution_too_high"
    BITRATE = "bitrate_too_high"
    AUDIO_CODEC = "audio_codec_unsupported"
    AUDIO_CHANNELS = "audio_channels_unsupported"
    SEGMENT_FORMAT = "codec_not_allowed_in_segment_format"
    SUBTITLE_BURN_IN = "subtitle_burn_in"


class Action(StrEnum):
    COPY = "copy"
    TRANSCODE = "transcode"


class SubtitleMode(StrEnum):
    OFF = "off"
    FORCED = "forced"  # only forced subtitles (signs, foreign dialogue)
    ALWAYS = "always"


class SubtitleDelivery(StrEnum):
    EMBEDDED = "embedded"  # direct play: the client renders the stream from the file
    WEBVTT = "webvtt"  # extracted and served as WebVTT (an HLS rendition, or a side file)
    BURN_IN = "burn_in"  # drawn into the video, which is then transcoded


class NoPlayableFormat(ValueError):
    """The client can play none of the formats this server can produce (code ``no_playable_format``)."""

    code = "no_playable_format"


@dataclass(frozen=True, slots=True)
class VideoSupport:
    """A video codec the client decodes, with ffprobe names (``h264``, profile ``high``)."""

    codec: str
    profiles: frozenset[str] = frozenset()  # lower-case; empty = every profile
    max_level: float | None = None  # 4.1, 5.1 (the codec's own numbering); None = any
    max_bit_depth: int = 8
    hdr: frozenset[str] = frozenset()  # hdr10 | hlg | dolby-vision shown as HDR


@dataclass(frozen=True, slots=True)
class AudioSupport:
    codec: str
    max_channels: int = 2


@dataclass(frozen=True, slots=True)
class ClientCaps:
    """What a client declares it can play."""

    containers: frozenset[str]  # for direct play: mp4, mkv, webm, ts, ...
    video: tuple[VideoSupport, ...]
    audio: tuple[AudioSupport, ...]
    max_width: int | None = None
    max_height: int | None = None
    max_bitrate: int | None = None  # bits per second, all streams
    segment_format: SegmentFormat = "fmp4"
    subtitles: frozenset[str] = frozenset({"vtt"})  # vtt, srt, ass, ttml, pgs, vobsub, dvbsub

    def video_support(self, codec: str) -> VideoSupport | None:
        return next((v for v in self.video if v.codec == codec), None)

    def audio_support(self, codec: str) -> AudioSupport | None:
        return next((a for a in self.audio if a.codec == codec), None)


@dataclass(frozen=True, slots=True)
class Preferences:
    """The user's settings, and the player's explicit track choice where it made one."""

    audio_languages: tuple[str, ...] = ()
    subtitle_languages: tuple[str, ...] = ()
    subtitle_mode: SubtitleMode = SubtitleMode.FORCED
    burn_in_image_subtitles: bool = False
    max_bitrate: int | None = None
    audio_stream: int | None = None
    subtitle_stream: int | None = None


@dataclass(frozen=True, slots=True)
class VideoOutput:
    stream: int  # index in the source
    action: Action
    codec: str
    width: int
    height: int
    bit_rate: int | None  # the encoder's target (transcode), or the source's (copy) where known
    profile: str | None  # transcode: the H.264 profile to encode (high | main | baseline)
    burn_subtitle: int | None = None


@dataclass(frozen=True, slots=True)
class AudioOutput:
    stream: int
    action: Action
    codec: str
    channels: int
    bit_rate: int | None


@dataclass(frozen=True, slots=True)
class SubtitleOutput:
    stream: int
    delivery: SubtitleDelivery
    codec: str
    language: str | None
    forced: bool
    selected: bool  # the one to show at start (DEFAULT=YES in HLS)


@dataclass(frozen=True, slots=True)
class Decision:
    method: Method
    reasons: tuple[Reason, ...]  # empty for direct play; in the order ``Reason`` declares them
    container: str  # direct: the source's container; HLS: fmp4 | ts
    video: VideoOutput | None
    audio: AudioOutput | None
    subtitles: tuple[SubtitleOutput, ...]
    max_bitrate: int | None  # the cap that applied (client and user), if any
    encode_profile: str | None = None  # the H.264 profile this client gets when we encode

    @property
    def selected_subtitle(self) -> SubtitleOutput | None:
        return next((s for s in self.subtitles if s.selected), None)


# What ffmpeg's HLS muxer may carry in each segment format without re-encoding. HEVC stays out of
# TS: Apple's players only take it in fMP4.
SEGMENT_CODECS: dict[str, frozenset[str]] = {
    "ts": frozenset({"h264", "mpeg2video", "aac", "mp3", "ac3", "eac3"}),
    "fmp4": frozenset({"h264", "hevc", "av1", "vp9", "aac", "mp3", "ac3", "eac3", "opus", "flac"}),
}

TEXT_SUBTITLES = frozenset({"subrip", "ass", "ssa", "webvtt", "mov_text", "text", "ttml"})
# ffprobe codec -> the name a client declares
_SUBTITLE_FORMATS = {
    "subrip": "srt",
    "ass": "ass",
    "ssa": "ass",
    "webvtt": "vtt",
    "mov_text": "tx3g",
    "text": "srt",
    "ttml": "ttml",
    "hdmv_pgs_subtitle": "pgs",
    "dvd_subtitle": "vobsub",
    "dvb_subtitle": "dvbsub",
}

# Heights of the transcoding ladder and the H.264 bit rate each gets at about 30 frames per second.
LADDER: tuple[tuple[int, int], ...] = (
    (2160, 16_000_000),
    (1440, 9_000_000),
    (1080, 5_000_000),
    (720, 2_800_000),
    (480, 1_200_000),
    (360, 700_000),
    (240, 400_000),
)
AUDIO_BITRATE_PER_CHANNEL = 64_000


def decide(media: MediaInfo, client: ClientCaps, prefs: Preferences = Preferences()) -> Decision:
    """Direct play if the client takes the file as it is, remux if it takes every stream but not
    the container (or not the track order), else transcode only the streams it cannot take."""
    videos, audios = media.of_kind("video"), media.of_kind("audio")
    if not videos and not audios:
        raise NoPlayableFormat("the file has no video or audio stream")
    cap = _min_cap(client.max_bitrate, prefs.max_bitrate)
    audio_src = _pick_audio(audios, prefs)
    subtitle_src = _pick_subtitle(media.of_kind("subtitle"), audio_src, prefs)
    burn = (
        subtitle_src
        if subtitle_src is not None and _must_burn(subtitle_src, client, prefs)
        else None
    )

    reasons: list[Reason] = []
    total_bitrate = _total_bitrate(media)
    audio_out = _audio_output(audio_src, client, reasons) if audio_src else None
    audio_rate = (audio_out.bit_rate or 0) if audio_out else 0
    video_out = (
        _video_output(videos[0], media, client, cap, audio_rate, total_bitrate, burn, reasons)
        if videos
        else None
    )
    copy_all = all(out is None or out.action is Action.COPY for out in (video_out, audio_out)) and (
        burn is None
    )

    containers = _container_names(media)
    if copy_all and containers & client.containers and not _audio_is_reordered(audio_src, audios):
        method, container = Method.DIRECT, sorted(containers & client.containers)[0]
    else:
        if not containers & client.containers:
            reasons.insert(0, Reason.CONTAINER)
        elif _audio_is_reordered(audio_src, audios):
            reasons.insert(0, Reason.AUDIO_TRACK)
        video_out, audio_out = _fit_segment_format(
            video_out, audio_out, media, client, cap, reasons
        )
        copying = all(o is None or o.action is Action.COPY for o in (video_out, audio_out))
        method = Method.REMUX if copying else Method.TRANSCODE
        container = client.segment_format
    subtitles = _subtitle_outputs(media, subtitle_src, burn, method, client)
    ordered = tuple(r for r in Reason if r in reasons)
    h264 = client.video_support("h264")
    profile = _h264_profile(h264) if h264 else None
    return Decision(method, ordered, container, video_out, audio_out, subtitles, cap, profile)


def _video_output(
    src: StreamInfo,
    media: MediaInfo,
    client: ClientCaps,
    cap: int | None,
    audio_rate: int,
    total_bitrate: int | None,
    burn: StreamInfo | None,
    reasons: list[Reason],
) -> VideoOutput:
    found = _video_problems(src, client)
    if cap is not None and total_bitrate is not None and total_bitrate > cap:
        found.append(Reason.BITRATE)
    if burn is not None:
        found.append(Reason.SUBTITLE_BURN_IN)
    reasons.extend(found)
    width, height = src.width or 0, src.height or 0
    if not found:
        return VideoOutput(src.index, Action.COPY, src.codec, width, height, src.bit_rate, None)
    return _video_transcode(src, media, client, cap, audio_rate, burn)


def _video_transcode(
    src: StreamInfo,
    media: MediaInfo,
    client: ClientCaps,
    cap: int | None,
    audio_rate: int,
    burn: StreamInfo | None,
) -> VideoOutput:
    h264 = client.video_support("h264")
    if h264 is None:
        raise NoPlayableFormat("the client declares no H.264 support, the only video we encode")
    width, height = fit_within(src.width or 0, src.height or 0, client.max_width, client.max_height)
    budget = None if cap is None else max(cap - audio_rate, LADDER[-1][1])
    if budget is not None:
        # a lower rung where the cap leaves too few bits for this many pixels
        while height > LADDER[-1][0] and ladder_bitrate(height) > budget:
            lower = next((h for h, _ in LADDER if h < height), LADDER[-1][0])
            width, height = fit_within(width, height, None, lower)
    source_rate = src.bit_rate or _video_bitrate_guess(media)
    rates = [ladder_bitrate(height)] + [r for r in (budget, source_rate) if r]
    return VideoOutput(
        src.index,
        Action.TRANSCODE,
        "h264",
        width,
        height,
        min(rates),
        _h264_profile(h264),
        burn.index if burn else None,
    )


def _video_problems(src: StreamInfo, client: ClientCaps) -> list[Reason]:
    support = client.video_support(src.codec)
    if support is None:
        return [Reason.VIDEO_CODEC]
    found: list[Reason] = []
    if support.profiles and (src.profile or "").lower() not in support.profiles:
        found.append(Reason.VIDEO_PROFILE)
    level = codec_level(src.codec, src.level)
    if support.max_level is not None and level is not None and level > support.max_level + 1e-9:
        found.append(Reason.VIDEO_LEVEL)
    if (src.bit_depth or 8) > support.max_bit_depth:
        found.append(Reason.VIDEO_BIT_DEPTH)
    if src.hdr is not None and src.hdr not in support.hdr:
        found.append(Reason.VIDEO_HDR)
    too_wide = client.max_width is not None and (src.width or 0) > client.max_width
    too_tall = client.max_height is not None and (src.height or 0) > client.max_height
    if too_wide or too_tall:
        found.append(Reason.VIDEO_RESOLUTION)
    return found


def _audio_output(src: StreamInfo, client: ClientCaps, reasons: list[Reason]) -> AudioOutput:
    channels = src.channels or 2
    support = client.audio_support(src.codec)
    if support is not None and channels <= support.max_channels:
        return AudioOutput(src.index, Action.COPY, src.codec, channels, src.bit_rate)
    reasons.append(Reason.AUDIO_CODEC if support is None else Reason.AUDIO_CHANNELS)
    return _audio_transcode(src, client)


def _audio_transcode(src: StreamInfo, client: ClientCaps) -> AudioOutput:
    target = client.audio_support("aac") or client.audio_support("mp3")
    if target is None:
        raise NoPlayableFormat("the client declares neither AAC nor MP3, the audio we encode")
    limit = 2 if target.codec == "mp3" else 6
    channels = max(1, min(src.channels or 2, target.max_channels, limit))
    return AudioOutput(
        src.index, Action.TRANSCODE, target.codec, channels, AUDIO_BITRATE_PER_CHANNEL * channels
    )


def _fit_segment_format(
    video: VideoOutput | None,
    audio: AudioOutput | None,
    media: MediaInfo,
    client: ClientCaps,
    cap: int | None,
    reasons: list[Reason],
) -> tuple[VideoOutput | None, AudioOutput | None]:
    """Streams copied into HLS must be codecs the segment format can carry."""
    allowed = SEGMENT_CODECS[client.segment_format]
    streams = {s.index: s for s in media.streams}
    if audio is not None and audio.action is Action.COPY and audio.codec not in allowed:
        reasons.append(Reason.SEGMENT_FORMAT)
        audio = _audio_transcode(streams[audio.stream], client)
    if video is not None and video.action is Action.COPY and video.codec not in allowed:
        reasons.append(Reason.SEGMENT_FORMAT)
        audio_rate = (audio.bit_rate or 0) if audio else 0
        video = _video_transcode(streams[video.stream], media, client, cap, audio_rate, None)
    return video, audio


def _pick_audio(audios: tuple[StreamInfo, ...], prefs: Preferences) -> StreamInfo | None:
    if not audios:
        return None
    chosen = next((a for a in audios if a.index == prefs.audio_stream), None)
    if chosen is not None:
        return chosen
    for language in prefs.audio_languages:
        matching = [a for a in audios if same_language(a.language, language)]
        if matching:
            return next((a for a in matching if a.default), matching[0])
    return _player_default(audios)


def _pick_subtitle(
    subtitles: tuple[StreamInfo, ...], audio: StreamInfo | None, prefs: Preferences
) -> StreamInfo | None:
    chosen = next((s for s in subtitles if s.index == prefs.subtitle_stream), None)
    if chosen is not None or prefs.subtitle_mode is SubtitleMode.OFF:
        return chosen
    audio_language = audio.language if audio else None
    if prefs.subtitle_mode is SubtitleMode.FORCED:
        forced = [s for s in subtitles if s.forced]
        languages = (audio_language, *prefs.subtitle_languages)
        return _by_language(forced, languages) or next(
            (s for s in forced if s.language is None), None
        )
    full = [s for s in subtitles if not s.forced]
    return (
        _by_language(full, prefs.subtitle_languages)
        or _by_language(subtitles, prefs.subtitle_languages)
        or next((s for s in full if s.default), None)
        or (full[0] if full else None)
    )


def _by_language(
    streams: Iterable[StreamInfo], languages: Iterable[str | None]
) -> StreamInfo | None:
    streams = tuple(streams)
    for language in languages:
        if language is None:
            continue
        matching = [s for s in streams if same_language(s.language, language)]
        if matching:
            return next((s for s in matching if s.default), matching[0])
    return None


def _must_burn(sub: StreamInfo, client: ClientCaps, prefs: Preferences) -> bool:
    """Image subtitles are drawn into the picture only when the user asked for that: burning in
    turns a cheap remux into a full transcode."""
    return prefs.burn_in_image_subtitles and sub.codec not in TEXT_SUBTITLES


def _subtitle_outputs(
    media: MediaInfo,
    selected: StreamInfo | None,
    burn: StreamInfo | None,
    method: Method,
    client: ClientCaps,
) -> tuple[SubtitleOutput, ...]:
    """Every text subtitle is offered (the player may switch); an image one only where the
    client can draw it from the file itself, or burned in."""
    out: list[SubtitleOutput] = []
    for sub in media.of_kind("subtitle"):
        is_selected = selected is not None and sub.index == selected.index
        name = _SUBTITLE_FORMATS.get(sub.codec, sub.codec)
        if burn is not None and sub.index == burn.index:
            delivery = SubtitleDelivery.BURN_IN
        elif method is Method.DIRECT and name in client.subtitles:
            delivery = SubtitleDelivery.EMBEDDED
        elif sub.codec in TEXT_SUBTITLES and "vtt" in client.subtitles:
            delivery = SubtitleDelivery.WEBVTT
        else:
            continue
        out.append(
            SubtitleOutput(sub.index, delivery, sub.codec, sub.language, sub.forced, is_selected)
        )
    return tuple(out)


def _player_default(streams: tuple[StreamInfo, ...]) -> StreamInfo:
    """The track a player picks on its own: the one flagged default, else the first."""
    return next((s for s in streams if s.default), streams[0])


def _audio_is_reordered(chosen: StreamInfo | None, audios: tuple[StreamInfo, ...]) -> bool:
    """Direct play gives the player the whole file; it will play its default track, not ours."""
    return chosen is not None and len(audios) > 1 and chosen is not _player_default(audios)


def _container_names(media: MediaInfo) -> frozenset[str]:
    """ffprobe's demuxer names (``mov,mp4,m4a,3gp,3g2,mj2``) as the names clients declare."""
    names = set(media.container.split(","))
    if "matroska" in names:
        names = {"mkv"}
        codecs = {s.codec for s in media.streams if not s.cover}
        if codecs and codecs <= {"vp8", "vp9", "av1", "opus", "vorbis", "webvtt"}:
            names.add("webm")
    elif "mp4" in names:
        names = {"mp4", "m4v", "mov"}
    elif "mpegts" in names:
        names = {"ts"}
    elif "asf" in names:
        names = {"asf", "wmv"}
    return frozenset(names)


def _total_bitrate(media: MediaInfo) -> int | None:
    if media.bit_rate:
        return media.bit_rate
    rates = [s.bit_rate for s in media.streams if s.bit_rate]
    return sum(rates) if rates else None


def _video_bitrate_guess(media: MediaInfo) -> int | None:
    total = _total_bitrate(media)
    if total is None:
        return None
    audio = sum(s.bit_rate or 0 for s in media.of_kind("audio"))
    return max(total - audio, 0) or None


def _min_cap(*caps: int | None) -> int | None:
    present = [c for c in caps if c]
    return min(present) if present else None


def _h264_profile(support: VideoSupport) -> str:
    if not support.profiles or "high" in support.profiles:
        return "high"
    if "main" in support.profiles:
        return "main"
    return "baseline"


def fit_within(
    width: int, height: int, max_width: int | None, max_height: int | None
) -> tuple[int, int]:
    """Scale down (never up) to fit, keeping the aspect ratio, to even sizes as H.264 wants.

    >>> fit_within(1920, 1080, None, 720)
    (1280, 720)
    >>> fit_within(1920, 800, 1280, None)
    (1280, 534)
    """
    if width <= 0 or height <= 0:
        return width, height
    scale = min(
        1.0,
        (max_width / width) if max_width else 1.0,
        (max_height / height) if max_height else 1.0,
    )
    if scale >= 1.0:
        return width, height
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def ladder_bitrate(height: int) -> int:
    """The video bit rate of the ladder rung at or just above this height.

    >>> ladder_bitrate(720), ladder_bitrate(1000)
    (2800000, 5000000)
    """
    fitting = [rate for h, rate in LADDER if h >= height]
    return fitting[-1] if fitting else LADDER[0][1]


def codec_level(codec: str, raw: int | None) -> float | None:
    """ffprobe's raw level in the codec's own numbering: H.264 ``41`` -> 4.1, HEVC ``123`` -> 4.1.

    >>> codec_level("h264", 41), codec_level("hevc", 153), codec_level("av1", 8)
    (4.1, 5.1, 4.0)
    """
    if raw is None or raw < 0:
        return None
    if codec == "h264":
        return raw / 10
    if codec == "hevc":
        return round(raw / 30, 1)
    if codec == "av1":  # seq_level_idx: 2.0 is 0, four minor levels per major
        return 2 + raw // 4 + (raw % 4) / 10
    return None


# ISO 639-1 codes and the 639-2 (bibliographic and terminology) codes files carry
_LANGUAGES = {
    "en": ("eng",),
    "fr": ("fre", "fra"),
    "de": ("ger", "deu"),
    "es": ("spa",),
    "it": ("ita",),
    "pt": ("por",),
    "nl": ("dut", "nld"),
    "ja": ("jpn",),
    "zh": ("chi", "zho"),
    "ko": ("kor",),
    "ru": ("rus",),
    "sv": ("swe",),
    "no": ("nor",),
    "da": ("dan",),
    "fi": ("fin",),
    "pl": ("pol",),
    "cs": ("cze", "ces"),
    "el": ("gre", "ell"),
    "tr": ("tur",),
    "ar": ("ara",),
    "he": ("heb",),
    "hi": ("hin",),
}
_CANONICAL = {code: one for one, codes in _LANGUAGES.items() for code in (one, *codes)}


def same_language(a: str | None, b: str | None) -> bool:
    """``eng``, ``en`` and ``en-US`` are one language; unknown codes compare as written.

    >>> same_language("fre", "fr-CA"), same_language("eng", "ger")
    (True, False)
    """
    if not a or not b:
        return False

    def canonical(code: str) -> str:
        base = code.lower().split("-")[0].split("_")[0]
        return _CANONICAL.get(base, base)

    return canonical(a) == canonical(b)


class StoredPreferences(Protocol):
    """A user's saved preferences as ``revenge.modules.auth.read_preferences`` answers them."""

    @property
    def audio_languages(self) -> tuple[str, ...]: ...
    @property
    def subtitle_languages(self) -> tuple[str, ...]: ...
    @property
    def subtitle_mode(self) -> str: ...
    @property
    def max_bitrate(self) -> int | None: ...


def user_preferences(
    stored: StoredPreferences,
    *,
    audio_stream: int | None = None,
    subtitle_stream: int | None = None,
) -> Preferences:
    """The decision's preferences from a user's saved ones, with the player's explicit choice.

    The hook a playback session calls: ``decide(media, caps, user_preferences(await
    read_preferences(conn, principal.user_id)))`` picks the default audio and subtitle
    tracks by the user's languages and caps the bitrate at theirs.
    """
    return Preferences(
        audio_languages=stored.audio_languages,
        subtitle_languages=stored.subtitle_languages,
        subtitle_mode=SubtitleMode(stored.subtitle_mode),
        max_bitrate=stored.max_bitrate,
        audio_stream=audio_stream,
        subtitle_stream=subtitle_stream,
    )
