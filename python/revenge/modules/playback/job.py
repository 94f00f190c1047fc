"""One ffmpeg run writing one variant's segments: started in its own process group, dying with its
parent, paused when the client is far behind, killed whole.

The session layer holds one job per playback session and asks ``wait_for_segment(n)``; a segment
before the run's start or far ahead of it is the caller's cue to start another job there (a seek).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from revenge.modules.playback.ffmpeg import (
    TIMELINE_OFFSET,
    Tuning,
    chunk_name,
    hls_args,
    init_name,
    subtitle_args,
)
from revenge.modules.playback.hls import HlsPlan, Variant, segment_name
from revenge.modules.playback.transcoder import MediaInfo
from revenge.runtime.orphans import dying_with_parent

_POLL = 0.01  # seconds between looks for the next file: a stat, far below a segment's time
# until the run's first segment is there: a player is waiting for it (start, seek), and the
# few hundred stats of that wait cost less than the 5 ms a 10 ms poll adds on average
_FIRST_POLL = 0.002


class TranscodeFailed(Exception):
    """ffmpeg exited with an error, or without writing a planned segment (code ``transcode_failed``)."""

    code = "transcode_failed"


class SegmentNotInRun(LookupError):
    """The segment is before this run's start or beyond the plan: restart elsewhere, or refuse."""

    code = "segment_not_in_run"


@dataclass(frozen=True, slots=True)
class SegmentFile:
    index: int
    path: Path
    ready_at: float  # time.monotonic() when it was complete on disk


class TranscodeJob:
    """Start with ``TranscodeJob.start``; never blocks the event loop (joins of copied chunks run in
    a thread, the rest is a stat every few milliseconds)."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        plan: HlsPlan,
        variant: Variant,
        start_segment: int,
        workdir: Path,
        argv: list[str],
        started_at: float,
        max_ahead: int | None,
    ) -> None:
        self.process = process
        self.plan, self.variant = plan, variant
        self.start_segment = start_segment
        self.workdir = workdir
        self.argv = argv
        self.started_at = started_at
        self.max_ahead = max_ahead
        self.paused = False
        self._ready: dict[int, SegmentFile] = {}
        self._next = start_segment  # the next segment to become ready
        self._read_up_to = start_segment - 1  # the client has this segment
        self._changed = asyncio.Event()
        self._failure: TranscodeFailed | None = None
        self._watcher = asyncio.create_task(self._watch(), name=f"ffmpeg-watch-{process.pid}")

    @classmethod
    async def start(
        cls,
        source: Path,
        media: MediaInfo,
        plan: HlsPlan,
        variant: Variant,
        start_segment: int,
        workdir: Path,
        *,
        ffmpeg: str = "ffmpeg",
        tuning: Tuning | None = None,
        max_ahead: int | None = None,
    ) -> TranscodeJob:
        """Start ffmpeg on ``variant`` from ``start_segment``, writing into ``workdir`` (made here).
        ``max_ahead``: pause ffmpeg while it is that many segments past what the client read."""
        argv = hls_args(
            source, media, plan, variant, start_segment, workdir, tuning or Tuning(), ffmpeg=ffmpeg
        )
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        log = await asyncio.to_thread(open, workdir / f"ffmpeg-{start_segment}.log", "wb")
        # SIGKILLed when this process dies, however it dies (even SIGKILL, which runs no
        # cleanup of ours); started with vfork (no preexec_fn): a fork of the worker cost
        # tens of ms on the way to a first segment. Linux ties the signal to the starting
        # *thread*: jobs start from the event loop's thread, which lives as long as the process.
        spawn, preexec = dying_with_parent(argv)
        started_at = time.monotonic()
        try:
            process = await asyncio.create_subprocess_exec(
                *spawn,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,  # its own process group: one killpg ends every child
                preexec_fn=preexec,
            )
        finally:
            log.close()
        return cls(process, plan, variant, start_segment, workdir, argv, started_at, max_ahead)

    # --- what the session layer calls ------------------------------------------------------

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    @property
    def init_path(self) -> Path | None:
        """The fMP4 initialization section this run writes (None for TS)."""
        if self.plan.segment_format != "fmp4":
            return None
        return self.workdir / init_name(self.start_segment)

    def segment_path(self, index: int) -> Path:
        return self.workdir / segment_name(self.plan.segment_format, index)

    def ready(self, index: int) -> SegmentFile | None:
        return self._ready.get(index)

    def covers(self, index: int) -> bool:
        """Whether this run writes ``index`` (it may not have yet)."""
        return self.start_segment <= index < len(self.variant.segments)

    @property
    def next_segment(self) -> int:
        """The first segment not yet complete; a request far past it is better served by a restart."""
        return self._next

    async def wait_for_segment(self, index: int) -> SegmentFile:
        """The segment's file once complete. Bound the wait with ``asyncio.timeout``."""
        if not self.covers(index):
            raise SegmentNotInRun(f"segment {index} is not written by this run")
        while index not in self._ready:
            if self._failure is not None:
                raise self._failure
            self._changed.clear()
            await self._changed.wait()
        return self._ready[index]

    async def discard(self, index: int) -> None:
        """Remove a segment's file once it lives elsewhere (the transcode cache): the disk holds
        only what is being written and what nobody has taken yet."""
        if index in self._ready:
            await asyncio.to_thread(self._ready[index].path.unlink, missing_ok=True)

    def mark_read(self, index: int) -> None:
        """The client has ``index``: with ``max_ahead``, ffmpeg may go on when it was held back."""
        self._read_up_to = max(self._read_up_to, index)
        self._apply_backpressure()

    def pause(self) -> None:
        if self.running and not self.paused:
            self._signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.running and self.paused:
            self._signal(signal.SIGCONT)
            self.paused = False

    async def kill(self) -> None:
        """SIGKILL the whole process group (a stopped process dies too) and reap it."""
        if self.running:
            self._signal(signal.SIGKILL)
        await self.process.wait()
        self._watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watcher
        if self._failure is None and self._next < len(self.variant.segments):
            self._failure = TranscodeFailed("the transcode was stopped")
        self._changed.set()

    async def wait(self) -> int:
        """Until ffmpeg exits and every segment it wrote is accounted for; its exit status."""
        await asyncio.wait({self._watcher})
        return self.process.returncode if self.process.returncode is not None else -1

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    # --- watching the files ----------------------------------------------------------------

    def _apply_backpressure(self) -> None:
        if self.max_ahead is None:
            return
        ahead = self._next - 1 - self._read_up_to
        if ahead >= self.max_ahead:
            self.pause()
        else:
            self.resume()

    async def _watch(self) -> None:
        total = len(self.variant.segments)
        exited = asyncio.ensure_future(self.process.wait())
        try:
            while self._next < total:
                if await self._collect():
                    continue
                if exited.done():
                    if not await self._collect():  # files renamed just before the exit
                        self._failure = await self._failure_reason()
                        break
                    continue
                first = self._next == self.start_segment
                await asyncio.wait({exited}, timeout=_FIRST_POLL if first else _POLL)
            await exited
        finally:
            if not exited.done():
                exited.cancel()
            self._changed.set()

    async def _collect(self) -> bool:
        """Take the next segment if it is complete on disk; True if one was taken."""
        index = self._next
        fmt = self.plan.segment_format
        if self.variant.chunked:
            segment = self.variant.segments[index]
            last_chunk = self.workdir / chunk_name(fmt, segment.end_chunk - 1)
            # a chunk appears once complete, in order: the last one means all of them
            if not last_chunk.exists():
                return False
            chunks = [
                self.workdir / chunk_name(fmt, c)
                for c in range(segment.first_chunk, segment.end_chunk)
            ]
            await asyncio.to_thread(_join_chunks, chunks, self.segment_path(index), fmt)
        elif not self.segment_path(index).exists():
            return False
        self._ready[index] = SegmentFile(index, self.segment_path(index), time.monotonic())
        self._next = index + 1
        self._apply_backpressure()
        self._changed.set()
        return True

    async def _failure_reason(self) -> TranscodeFailed:
        code = self.process.returncode
        log = self.workdir / f"ffmpeg-{self.start_segment}.log"
        text = await asyncio.to_thread(_tail, log)
        if code == 0:
            return TranscodeFailed(
                f"ffmpeg wrote segments {self.start_segment}..{self._next - 1} of "
                f"{len(self.variant.segments)} planned, then stopped"
            )
        if code is not None and code < 0:
            return TranscodeFailed(f"ffmpeg was killed by signal {-code}")
        return TranscodeFailed(f"ffmpeg failed (exit {code}): {text or 'no message'}")


