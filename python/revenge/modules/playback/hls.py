"""HLS planned up front: the variants, their segments, and the playlists (RFC 8216).

Every segment is known before ffmpeg runs, so the playlists are complete VOD playlists from the first
request and a seek anywhere is a plain segment request. The plan is what ``ffmpeg.py`` makes ffmpeg
produce, exactly:

- transcoded variants cut where we force keyframes: a short ramp first (1 s, 2 s, 3 s: the first
  bytes come fast and the encoder gets ahead), then ``segment_length``; boundaries sit on the
  output frame grid, so the keyframe lands on the boundary and not a frame later;
- copied variants cut on the source's own keyframes (``PacketIndex``): ffmpeg writes one chunk per
  source keyframe and the runner joins the chunks of a segment, so a restart anywhere cuts the same;
  the same ramp bounds the first segments (whole GOPs, at least one each).

>>> from fractions import Fraction
>>> [round(s.duration, 3) for s in grid_segments(14.0, Fraction(30), 6.0)]
[1.0, 2.0, 3.0, 6.0, 2.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from revenge.modules.playback.decision import (
    LADDER,
    Action,
    AudioOutput,
    Decision,
    Method,
    SegmentFormat,
    SubtitleDelivery,
    VideoOutput,
    codec_level,
    fit_within,
    ladder_bitrate,
)
from revenge.modules.playback.transcoder import MediaInfo, PacketIndex, StreamInfo

RAMP = (1.0, 2.0, 3.0)  # the first segments' longest lengths, seconds (fast first bytes)
MIN_LAST = 0.5  # a shorter tail joins the segment before it (a player may stall on a sliver)
LADDER_RUNGS = 3  # transcoded variants below the top one
LADDER_FLOOR = 360  # no rung below this height

# The encoder's VBV: -maxrate = the target bit rate, -bufsize = this many seconds of it
VBV_SECONDS = 1.0
# Container bytes on top of the streams: fMP4 fragment headers; TS packet headers, PES headers and
# the padding of each PES's last packet. Measured on ffmpeg 5.1 output, with margin.
_OVERHEAD = {"fmp4": (1.02, 8_000), "ts": (1.04, 48_000)}


class PlanError(ValueError):
    """The media cannot be planned as HLS (code ``hls_unplannable``): no duration, no keyframes."""

    code = "hls_unplannable"


@dataclass(frozen=True, slots=True)
class Segment:
    index: int  # the media sequence number, also the file's number
    start: float  # seconds on the output timeline
    duration: float
    first_chunk: int = 0  # copy: the source keyframes [first_chunk, end_chunk) this segment holds
    end_chunk: int = 0

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class Variant:
    """One ``EXT-X-STREAM-INF``: what it encodes, its codecs and bandwidth, and its segments."""

    name: str  # "source" or the rung, "720p"; the URL path part
    video: VideoOutput | None
    audio: AudioOutput | None
    h264_level: float | None  # the level we ask the encoder for (transcoded video only)
    frame_rate: Fraction | None
    codecs: str
    bandwidth: int  # peak segment bit rate (RFC 8216 4.3.4.2), an upper bound for transcodes
    average_bandwidth: int
    segments: tuple[Segment, ...]

    @property
    def target_duration(self) -> int:
        return max(round_half_up(s.duration) for s in self.segments)

    @property
    def copies_video(self) -> bool:
        return self.video is not None and self.video.action is Action.COPY

    @property
    def chunked(self) -> bool:
        """Copied video: ffmpeg cuts at every source keyframe, and chunks make the segments."""
        return self.copies_video


@dataclass(frozen=True, slots=True)
class SubtitleRendition:
    stream: int
    name: str
    language: str | None  # BCP 47
    default: bool
    forced: bool
    duration: float


@dataclass(frozen=True, slots=True)
class HlsPlan:
    segment_format: SegmentFormat
    segment_length: float
    duration: float
    variants: tuple[Variant, ...]  # the first is the top one: copy where the client takes it
    subtitles: tuple[SubtitleRendition, ...]

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)


def plan_hls(
    media: MediaInfo,
    decision: Decision,
    segment_length: float = 6.0,
    packets: PacketIndex | None = None,
    *,
    ladder: bool = True,
) -> HlsPlan:
    """The variants of a remux or transcode decision: the top one as decided (streams copied where
    the client takes them), then lower transcoded rungs. Copying video needs the source's
    ``packets``; a plan for a direct-play decision is refused."""
    if decision.method is Method.DIRECT:
        raise PlanError("a direct-play decision has no HLS plan")
    if not media.duration or media.duration <= 0:
        raise PlanError("the media has no duration")
    if segment_length < 1:
        raise PlanError("segments must be at least 1 s long")
    fmt: SegmentFormat = "ts" if decision.container == "ts" else "fmp4"
    streams = {s.index: s for s in media.streams}
    top_video, audio = decision.video, decision.audio
    variants = [_variant("source", media, streams, top_video, audio, fmt, segment_length, packets)]
    if ladder and top_video is not None and decision.encode_profile is not None:
        source = streams[top_video.stream]
        cap = decision.max_bitrate
        audio_rate = _audio_rate(audio, streams)
        budget = None if cap is None else cap - audio_rate
        rungs = [h for h, _ in LADDER if LADDER_FLOOR <= h < top_video.height]
        for height in rungs[:LADDER_RUNGS]:
            rate = min(ladder_bitrate(height), top_video.bit_rate or ladder_bitrate(height))
            if budget is not None and rate > budget:
                continue
            width, h = fit_within(source.width or 0, source.height or 0, None, height)
            video = VideoOutput(
                source.index,
                Action.TRANSCODE,
                "h264",
                width,
                h,
                rate,
                decision.encode_profile,
                top_video.burn_subtitle,
            )
            variants.append(
                _variant(f"{height}p", media, streams, video, audio, fmt, segment_length, None)
            )
    subtitles = tuple(
        SubtitleRendition(
            s.stream,
            _subtitle_name(streams[s.stream], s.stream),
            bcp47(s.language),
            s.selected,
            s.forced,
            media.duration,
        )
        for s in decision.subtitles
        if s.delivery is SubtitleDelivery.WEBVTT
    )
    return HlsPlan(fmt, segment_length, media.duration, tuple(variants), subtitles)


def _variant(
    name: str,
    media: MediaInfo,
    streams: dict[int, StreamInfo],
    video: VideoOutput | None,
    audio: AudioOutput | None,
    fmt: SegmentFormat,
    segment_length: float,
    packets: PacketIndex | None,
) -> Variant:
    assert media.duration is not None
    source = streams[video.stream] if video else None
    rate = _output_frame_rate(source) if source else None
    level = None
    if video is not None and video.action is Action.TRANSCODE:
        level = h264_level(video.width, video.height, rate or Fraction(30), video.bit_rate or 0)
    codecs = ",".join(
        c
        for c in (
            _video_codec_string(video, source, level),
            _audio_codec_string(audio, streams[audio.stream]) if audio else None,
        )
        if c
    )
    audio_rate = _audio_rate(audio, streams)
    mul, add = _OVERHEAD[fmt]
    if video is not None and video.action is Action.COPY:
        if packets is None:
            raise PlanError("copying video needs the source's keyframes (Transcoder.packets)")
        segments = keyframe_segments(packets, segment_length)
        extra_audio = _extra_audio_rate(audio, streams)
        peak, average = _measured_rates(segments, packets, segment_length)
        bandwidth = math.ceil((peak + extra_audio) * mul + add)
        average_bandwidth = math.ceil((average + extra_audio) * mul + add)
    else:
        end = packets.video_end if packets else media.duration
        if video is None:
            # audio only: ffmpeg cuts by time, every segment_length from the start, tail included
            segments = grid_segments(end, None, segment_length, ramp=(), min_last=0.0)
        else:
            segments = grid_segments(end, rate or Fraction(30), segment_length)
        target = _target_duration(segments)
        video_rate = (video.bit_rate or 0) if video else 0
        # x264's VBV bounds the bits of any window of w seconds by maxrate * w + bufsize; RFC 8216
        # measures peaks over windows of at least half the target duration.
        peak_video = video_rate * (1 + VBV_SECONDS / (target / 2))
        bandwidth = math.ceil((peak_video + audio_rate) * mul + add)
        average_bandwidth = math.ceil((video_rate + audio_rate) * mul + add)
    return Variant(
        name, video, audio, level, rate, codecs, bandwidth, average_bandwidth, tuple(segments)
    )


def grid_segments(
    end: float,
    frame_rate: Fraction | None,
    segment_length: float,
    ramp: Sequence[float] = RAMP,
    min_last: float = MIN_LAST,
) -> list[Segment]:
    """Boundaries at the ramp, then every ``segment_length``, each moved to the first frame at or
    after it (where ffmpeg puts a forced keyframe); a tail under ``min_last`` joins the one before
    (no keyframe is forced there, so ffmpeg does not cut)."""
    cuts: list[float] = []
    t = 0.0
    for length in (*ramp, *([segment_length] * math.ceil(end / segment_length + 1))):
        t += min(length, segment_length)
        if t >= end:
            break
        cuts.append(t)
    bounds = [Fraction(0)] + [_on_frame_grid(c, frame_rate) for c in cuts]
    bounds = [b for i, b in enumerate(bounds) if i == 0 or b > bounds[i - 1]]
    while len(bounds) > 1 and end - bounds[-1] < min_last:
        bounds.pop()
    edges = [*(float(b) for b in bounds), end]
    return [Segment(i, edges[i], edges[i + 1] - edges[i]) for i in range(len(edges) - 1)]


def keyframe_segments(
    packets: PacketIndex, segment_length: float, ramp: Sequence[float] = RAMP
) -> list[Segment]:
    """Greedy over the source keyframes: each segment takes as many whole GOPs as fit in
    ``segment_length`` (the first ones in the ``ramp``'s lengths, so that a remux's first
    segment is ready after one GOP, not three), and at least one (a GOP longer than that makes
    a longer segment)."""
    keys = packets.keyframes
    bounds = (*keys, packets.video_end)  # chunk i runs from bounds[i] to bounds[i + 1]
    segments: list[Segment] = []
    i = 0
    while i < len(keys):
        n = len(segments)
        limit = min(ramp[n], segment_length) if n < len(ramp) else segment_length
        j = i + 1
        while j < len(keys) and bounds[j + 1] - keys[i] <= limit + 1e-6:
            j += 1
        segments.append(Segment(len(segments), keys[i], bounds[j] - keys[i], i, j))
        i = j
    if len(segments) > 1 and segments[-1].duration < MIN_LAST:
        tail, before = segments.pop(), segments.pop()
        joined = tail.end - before.start
        segments.append(
            Segment(before.index, before.start, joined, before.first_chunk, tail.end_chunk)
        )
    return segments


def _on_frame_grid(t: float, frame_rate: Fraction | None) -> Fraction:
    if frame_rate is None:
        return Fraction(t).limit_denominator(1000)
    frames = math.ceil(Fraction(t).limit_denominator(1_000_000) * frame_rate)
    return frames / frame_rate


def _measured_rates(
    segments: Sequence[Segment], packets: PacketIndex, segment_length: float
) -> tuple[float, float]:
    """Peak and average bit rate of the copied streams, the way RFC 8216 defines the peak: the
    highest rate of any run of segments lasting 0.5 to 1.5 target durations."""
    sizes = [sum(packets.chunk_bytes[s.first_chunk : s.end_chunk]) * 8 for s in segments]
    total_time = sum(s.duration for s in segments) or 1.0
    target = _target_duration(segments)
    peak = 0.0
    for a in range(len(segments)):
        bits = time = 0.0
        for b in range(a, len(segments)):
            bits += sizes[b]
            time += segments[b].duration
            if time > 1.5 * target:
                break
            if time >= 0.5 * target:
                peak = max(peak, bits / time)
    if peak == 0.0:  # shorter than half a target duration in all
        peak = sum(sizes) / total_time
    return peak, sum(sizes) / total_time


def _target_duration(segments: Sequence[Segment]) -> int:
    return max(round_half_up(s.duration) for s in segments)


def round_half_up(seconds: float) -> int:
    """RFC 8216's "rounded to the nearest integer" (Python's round() would take 6.5 to 6)."""
    return math.floor(seconds + 0.5)


def _output_frame_rate(video: StreamInfo) -> Fraction:
    """The source's rate, halved above 60 fps; 30 where the probe has none."""
    rate = video.frame_rate or Fraction(30)
    while rate > 60:
        rate /= 2
    return rate


