"""Fast start of playback: ffmpeg start to the first segment complete on disk.

    python benches/playback_start.py                 # 3 runs each, a 60 s 1080p30 H.264 + AAC clip
    python benches/playback_start.py --runs 5 --tunings all

Measures, median of ``--runs`` (the machine is shared: read the numbers as noisy):
- transcode 1080p H.264 -> 720p and 480p, first segment (the 1 s ramp segment) and the second;
- the same from a seek (a restart half-way: decode-and-drop from the keyframe before; its first
  segment is a regular one, not the 1 s of the ramp);
- remux (copy into fMP4), first segment;
- the same-run baseline, before and after: plain ffmpeg encoding 6 s of 480p to nothing, and
  ffmpeg start-up alone; the "1st / base" column divides by it, which takes out part of the load.
Each ``--tunings`` entry is a ``Tuning`` (preset, x264 parameters, input probe); the default run
compares the shipped one with a lower-latency one.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from revenge.modules.playback.decision import (
    AudioSupport,
    ClientCaps,
    VideoSupport,
    decide,
)
from revenge.modules.playback.ffmpeg import Tuning
from revenge.modules.playback.hls import HlsPlan, plan_hls
from revenge.modules.playback.job import TranscodeJob
from revenge.modules.playback.transcoder import MediaInfo, Transcoder

TUNINGS = {
    "veryfast": Tuning(),
    "veryfast-lowlat": Tuning(x264_params="rc-lookahead=5:sync-lookahead=0"),
    "superfast": Tuning(preset="superfast"),
    "ultrafast": Tuning(preset="ultrafast"),
    "veryfast-fullprobe": Tuning(fast_probe=False),
}


def make_clip(folder: Path, seconds: int) -> Path:
    path = folder / "hd.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-c:a", "aac", "-ac", "2",
         "-b:v", "8M", str(path)],
        check=True,
    )  # fmt: skip
    return path


async def first_segments(
    source: Path, media: MediaInfo, plan: HlsPlan, variant: str, start: int, workdir: Path,
    tuning: Tuning,
) -> tuple[float, float]:  # fmt: skip
    """Seconds from the call that starts ffmpeg to the first and second segments complete."""
    t0 = time.monotonic()  # the clock of SegmentFile.ready_at
    job = await TranscodeJob.start(
        source, media, plan, plan.variant(variant), start, workdir, tuning=tuning
    )
    try:
        first = (await job.wait_for_segment(start)).ready_at
        second = (await job.wait_for_segment(start + 1)).ready_at
    finally:
        await job.kill()
    return first - t0, second - t0


async def median(runs: int, measure: Callable[[int], Awaitable[tuple[float, ...]]]) -> list[float]:
    samples = [await measure(i) for i in range(runs)]
    return [statistics.median(column) for column in zip(*samples, strict=True)]


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - t0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=60, help="length of the generated clip")
    parser.add_argument("--segment-length", type=float, default=6.0)
    parser.add_argument("--tunings", default="veryfast,veryfast-lowlat",
                        help=f"comma list of {', '.join(TUNINGS)} or 'all'")  # fmt: skip
    args = parser.parse_args()
    names = list(TUNINGS) if args.tunings == "all" else args.tunings.split(",")
    with tempfile.TemporaryDirectory(prefix="revenge-bench-playback-") as tmp:
        folder = Path(tmp)
        source = make_clip(folder, args.seconds)
        transcoder = await Transcoder.discover()
        t0 = time.perf_counter()
        media = await transcoder.probe(source)
        probe_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        packets = await transcoder.packets(source, video_stream=0, start_time=media.start_time)
        packets_s = time.perf_counter() - t0
        caps = ClientCaps(frozenset(), (VideoSupport("h264", max_level=5.2),),
                          (AudioSupport("aac"),), segment_format="fmp4")  # fmt: skip
        plan = plan_hls(media, decide(media, caps), args.segment_length, packets)
        seek_to = len(plan.variant("480p").segments) // 2
        print(f"ffmpeg {transcoder.version}; clip {args.seconds} s 1080p30 H.264 8 Mbit/s + AAC; "
              f"segments {args.segment_length:g} s; median of {args.runs} runs; "
              "shared 2-core machine: noisy")  # fmt: skip
        encode_argv = ["ffmpeg", "-v", "error", "-i", str(source), "-t", "6", "-vf", "scale=-2:480",
                       "-c:v", "libx264", "-preset", "veryfast", "-an", "-f", "null", "-"]  # fmt: skip
        startup_argv = ["ffmpeg", "-v", "error", "-i", str(source), "-frames:v", "1", "-f", "null",
                        "-"]  # fmt: skip
        baseline = statistics.median(timed(encode_argv) for _ in range(args.runs))
        startup = statistics.median(timed(startup_argv) for _ in range(args.runs))
        print(f"{'what':52} {'1st segment':>12} {'2nd segment':>12} {'1st / base':>10}")
        print(f"{'ffprobe (stored at scan time in the full system)':52} {probe_s * 1e3:9.0f} ms")
        print(f"{'packet scan for copy (also stored)':52} {packets_s * 1e3:9.0f} ms")
        n = 0

        async def job_run(variant: str, start: int, tuning: Tuning) -> list[float]:
            async def one(_: int) -> tuple[float, float]:
                nonlocal n
                n += 1
                return await first_segments(
                    source, media, plan, variant, start, folder / f"w{n}", tuning
                )

            return await median(args.runs, one)

        for name in names:
            tuning = TUNINGS[name]
            for variant in ("720p", "480p"):
                for start, label in ((0, "start"), (seek_to, f"seek to segment {seek_to}")):
                    first, second = await job_run(variant, start, tuning)
                    at = plan.variant(variant).segments[start].start
                    what = f"transcode -> {variant} {label} ({at:.0f} s) [{name}]"
                    print(f"{what:52} {first * 1e3:9.0f} ms {second * 1e3:9.0f} ms "
                          f"{first / baseline:10.2f}")  # fmt: skip
        for name in ("veryfast", "veryfast-fullprobe"):
            first, second = await job_run("source", 0, TUNINGS[name])
            what = f"remux (copy into fMP4) start [{name}]"
            print(f"{what:52} {first * 1e3:9.0f} ms {second * 1e3:9.0f} ms "
                  f"{first / startup:10.2f} (of start-up)")  # fmt: skip
        after = statistics.median(timed(encode_argv) for _ in range(args.runs))
        after_startup = statistics.median(timed(startup_argv) for _ in range(args.runs))
        print(f"{'base: ffmpeg encodes 6 s of 480p (veryfast), before/after':52} "
              f"{baseline * 1e3:9.0f} ms {after * 1e3:9.0f} ms")  # fmt: skip
        print(f"{'start-up: ffmpeg decodes 1 frame, before/after':52} "
              f"{startup * 1e3:9.0f} ms {after_startup * 1e3:9.0f} ms")  # fmt: skip
        print("'1st / base': the first segment in units of the same run's baseline; the issue's "
              "quiet baseline is about 660 ms")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