def _join_chunks(chunks: list[Path], out: Path, fmt: str) -> None:
    """Concatenate chunk files into one segment (fMP4: the later chunks' ``styp`` boxes dropped,
    a segment has one), written under a temporary name and renamed, then the chunks removed."""
    if len(chunks) == 1:  # one GOP (the ramp's first segments): the chunk is the segment
        chunks[0].rename(out)
        return
    partial = out.with_name(out.name + ".part")
    with partial.open("wb") as sink:
        for n, chunk in enumerate(chunks):
            data = chunk.read_bytes()
            if fmt == "fmp4" and n > 0:
                data = _without_styp(data)
            sink.write(data)
    partial.rename(out)
    for chunk in chunks:
        chunk.unlink(missing_ok=True)


def _without_styp(data: bytes) -> bytes:
    """Top-level ISO BMFF boxes minus ``styp`` (a 32-bit size, then the type)."""
    out = bytearray()
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size == 1:  # 64-bit size follows the type
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif size == 0:  # to the end of the file
            size = len(data) - pos
        if size < 8:
            raise TranscodeFailed("a chunk ffmpeg wrote is not ISO BMFF")
        if data[pos + 4 : pos + 8] != b"styp":
            out += data[pos : pos + size]
        pos += size
    return bytes(out)


def _tail(path: Path, limit: int = 4096) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            lines = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


# ffmpeg's MPEG-TS muxer starts its clock this late (its default -muxdelay and -muxpreload)
TS_MUX_DELAY = 1.4


async def extract_subtitle(
    source: Path, stream: int, out: Path, segment_format: str, *, ffmpeg: str = "ffmpeg"
) -> Path:
    """A text subtitle stream as one WebVTT file, its cue times tied to the segments' timeline
    (``X-TIMESTAMP-MAP``, RFC 8216 3.5): the segments start ``TIMELINE_OFFSET`` late, TS later."""
    await asyncio.to_thread(out.parent.mkdir, parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    spawn, preexec = dying_with_parent(subtitle_args(source, stream, partial, ffmpeg=ffmpeg))
    process = await asyncio.create_subprocess_exec(
        *spawn,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=preexec,
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        reason = err.decode(errors="replace").strip().splitlines()
        raise TranscodeFailed(
            f"subtitle extraction failed: {reason[-1] if reason else process.returncode}"
        )
    start = TIMELINE_OFFSET + (TS_MUX_DELAY if segment_format == "ts" else 0.0)
    header = f"X-TIMESTAMP-MAP=MPEGTS:{round(start * 90_000)},LOCAL:00:00:00.000"
    await asyncio.to_thread(_add_timestamp_map, partial, out, header)
    return out


def _add_timestamp_map(partial: Path, out: Path, header: str) -> None:
    text = partial.read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    out.write_text(f"{first}\n{header}\n{rest}", encoding="utf-8")
    partial.unlink()
