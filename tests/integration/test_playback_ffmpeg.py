"""HLS with the machine's real ffmpeg: the files ffmpeg writes are exactly the up-front playlist, a
restart at segment N lines up with the first run, and the process group is paused and killed whole.

The clips are made here with ffmpeg (``testsrc2``, ``sine``)."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import psutil
import pytest

from revenge.modules.playback.decision import (
    AudioSupport,
    ClientCaps,
    Method,
    Preferences,
    SubtitleMode,
    VideoSupport,
    decide,
)
from revenge.modules.playback.ffmpeg import TIMELINE_OFFSET
from revenge.modules.playback.hls import (
    HlsPlan,
    Variant,
    master_playlist,
    media_playlist,
    plan_hls,
    subtitle_playlist,
)
from revenge.modules.playback.job import (
    TS_MUX_DELAY,
    SegmentNotInRun,
    TranscodeFailed,
    TranscodeJob,
    extract_subtitle,
)
from revenge.modules.playback.transcoder import MediaInfo, Transcoder
from tests.unit.hls_rfc import check_master_playlist, check_media_playlist

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed"),
]

TOLERANCE = 0.05  # seconds between a planned and a produced segment boundary


def browser(fmt: str) -> ClientCaps:
    return ClientCaps(
        containers=frozenset(),  # never direct: these tests are about HLS
        video=(VideoSupport("h264", max_level=5.2),),
        audio=(AudioSupport("aac"),),
        segment_format="ts" if fmt == "ts" else "fmp4",
    )


def make(path: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def hd_clip(media_dir: Path) -> Path:
    """30 s of 1080p30 H.264 (keyframes every 2 s) with stereo AAC, in MP4."""
    return make(
        media_dir / "hd.mp4",
        "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=30",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-c:a", "aac", "-ac", "2",
    )  # fmt: skip


@pytest.fixture(scope="module")
def irregular_clip(media_dir: Path) -> Path:
    """30 s of 640x360 at 25 fps whose keyframes come at irregular times (0.4 s to 7 s apart)."""
    keys = "0,0.4,1.6,2.0,5.2,9.8,10.0,13.5,17,21.4,22,29"
    return make(
        media_dir / "irregular.mkv",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=30",
        "-f", "lavfi", "-i", "sine=frequency=330:duration=30",
        "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2",
        "-x264-params", "keyint=1000:min-keyint=1:scenecut=0", "-force_key_frames", keys,
        "-c:a", "aac",
    )  # fmt: skip


@pytest.fixture(scope="module")
def subtitled_clip(media_dir: Path) -> Path:
    srt = media_dir / "subs.srt"
    srt.write_text(
        "1\n00:00:01,000 --> 00:00:02,500\nHello <i>there</i>\n\n"
        "2\n00:00:05,000 --> 00:00:07,000\nSecond line\n",
        encoding="utf-8",
    )
    return make(
        media_dir / "subtitled.mkv",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=10",
        "-f", "lavfi", "-i", "sine=duration=10", "-i", str(srt),
        "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast",
        "-c:a", "aac", "-c:s", "srt", "-metadata:s:s:0", "language=eng",
    )  # fmt: skip


@dataclass(frozen=True)
class Prepared:
    source: Path
    media: MediaInfo
    plan: HlsPlan


async def prepare(source: Path, fmt: str, prefs: Preferences | None = None) -> Prepared:
    transcoder = await Transcoder.discover()
    media = await transcoder.probe(source)
    decision = decide(media, browser(fmt), prefs or Preferences())
    assert decision.method is Method.REMUX
    video = media.of_kind("video")[0]
    packets = await transcoder.packets(
        source, video_stream=video.index, start_time=media.start_time
    )
    return Prepared(source, media, plan_hls(media, decision, 6.0, packets))


async def run(p: Prepared, variant: Variant, start: int, workdir: Path) -> TranscodeJob:
    job = await TranscodeJob.start(p.source, p.media, p.plan, variant, start, workdir)
    async with asyncio.timeout(240):
        assert await job.wait() == 0, (workdir / f"ffmpeg-{start}.log").read_text()
        for n in range(start, len(variant.segments)):
            assert (await job.wait_for_segment(n)).path == job.segment_path(n)
    return job


@dataclass(frozen=True)
class Produced:
    first_pts: float
    end_pts: float
    starts_on_keyframe: bool
    profile: str | None
    level: int | None
    size: int


def probe_segment(
    job: TranscodeJob, n: int, init: Path | None, scratch: Path, select: str = "v:0"
) -> Produced:
    """ffprobe one segment as a player gets it: the fMP4 init section, then the segment."""
    path = job.segment_path(n)
    data = path.read_bytes()
    if init is not None:
        path = scratch / f"probe-{n}.mp4"
        path.write_bytes(init.read_bytes() + data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", select, "-show_packets", "-show_streams",
         "-print_format", "json", str(path)],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    info = orjson.loads(out)
    packets = info["packets"]
    pts = [float(p["pts_time"]) for p in packets]
    ends = [float(p["pts_time"]) + float(p.get("duration_time", 0)) for p in packets]
    stream = info["streams"][0]
    return Produced(
        min(pts),
        max(ends),
        "K" in packets[0]["flags"] and float(packets[0]["pts_time"]) == min(pts),
        stream.get("profile"),
        stream.get("level"),
        len(data),
    )


def check_matches_plan(
    plan: HlsPlan, variant: Variant, job: TranscodeJob, init: Path | None, scratch: Path,
    origin: float,
) -> list[Produced]:  # fmt: skip
    """Every planned segment from the run's start exists under its name, starts on a keyframe at
    its planned time, and lasts its EXTINF; no other segment file exists."""
    planned = variant.segments[job.start_segment :]
    ext = ".m4s" if plan.segment_format == "fmp4" else ".ts"
    on_disk = sorted(p.name for p in job.workdir.iterdir() if p.name.endswith(ext))
    assert on_disk == sorted(f"{s.index}{ext}" for s in planned), "exactly the planned files"
    produced = [probe_segment(job, s.index, init, scratch) for s in planned]
    for seg, got in zip(planned, produced, strict=True):
        assert got.starts_on_keyframe, f"segment {seg.index} starts on a keyframe"
        assert got.first_pts - origin == pytest.approx(seg.start, abs=TOLERANCE), seg.index
    for (seg, got), nxt in zip(
        zip(planned, produced, strict=True), [*produced[1:], None], strict=True
    ):
        end = nxt.first_pts if nxt is not None else got.end_pts
        assert end - got.first_pts == pytest.approx(seg.duration, abs=TOLERANCE), seg.index
    return produced


def decode_playlist(
    folder: Path, text: str, source_duration: float, *, splice_errors: int = 0
) -> None:
    """ffmpeg reads the playlist on disk, decodes every frame with no error, and finds the
    source's duration (within 0.5 s). ``splice_errors``: TS continuity-counter breaks allowed."""
    playlist = folder / "index.m3u8"
    playlist.write_text(text)
    result = subprocess.run(
        ["ffmpeg", "-v", "error", *(() if splice_errors else ("-xerror",)), "-i", str(playlist),
         "-f", "null", "-"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    errors = result.stderr.strip().splitlines()
    assert result.returncode == 0, result.stderr
    assert len(errors) <= splice_errors, result.stderr
    assert all("corrupt input packet" in line for line in errors), result.stderr
    duration = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(playlist)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert float(duration) == pytest.approx(source_duration, abs=0.5)


def rfc_peak(variant: Variant, produced: list[Produced]) -> float:
    """RFC 8216 4.3.4.2: the highest bit rate of a run of segments lasting 0.5 to 1.5 target
    durations."""
    target, peak = variant.target_duration, 0.0
    segments = variant.segments
    for a in range(len(segments)):
        bits = time_ = 0.0
        for b in range(a, len(segments)):
            bits, time_ = bits + produced[b].size * 8, time_ + segments[b].duration
            if time_ > 1.5 * target:
                break
            if time_ >= 0.5 * target:
                peak = max(peak, bits / time_)
    return peak


def origin_of(fmt: str) -> float:
    return TIMELINE_OFFSET + (TS_MUX_DELAY if fmt == "ts" else 0.0)


@pytest.mark.parametrize("fmt", ["fmp4", "ts"])
async def test_transcode_matches_the_playlist_and_restarts_line_up(
    hd_clip: Path, tmp_path: Path, fmt: str
) -> None:
    p = await prepare(hd_clip, fmt)
    assert [v.name for v in p.plan.variants] == ["source", "720p", "480p", "360p"]
    variant = p.plan.variant("360p")
    durations = [s.duration for s in variant.segments]
    assert durations == pytest.approx([1, 2, 3, 6, 6, 6, 6]), "the ramp, then 6 s"
    check_master_playlist(master_playlist(p.plan))
    text = media_playlist(p.plan, variant)
    check_media_playlist(text)

    full = await run(p, variant, 0, tmp_path / "full")
    init = full.init_path
    assert (init is not None) == (fmt == "fmp4")
    produced = check_matches_plan(p.plan, variant, full, init, tmp_path, origin_of(fmt))
    assert {(g.profile, g.level) for g in produced} == {("High", 30)}, "CODECS avc1.64001e"
    assert variant.codecs.startswith("avc1.64001e")
    assert rfc_peak(variant, produced) <= variant.bandwidth, "BANDWIDTH is an upper bound"
    assert p.media.duration is not None
    decode_playlist(full.workdir, text, p.media.duration)

    restart = await run(p, variant, 4, tmp_path / "restart")
    if init is not None:
        assert restart.init_path is not None and restart.init_path.name == "init-4.mp4"
        assert restart.init_path.read_bytes() == init.read_bytes(), "one init serves every run"
    again = check_matches_plan(p.plan, variant, restart, init, tmp_path, origin_of(fmt))
    for before, after in zip(produced[4:], again, strict=True):
        assert after.first_pts == pytest.approx(before.first_pts, abs=0.001)
    # the player's view: the first run's segments, then the restart's, under the first init
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for n in range(len(variant.segments)):
        source_run = full if n < 4 else restart
        shutil.copy(source_run.segment_path(n), mixed)
    if init is not None:
        shutil.copy(init, mixed)
    # TS: a new run's continuity counters start again at 0, which ffmpeg's demuxer reports once
    # at the splice (players that seek flush anyway); fMP4 has no counters and splices cleanly
    decode_playlist(mixed, text, p.media.duration, splice_errors=2 if fmt == "ts" else 0)


@pytest.mark.parametrize("fmt", ["fmp4", "ts"])
async def test_remux_cuts_on_source_keyframes_and_restarts_line_up(
    irregular_clip: Path, tmp_path: Path, fmt: str
) -> None:
    p = await prepare(irregular_clip, fmt)
    source = p.plan.variants[0]
    assert source.copies_video and source.chunked
    assert len({round(s.duration, 1) for s in source.segments}) > 3, "irregular segments"
    text = media_playlist(p.plan, source)
    check_media_playlist(text)
    full = await run(p, source, 0, tmp_path / "full")
    assert not list(full.workdir.glob("c*")), "chunks are joined into segments and removed"
    produced = check_matches_plan(p.plan, source, full, full.init_path, tmp_path, origin_of(fmt))
    assert rfc_peak(source, produced) <= source.bandwidth
    assert p.media.duration is not None
    decode_playlist(full.workdir, text, p.media.duration)
    for start in (1, len(source.segments) - 2):
        restart = await run(p, source, start, tmp_path / f"restart-{start}")
        again = check_matches_plan(
            p.plan, source, restart, full.init_path, tmp_path, origin_of(fmt)
        )
        for before, after in zip(produced[start:], again, strict=True):
            assert after.first_pts == pytest.approx(before.first_pts, abs=0.001)


async def test_remux_of_an_mp4_restarts_on_its_keyframes(hd_clip: Path, tmp_path: Path) -> None:
    """MP4's time base (1/15360) is not the microsecond ffprobe prints: the seek still lands on
    the segment's own keyframe, not the one before."""
    p = await prepare(hd_clip, "ts")
    source = p.plan.variants[0]
    # one 2 s GOP each for the ramp (1 s, 2 s, 3 s at most), then 3 GOPs
    assert [round(s.duration, 3) for s in source.segments] == [2.0] * 3 + [6.0] * 4
    full = await run(p, source, 0, tmp_path / "full")
    produced = check_matches_plan(p.plan, source, full, None, tmp_path, origin_of("ts"))
    restart = await run(p, source, 3, tmp_path / "restart")
    again = check_matches_plan(p.plan, source, restart, None, tmp_path, origin_of("ts"))
    assert again[0].first_pts == pytest.approx(produced[3].first_pts, abs=0.001)


async def test_subtitles_become_a_webvtt_rendition(subtitled_clip: Path, tmp_path: Path) -> None:
    prefs = Preferences(subtitle_mode=SubtitleMode.ALWAYS, subtitle_languages=("en",))
    p = await prepare(subtitled_clip, "ts", prefs)
    (rendition,) = p.plan.subtitles
    assert (rendition.language, rendition.default) == ("en", True)
    check_master_playlist(master_playlist(p.plan))
    check_media_playlist(subtitle_playlist(rendition).replace(f"{rendition.stream}.vtt", "0.vtt"))
    vtt = await extract_subtitle(
        p.source, rendition.stream, tmp_path / f"{rendition.stream}.vtt", "ts"
    )
    lines = vtt.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "WEBVTT"
    assert lines[1] == f"X-TIMESTAMP-MAP=MPEGTS:{round(origin_of('ts') * 90000)},LOCAL:00:00:00.000"
    cues = [ln.split(" --> ")[0] for ln in lines if " --> " in ln]
    assert "Second line" in lines
    # cue times are the source's own subtitle times (the timeline the segments carry too)
    source_times = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "s:0", "-show_entries", "packet=pts_time",
         "-of", "csv=p=0", str(subtitled_clip)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert [_seconds(c) for c in cues] == pytest.approx([float(t) for t in source_times])
    assert _seconds(cues[0]) == pytest.approx(1.0, abs=0.05)
    # the segments really start where the map says: the first video packet of segment 0
    full = await run(p, p.plan.variants[0], 0, tmp_path / "run")
    first = probe_segment(full, 0, None, tmp_path)
    assert first.first_pts == pytest.approx(origin_of("ts"), abs=TOLERANCE)


def _seconds(stamp: str) -> float:
    """WebVTT ``mm:ss.ttt`` or ``hh:mm:ss.ttt``."""
    parts = [float(x) for x in stamp.split(":")]
    return sum(x * 60**i for i, x in enumerate(reversed(parts)))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def _slow_transcode(hd_clip: Path, workdir: Path, **kwargs: int) -> TranscodeJob:
    p = await prepare(hd_clip, "fmp4")
    variant = p.plan.variant("720p")
    return await TranscodeJob.start(p.source, p.media, p.plan, variant, 0, workdir, **kwargs)


async def test_kill_ends_the_process_group_and_fails_waiters(hd_clip: Path, tmp_path: Path) -> None:
    job = await _slow_transcode(hd_clip, tmp_path / "w")
    async with asyncio.timeout(120):
        await job.wait_for_segment(0)
    waiter = asyncio.create_task(job.wait_for_segment(len(job.variant.segments) - 1))
    await job.kill()
    assert not _group_alive(job.pid)
    with pytest.raises(TranscodeFailed):
        await waiter
    with pytest.raises(SegmentNotInRun):
        await job.wait_for_segment(len(job.variant.segments))


async def test_backpressure_pauses_and_resumes_ffmpeg(hd_clip: Path, tmp_path: Path) -> None:
    job = await _slow_transcode(hd_clip, tmp_path / "w", max_ahead=2)
    try:
        async with asyncio.timeout(120):
            await job.wait_for_segment(1)
            while not job.paused:  # segment 1 is ready, and the client has read none
                await asyncio.sleep(0.01)
        process = psutil.Process(job.pid)
        async with asyncio.timeout(5):  # the signal is taken when the kernel next schedules it
            while process.status() != psutil.STATUS_STOPPED:
                await asyncio.sleep(0.01)
        files = sorted(job.workdir.iterdir())
        await asyncio.sleep(0.5)
        assert sorted(job.workdir.iterdir()) == files, "a stopped ffmpeg writes nothing"
        for n in itertools.count():
            if n >= len(job.variant.segments):
                break
            async with asyncio.timeout(120):
                segment = await job.wait_for_segment(n)
            job.mark_read(n)
            await job.discard(n)
            assert not segment.path.exists()
            on_disk = [p for p in job.workdir.iterdir() if p.name.endswith((".m4s", ".tmp"))]
            # held back: max_ahead unread segments, the one being written, and one that may
            # complete between two looks of the watcher
            assert len(on_disk) <= 2 + 2
        assert await job.wait() == 0 and not job.paused
    finally:
        await job.kill()


async def test_ffmpeg_dies_with_the_process_that_started_it(hd_clip: Path, tmp_path: Path) -> None:
    """SIGKILL the parent in the middle of a transcode (no cleanup of ours can run): the kernel's
    parent-death signal takes ffmpeg with it."""
    pid_file = tmp_path / "ffmpeg.pid"
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        sys.path[:0] = {[str(Path(__file__).resolve().parents[2]), *sys.path]!r}
        from tests.integration.test_playback_ffmpeg import _slow_transcode

        async def main():
            job = await _slow_transcode(Path({str(hd_clip)!r}), Path({str(tmp_path / "w")!r}))
            Path({str(pid_file)!r}).write_text(str(job.pid))
            await asyncio.sleep(3600)

        asyncio.run(main())
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and parent.poll() is None
            await asyncio.sleep(0.05)
        ffmpeg_pid = int(pid_file.read_text())
        # setpriv arms the parent-death signal, then becomes ffmpeg (same pid)
        while psutil.Process(ffmpeg_pid).name() != "ffmpeg":
            assert time.monotonic() < deadline, psutil.Process(ffmpeg_pid).name()
            await asyncio.sleep(0.01)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 2
        while psutil.pid_exists(ffmpeg_pid) and psutil.Process(ffmpeg_pid).status() != "zombie":
            assert time.monotonic() < deadline, "ffmpeg outlived its parent by 2 s"
            await asyncio.sleep(0.05)
    finally:
        parent.kill()


async def test_a_corrupt_source_is_a_clear_failure(hd_clip: Path, tmp_path: Path) -> None:
    p = await prepare(hd_clip, "fmp4")
    broken = tmp_path / "broken.mp4"
    data = hd_clip.read_bytes()
    broken.write_bytes(data[: len(data) // 3])  # the moov box is at the end: nothing to read
    job = await TranscodeJob.start(
        broken, p.media, p.plan, p.plan.variant("360p"), 0, tmp_path / "w"
    )
    async with asyncio.timeout(60):
        with pytest.raises(TranscodeFailed, match="ffmpeg failed"):
            await job.wait_for_segment(0)
    assert await job.wait() != 0


async def test_packets_find_the_irregular_keyframes(irregular_clip: Path) -> None:
    transcoder = await Transcoder.discover()
    media = await transcoder.probe(irregular_clip)
    index = await transcoder.packets(irregular_clip, video_stream=0, start_time=media.start_time)
    forced = [0, 0.4, 1.6, 2.0, 5.2, 9.8, 10.0, 13.5, 17, 21.4, 22, 29]
    assert len(index.keyframes) >= len(forced) - 1
    assert list(index.keyframes) == sorted(index.keyframes) and index.keyframes[0] < 0.1
    assert index.video_end == pytest.approx(30.0, abs=0.1)
    assert sum(index.chunk_bytes) == pytest.approx(irregular_clip.stat().st_size, rel=0.05)


async def test_audio_only_transcode_cuts_on_the_time_grid(media_dir: Path, tmp_path: Path) -> None:
    """Music: FLAC to a client without FLAC is AAC in HLS; with no video, ffmpeg cuts by time."""
    flac = make(
        media_dir / "song.flac", "-f", "lavfi", "-i", "sine=frequency=500:sample_rate=44100:duration=20"
    )  # fmt: skip
    transcoder = await Transcoder.discover()
    media = await transcoder.probe(flac)
    decision = decide(media, browser("fmp4"))
    assert decision.method is Method.TRANSCODE and decision.video is None
    plan = plan_hls(media, decision, 6.0)
    (variant,) = plan.variants
    assert [round(s.duration, 2) for s in variant.segments] == [6.0, 6.0, 6.0, 2.0]
    check_media_playlist(media_playlist(plan, variant))
    p = Prepared(flac, media, plan)
    for start in (0, 2):
        job = await run(p, variant, start, tmp_path / f"run-{start}")
        names = sorted(f.name for f in job.workdir.iterdir() if f.name.endswith(".m4s"))
        assert names == [f"{n}.m4s" for n in range(start, 4)]
        assert job.init_path is not None
        for seg in variant.segments[start:]:
            got = probe_segment(job, seg.index, job.init_path, tmp_path, select="a:0")
            assert got.first_pts - origin_of("fmp4") == pytest.approx(seg.start, abs=TOLERANCE)
            assert got.end_pts - got.first_pts == pytest.approx(seg.duration, abs=TOLERANCE)
        if start == 0:
            decode_playlist(job.workdir, media_playlist(plan, variant), 20.0)
