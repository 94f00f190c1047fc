"""The ffmpeg/ffprobe client: found on PATH at first use, run as subprocesses off the event loop."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson

from revenge.runtime.orphans import dying_with_parent

_PROBE_TIMEOUT = 30.0


class TranscoderError(Exception):
    """ffmpeg is missing, or failed on an input; the message says which and why."""


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One stream as ffprobe names it (codec ``h264``, profile ``High``, level ``41``...)."""

    index: int
    kind: str  # video | audio | subtitle | data
    codec: str
    width: int | None = None
    height: int | None = None
    channels: int | None = None
    language: str | None = None
    profile: str | None = None
    level: int | None = None  # ffprobe's raw level: H.264 41 = 4.1, HEVC 123 = 4.1 (x30)
    bit_depth: int | None = None
    hdr: str | None = None  # hdr10 | hlg | dolby-vision; None for SDR
    bit_rate: int | None = None
    frame_rate: Fraction | None = None
    sample_rate: int | None = None
    default: bool = False
    forced: bool = False
    cover: bool = False  # an attached picture (cover art), not something to play
    b_frames: bool = False  # decode order differs from display order (ffprobe has_b_frames)
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Chapter:
    """A chapter mark: seconds from the file's start, and its title when it has one."""

    start: float
    end: float | None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class MediaInfo:
    container: str
    duration: float | None
    bit_rate: int | None
    streams: tuple[StreamInfo, ...]
    start_time: float = 0.0
    chapters: tuple[Chapter, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    """The container's tags (``title``, ``date``...), names lower-cased, as ffprobe gives them."""

    def of_kind(self, kind: str) -> tuple[StreamInfo, ...]:
        """The playable streams of one kind, cover art left out."""
        return tuple(s for s in self.streams if s.kind == kind and not s.cover)


@dataclass(frozen=True, slots=True)
class PacketIndex:
    """Where a file's video keyframes are, and how many bytes lie between them.

    Times are seconds from the file's start (``MediaInfo.start_time``), the timeline ffmpeg's output
    uses. ``chunk_bytes[i]`` counts the packets of every stream from keyframe i to keyframe i + 1,
    the bytes ffmpeg writes for that stretch when it copies the streams.
    """

    keyframes: tuple[float, ...]
    chunk_bytes: tuple[int, ...]
    video_end: float


@dataclass(frozen=True, slots=True)
class Transcoder:
    """Paths and capabilities of the machine's ffmpeg, learned once when first needed."""

    ffmpeg: str
    ffprobe: str
    version: str
    encoders: frozenset[str]

    @classmethod
    async def discover(cls) -> Transcoder:
        ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
        if ffmpeg is None or ffprobe is None:
            raise TranscoderError(
                "ffmpeg and ffprobe must be on PATH (Debian: apt-get install ffmpeg)"
            )
        banner = await _run(ffmpeg, "-hide_banner", "-version")
        listing = await _run(ffmpeg, "-hide_banner", "-encoders")
        version = banner.split("\n", 1)[0].removeprefix("ffmpeg version ").split(" ", 1)[0]
        return cls(ffmpeg, ffprobe, version, _parse_encoders(listing))

    async def check(self) -> None:
        for path in (self.ffmpeg, self.ffprobe):
            if not os.access(path, os.X_OK):
                raise TranscoderError(f"{path} is no longer executable")

    async def probe(self, path: Path) -> MediaInfo:
        """Container, duration and streams of a media file (ffprobe)."""
        raw = await _run(
            self.ffprobe,
            "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
            "-show_chapters", str(path),
        )  # fmt: skip
        return _parse_probe(orjson.loads(raw))

    async def packets(
        self, path: Path, *, video_stream: int, start_time: float, time_limit: float = 600.0
    ) -> PacketIndex:
        """The keyframes of one video stream and the bytes between them (reads packets, decodes
        nothing: a few seconds for a feature film, so run at probe time and keep the result)."""
        raw = await _run(
            self.ffprobe,
            "-v", "error", "-show_entries", "packet=stream_index,pts_time,dts_time,duration_time,size,flags",
            "-of", "compact=p=0", str(path),
            time_limit=time_limit,
        )  # fmt: skip
        return await asyncio.to_thread(_parse_packets, raw, video_stream, start_time)


async def _run(*argv: str, time_limit: float = _PROBE_TIMEOUT) -> str:
    spawn, preexec = dying_with_parent(argv)  # killed with its worker, never left running
    process = await asyncio.create_subprocess_exec(
        *spawn,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=preexec,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), time_limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise TranscoderError(f"{Path(argv[0]).name} took longer than {time_limit:g}s") from None
    if process.returncode != 0:
        reason = err.decode(errors="replace").strip().splitlines()
        raise TranscoderError(
            f"{Path(argv[0]).name} failed: {reason[-1] if reason else f'exit {process.returncode}'}"
        )
    return out.decode(errors="replace")


def _parse_encoders(listing: str) -> frozenset[str]:
    """Encoder names from ``ffmpeg -encoders``: lines of flags, name, description after a ``--``."""
    _, _, table = listing.partition("------")
    names = (line.split()[1] for line in table.splitlines() if len(line.split()) > 1)
    return frozenset(names)


def _parse_probe(data: dict[str, Any]) -> MediaInfo:
    fmt = data.get("format", {})
    streams = tuple(_parse_stream(i, s) for i, s in enumerate(data.get("streams", [])))
    return MediaInfo(
        container=str(fmt.get("format_name", "unknown")),
        duration=float(fmt["duration"]) if _numeric(fmt.get("duration")) else None,
        bit_rate=int(fmt["bit_rate"]) if _numeric(fmt.get("bit_rate"), integral=True) else None,
        streams=streams,
        start_time=float(fmt["start_time"]) if _numeric(fmt.get("start_time")) else 0.0,
        chapters=tuple(_parse_chapters(data.get("chapters") or [])),
        tags=tuple(
            (str(k).lower(), str(v)[:1000])
            for k, v in (fmt.get("tags") or {}).items()
            if isinstance(v, str | int | float)
        ),
    )


def _parse_chapters(raw: list[Any]) -> list[Chapter]:
    chapters = []
    for c in raw:
        if not isinstance(c, dict) or not _numeric(c.get("start_time")):
            continue
        title = (c.get("tags") or {}).get("title")
        chapters.append(
            Chapter(
                float(c["start_time"]),
                float(c["end_time"]) if _numeric(c.get("end_time")) else None,
                str(title)[:500] if title else None,
            )
        )
    return chapters


# Transfer characteristics that mean HDR; ffprobe names them after their standards.
_HDR_TRANSFERS = {"smpte2084": "hdr10", "arib-std-b67": "hlg"}


def _parse_stream(position: int, s: dict[str, Any]) -> StreamInfo:
    tags = {str(k).lower(): v for k, v in (s.get("tags") or {}).items()}
    disposition = s.get("disposition") or {}
    kind = str(s.get("codec_type", "data"))
    language = tags.get("language")
    level = s.get("level")
    return StreamInfo(
        index=int(s.get("index", position)),
        kind=kind,
        codec=str(s.get("codec_name", "unknown")),
        width=s.get("width"),
        height=s.get("height"),
        channels=s.get("channels"),
        language=None if language in (None, "und") else str(language),
        profile=str(s["profile"]) if s.get("profile") not in (None, "unknown") else None,
        level=level if isinstance(level, int) and level > 0 else None,
        bit_depth=_bit_depth(s) if kind == "video" else None,
        hdr=_hdr(s) if kind == "video" else None,
        bit_rate=int(s["bit_rate"]) if _numeric(s.get("bit_rate"), integral=True) else None,
        frame_rate=_rate(s.get("avg_frame_rate")) or _rate(s.get("r_frame_rate"))
        if kind == "video"
        else None,
        sample_rate=int(s["sample_rate"])
        if _numeric(s.get("sample_rate"), integral=True)
        else None,
        default=bool(disposition.get("default")),
        forced=bool(disposition.get("forced")),
        cover=bool(disposition.get("attached_pic")),
        b_frames=bool(s.get("has_b_frames")),
        title=str(tags["title"]) if tags.get("title") else None,
    )


def _bit_depth(s: dict[str, Any]) -> int:
    """From ``bits_per_raw_sample`` where the demuxer gives it, else from the pixel format name."""
    if _numeric(s.get("bits_per_raw_sample"), integral=True):
        return int(s["bits_per_raw_sample"])
    pix_fmt = str(s.get("pix_fmt", ""))
    for depth in (16, 14, 12, 10, 9):
        if f"p{depth}" in pix_fmt:
            return depth
    return 8


def _hdr(s: dict[str, Any]) -> str | None:
    side_data = s.get("side_data_list") or []
    if any("DOVI" in str(d.get("side_data_type", "")) for d in side_data):
        return "dolby-vision"
    return _HDR_TRANSFERS.get(str(s.get("color_transfer", "")))


def _rate(value: object) -> Fraction | None:
    """``30000/1001`` -> Fraction; ffprobe writes ``0/0`` where it has none."""
    if not isinstance(value, str) or "/" not in value:
        return None
    num, _, den = value.partition("/")
    if not (num.isdigit() and den.isdigit()) or int(num) == 0 or int(den) == 0:
        return None
    return Fraction(int(num), int(den))


def _parse_packets(raw: str, video_stream: int, start_time: float) -> PacketIndex:
    """Lines of ``stream_index=0|pts_time=..|dts_time=..|duration_time=..|size=..|flags=K_``."""
    keyframes: list[float] = []
    chunk_bytes: list[int] = []
    pending = 0  # bytes of packets seen before the first keyframe, counted into the first chunk
    video_end = 0.0
    for line in raw.splitlines():
        fields = dict(part.partition("=")[::2] for part in line.split("|"))
        size = int(fields["size"]) if fields.get("size", "").isdigit() else 0
        if fields.get("stream_index") != str(video_stream):
            if chunk_bytes:
                chunk_bytes[-1] += size
            else:
                pending += size
            continue
        stamp = fields.get("pts_time", "N/A")
        if not _numeric(stamp):
            stamp = fields.get("dts_time", "N/A")
        if not _numeric(stamp):
            continue
        pts = float(stamp) - start_time
        duration = float(fields["duration_time"]) if _numeric(fields.get("duration_time")) else 0
        video_end = max(video_end, pts + duration)
        if "K" in fields.get("flags", ""):
            keyframes.append(pts)
            chunk_bytes.append(pending + size if not chunk_bytes else size)
            pending = 0
        elif chunk_bytes:
            chunk_bytes[-1] += size
        else:
            pending += size
    if not keyframes:
        raise TranscoderError("no keyframes in the video stream")
    return PacketIndex(tuple(keyframes), tuple(chunk_bytes), video_end)


def _numeric(value: object, *, integral: bool = False) -> bool:
    """ffprobe writes numbers as strings, and "N/A" where it has none."""
    if not isinstance(value, str | int | float):
        return False
    try:
        int(value) if integral else float(value)
    except ValueError:
        return False
    return True