def _audio_rate(audio: AudioOutput | None, streams: dict[int, StreamInfo]) -> int:
    if audio is None:
        return 0
    if audio.action is Action.TRANSCODE:
        return audio.bit_rate or 0
    return streams[audio.stream].bit_rate or 192_000 * max(1, audio.channels // 2)


def _extra_audio_rate(audio: AudioOutput | None, streams: dict[int, StreamInfo]) -> int:
    """Copied chunks were measured with the source's audio; an encoded track may be larger."""
    if audio is None or audio.action is Action.COPY:
        return 0
    return max(0, (audio.bit_rate or 0) - (streams[audio.stream].bit_rate or 0))


# H.264 Table A-1: level, max macroblocks per second, max frame size in macroblocks, max video bit
# rate in kbit/s for Baseline/Main (High allows 1.25x).
_H264_LEVELS = (
    (1.3, 11_880, 396, 768),
    (2.0, 11_880, 396, 2_000),
    (2.1, 19_800, 792, 4_000),
    (2.2, 20_250, 1_620, 4_000),
    (3.0, 40_500, 1_620, 10_000),
    (3.1, 108_000, 3_600, 14_000),
    (3.2, 216_000, 5_120, 20_000),
    (4.0, 245_760, 8_192, 20_000),
    (4.1, 245_760, 8_192, 50_000),
    (4.2, 522_240, 8_704, 50_000),
    (5.0, 589_824, 22_080, 135_000),
    (5.1, 983_040, 36_864, 240_000),
    (5.2, 2_073_600, 36_864, 240_000),
)


def h264_level(width: int, height: int, frame_rate: Fraction, bit_rate: int) -> float:
    """The lowest H.264 level that holds this picture size, frame rate and (High profile) rate.

    >>> h264_level(1280, 720, Fraction(30), 2_800_000), h264_level(1920, 1080, Fraction(30), 5_000_000)
    (3.1, 4.0)
    """
    frame_mbs = math.ceil(width / 16) * math.ceil(height / 16)
    for level, max_mbps, max_fs, max_kbps in _H264_LEVELS:
        if (
            frame_mbs <= max_fs
            and frame_mbs * frame_rate <= max_mbps
            and bit_rate <= max_kbps * 1250
        ):
            return level
    return 5.2


# profile_idc and constraint flags of the profile names ffprobe prints
_AVC_PROFILES = {
    "constrained baseline": (66, 0xE0),
    "baseline": (66, 0x00),
    "main": (77, 0x40),
    "extended": (88, 0x00),
    "high": (100, 0x00),
    "high 10": (110, 0x00),
    "high 4:2:2": (122, 0x00),
    "high 4:4:4 predictive": (244, 0x00),
}
_AAC_OBJECT_TYPES = {"lc": 2, "he-aac": 5, "he-aacv2": 29, "main": 1, "ltp": 4}


def avc_codec_string(profile: str, level: float) -> str:
    """RFC 6381 ``avc1.PPCCLL``.

    >>> avc_codec_string("high", 3.1), avc_codec_string("Constrained Baseline", 3.0)
    ('avc1.64001f', 'avc1.42e01e')
    """
    idc, flags = _AVC_PROFILES.get(profile.lower(), (100, 0))
    return f"avc1.{idc:02x}{flags:02x}{round(level * 10):02x}"


def _video_codec_string(
    video: VideoOutput | None, source: StreamInfo | None, level: float | None
) -> str | None:
    if video is None or source is None:
        return None
    if video.action is Action.TRANSCODE:
        return avc_codec_string(video.profile or "high", level or 4.0)
    depth = source.bit_depth or 8
    raw_level = codec_level(source.codec, source.level)
    profile = (source.profile or "").lower()
    if source.codec == "h264":
        return avc_codec_string(profile or "high", raw_level or 4.0)
    if source.codec == "hevc":
        # general_profile_idc and its compatibility flags, reversed bits (ISO/IEC 14496-15 E.3)
        idc, compat = (2, 4) if "10" in profile else (1, 6)
        return f"hvc1.{idc}.{compat}.L{source.level or 120}.B0"
    if source.codec == "av1":
        return f"av01.0.{source.level or 8:02d}M.{depth:02d}"
    if source.codec == "vp9":
        vp9_profile = 2 if depth > 8 else 0
        return f"vp09.{vp9_profile:02d}.{_vp9_level(source):02d}.{depth:02d}"
    return source.codec


def _vp9_level(source: StreamInfo) -> int:
    """ffprobe does not report VP9 levels; the level for the picture size (VP9 spec, Annex A)."""
    pixels = (source.width or 0) * (source.height or 0)
    for limit, level in ((36_864, 10), (122_880, 11), (245_760, 20), (552_960, 21),
                         (983_040, 30), (2_228_224, 31), (2_228_224, 40), (8_912_896, 50)):  # fmt: skip
        if pixels <= limit:
            return level
    return 60


def _audio_codec_string(audio: AudioOutput, source: StreamInfo) -> str:
    codec = audio.codec
    if codec == "aac":
        profile = (source.profile or "lc").lower() if audio.action is Action.COPY else "lc"
        return f"mp4a.40.{_AAC_OBJECT_TYPES.get(profile, 2)}"
    return {"mp3": "mp4a.40.34", "ac3": "ac-3", "eac3": "ec-3", "opus": "Opus", "flac": "fLaC"}.get(
        codec, codec
    )


def _subtitle_name(stream: StreamInfo, index: int) -> str:
    return stream.title or bcp47(stream.language) or f"Subtitles {index}"


_TWO_LETTER = {
    "eng": "en", "fre": "fr", "fra": "fr", "ger": "de", "deu": "de", "spa": "es", "ita": "it",
    "por": "pt", "dut": "nl", "nld": "nl", "jpn": "ja", "chi": "zh", "zho": "zh", "kor": "ko",
    "rus": "ru", "swe": "sv", "nor": "no", "dan": "da", "fin": "fi", "pol": "pl", "cze": "cs",
    "ces": "cs", "gre": "el", "ell": "el", "tur": "tr", "ara": "ar", "heb": "he", "hin": "hi",
}  # fmt: skip


def bcp47(language: str | None) -> str | None:
    """ISO 639-2 as files carry it (``fre``), as the shortest BCP 47 tag (``fr``)."""
    if not language:
        return None
    return _TWO_LETTER.get(language.lower(), language)


# --- playlists ---------------------------------------------------------------------------------

UriFor = Callable[[str], str]


def _same(name: str) -> str:
    return name


def segment_name(fmt: SegmentFormat, index: int) -> str:
    return f"{index}.{'m4s' if fmt == 'fmp4' else 'ts'}"


INIT_NAME = "init.mp4"


def _version(fmt: SegmentFormat) -> int:
    # EXT-X-MAP without I-frames-only playlists needs version 6; decimal EXTINF needs 3
    return 6 if fmt == "fmp4" else 3


def master_playlist(plan: HlsPlan, uri: UriFor = _same) -> str:
    """``uri`` turns a relative name (``720p/index.m3u8``, ``subtitles/3.m3u8``) into the URL the
    client gets; the session layer adds its prefix and signature there."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{_version(plan.segment_format)}",
             "#EXT-X-INDEPENDENT-SEGMENTS"]  # fmt: skip
    names: set[str] = set()
    for sub in plan.subtitles:
        name = sub.name
        while name in names:  # NAME must be unique within the group
            name += f" ({sub.stream})"
        names.add(name)
        attrs = [
            "TYPE=SUBTITLES",
            'GROUP-ID="subs"',
            f'NAME="{_quoted(name)}"',
            *([f'LANGUAGE="{_quoted(sub.language)}"'] if sub.language else []),
            f"DEFAULT={'YES' if sub.default else 'NO'}",
            "AUTOSELECT=YES",
            f"FORCED={'YES' if sub.forced else 'NO'}",
            f'URI="{_quoted(uri(f"subtitles/{sub.stream}.m3u8"))}"',
        ]
        lines.append("#EXT-X-MEDIA:" + ",".join(attrs))
    for v in plan.variants:
        attrs = [f"BANDWIDTH={v.bandwidth}", f"AVERAGE-BANDWIDTH={v.average_bandwidth}",
                 f'CODECS="{v.codecs}"']  # fmt: skip
        if v.video is not None:
            attrs.append(f"RESOLUTION={v.video.width}x{v.video.height}")
        if v.frame_rate is not None:
            attrs.append(f"FRAME-RATE={float(v.frame_rate):.3f}")
        if plan.subtitles:
            attrs.append('SUBTITLES="subs"')
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(uri(f"{v.name}/index.m3u8"))
    return "\n".join(lines) + "\n"


def media_playlist(plan: HlsPlan, variant: Variant, uri: UriFor = _same) -> str:
    """The whole VOD playlist of one variant; names are relative to the variant's folder."""
    fmt = plan.segment_format
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{_version(fmt)}",
        f"#EXT-X-TARGETDURATION:{variant.target_duration}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    if fmt == "fmp4":
        lines.append(f'#EXT-X-MAP:URI="{_quoted(uri(INIT_NAME))}"')
    for s in variant.segments:
        lines.append(f"#EXTINF:{s.duration:.6f},")
        lines.append(uri(segment_name(fmt, s.index)))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def subtitle_playlist(rendition: SubtitleRendition, uri: UriFor = _same) -> str:
    """One WebVTT file for the whole duration: a text track is small, and one request."""
    return "\n".join([
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{math.ceil(rendition.duration)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        f"#EXTINF:{rendition.duration:.6f},",
        uri(f"{rendition.stream}.vtt"),
        "#EXT-X-ENDLIST",
    ]) + "\n"  # fmt: skip


def _quoted(value: str) -> str:
    """A quoted-string may hold neither a double quote nor a line break (RFC 8216 4.2)."""
    return value.replace('"', "'").replace("\n", " ").replace("\r", " ")
