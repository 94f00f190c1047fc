"""The ffmpeg/ffprobe client: found on PATH at first use, run as subprocesses off the event loop."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

_PROBE_TIMEOUT = 30.0


class TranscoderError(Exception):
    """ffmpeg is missing, or failed on an input; the message says which and why."""


@dataclass(frozen=True, slots=True)
class StreamInfo:
    index: int
    kind: str  # video | audio | subtitle | data
    codec: str
    width: int | None = None
    height: int | None = None
    channels: int | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class MediaInfo:
    container: str
    duration: float | None
    bit_rate: int | None
    streams: tuple[StreamInfo, ...]


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
            str(path),
        )  # fmt: skip
        return _parse_probe(orjson.loads(raw))


async def _run(*argv: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), _PROBE_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise TranscoderError(
            f"{Path(argv[0]).name} took longer than {_PROBE_TIMEOUT:g}s"
        ) from None
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
    streams = tuple(
        StreamInfo(
            index=int(s.get("index", i)),
            kind=str(s.get("codec_type", "data")),
            codec=str(s.get("codec_name", "unknown")),
            width=s.get("width"),
            height=s.get("height"),
            channels=s.get("channels"),
            language=(s.get("tags") or {}).get("language"),
        )
        for i, s in enumerate(data.get("streams", []))
    )
    return MediaInfo(
        container=str(fmt.get("format_name", "unknown")),
        duration=float(fmt["duration"]) if _numeric(fmt.get("duration")) else None,
        bit_rate=int(fmt["bit_rate"]) if _numeric(fmt.get("bit_rate"), integral=True) else None,
        streams=streams,
    )


def _numeric(value: object, *, integral: bool = False) -> bool:
    """ffprobe writes numbers as strings, and "N/A" where it has none."""
    if not isinstance(value, str | int | float):
        return False
    try:
        int(value) if integral else float(value)
    except ValueError:
        return False
    return True
