"""The ffmpeg command line that makes one variant's segments, from any segment on, exactly as planned.

Three things make the files match the up-front playlist (``hls.py``):

- ffmpeg's HLS muxer cuts at the first video keyframe once ``hls_time * segments so far`` has passed.
  With a ``hls_time`` far below any real keyframe spacing it cuts at *every* keyframe, so the cuts are
  exactly the keyframes: the ones we force when encoding (``-force_key_frames`` at the planned
  boundaries, and no other keyframes: no scene cuts, no GOP limit), or the source's own when copying
  (one chunk per keyframe, joined into segments by the runner). A restart cuts the same way.
- A restart at segment N seeks the input to N's start (``-ss`` before ``-i``: a keyframe when
  copying; a decode-and-drop seek when encoding), numbers files from N (``-start_number``) and puts
  the output back on the original timeline (``-output_ts_offset``).
- Output frames are at a constant rate (``-fps_mode cfr``), so the planned frame-grid boundaries are
  frames.

>>> from fractions import Fraction
>>> keyframe_times([0.0, 1.0, 3.0, 6.0], start=1)
'2.000000,5.000000'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from revenge.modules.playback.decision import Action
from revenge.modules.playback.hls import (
    INIT_NAME,
    VBV_SECONDS,
    HlsPlan,
    Variant,
    segment_name,
)
from revenge.modules.playback.transcoder import MediaInfo

# Below any real keyframe spacing (1 ms): the muxer then cuts at every keyframe it sees.
CUT_AT_EVERY_KEYFRAME = "0.001"
# Every run's output starts this late on the timeline. Then no timestamp is ever negative (B-frame
# reordering, encoder priming), so no muxer shifts a run's timestamps to make them positive: shifts
# that differ between the first run and a restart would misplace the restart's segments.
TIMELINE_OFFSET = 1.0
# A copy restart seeks this far past the keyframe: seeking exactly to a printed pts (rounded to the
# microsecond) may land just before the keyframe and so on the one before it; 2 us is well under
# half a tick of the usual time bases (1/1000, 1/12800, 1/90000), so the keyframe keeps its time.
_COPY_SEEK_EPSILON = 0.000002


@dataclass(frozen=True, slots=True)
class Tuning:
    """Encoder settings, chosen by measurement (benches/bench_playback_start.py)."""

    preset: str = "veryfast"
    x264_params: str = ""  # extra -x264-params, e.g. "rc-lookahead=10"
    threads: int = 0  # 0: ffmpeg decides
    scale_flags: str = "bicubic"
    # MP4 and Matroska describe their streams in headers, and ffprobe has already read them: ffmpeg
    # need not read megabytes of packets to learn them again (halves a remux's start). Others (TS,
    # AVI) are probed in full: their streams show up only in the packets.
    fast_probe: bool = True
    # Input read at most this many times real time (``-readrate``); None: as fast as it goes.
    # A copy writes at disk speed (a whole film in seconds): the session layer sets this from
    # the source's bit rate so that the bytes ffmpeg writes before it can be paused stay
    # within the disk budget (benches/bench_playback.py measures the start it costs).
    read_rate: float | None = None


def chunk_name(fmt: str, index: int) -> str:
    """What ffmpeg writes when copying: one file per source keyframe, joined into segments."""
    return f"c{index}.{'m4s' if fmt == 'fmp4' else 'ts'}"


def init_name(start_segment: int) -> str:
    """The first run writes the playlist's init file; a restart writes its own beside it and the
    playlist keeps pointing at the first (the same codec setup, so either serves)."""
    return INIT_NAME if start_segment == 0 else f"init-{start_segment}.mp4"


def hls_args(
    source: Path,
    media: MediaInfo,
    plan: HlsPlan,
    variant: Variant,
    start_segment: int,
    workdir: Path,
    tuning: Tuning = Tuning(),
    *,
    ffmpeg: str = "ffmpeg",
) -> list[str]:
    """The whole argv for one run writing ``variant``'s segments from ``start_segment`` on."""
    if not 0 <= start_segment < len(variant.segments):
        raise ValueError(f"segment {start_segment} is not in the plan")
    fmt = plan.segment_format
    first = variant.segments[start_segment]
    video, audio = variant.video, variant.audio
    argv = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if tuning.fast_probe and {"mov", "matroska"} & set(media.container.split(",")):
        argv += ["-probesize", "500000", "-analyzeduration", "0"]
    seek = 0.0
    if start_segment > 0:
        seek = first.start
        if variant.chunked:
            seek += _COPY_SEEK_EPSILON + _dts_heuristic(media, video.stream if video else None)
        argv += ["-ss", f"{seek:.6f}"]
    if tuning.read_rate:
        argv += ["-readrate", f"{tuning.read_rate:g}"]
    argv += ["-i", str(source)]
    if video is not None and video.action is Action.TRANSCODE:
        argv += _video_encode(variant, start_segment, tuning)
    elif video is not None:
        argv += ["-map", f"0:{video.stream}", "-c:v", "copy"]
        if video.codec == "hevc" and fmt == "fmp4":
            argv += ["-tag:v", "hvc1"]  # Apple players take HEVC only in hvc1 sample entries
    if audio is not None:
        argv += ["-map", f"0:{audio.stream}"]
        if audio.action is Action.COPY:
            argv += ["-c:a", "copy"]
        else:
            argv += ["-c:a", "aac" if audio.codec == "aac" else "libmp3lame",
                     "-b:a", str(audio.bit_rate or 128_000), "-ac", str(audio.channels)]  # fmt: skip
    argv += ["-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1"]
    # the input's clock starts at the -ss point: put the output back where the first run has it
    argv += ["-output_ts_offset", f"{TIMELINE_OFFSET + seek:.6f}"]
    if variant.chunked:
        numbering, pattern = first.first_chunk, chunk_name(fmt, 0).replace("0", "%d", 1)
    else:
        numbering, pattern = start_segment, segment_name(fmt, 0).replace("0", "%d", 1)
    argv += [
        "-f", "hls",
        "-hls_time", CUT_AT_EVERY_KEYFRAME if video is not None else f"{plan.segment_length:g}",
        "-hls_list_size", "1",  # ffmpeg's own playlist is unused; keep it from growing
        "-hls_flags", "temp_file",  # a segment's name appears only once the file is complete
        "-hls_segment_type", "fmp4" if fmt == "fmp4" else "mpegts",
        "-start_number", str(numbering),
        "-hls_segment_filename", str(workdir / pattern),
    ]  # fmt: skip
    if fmt == "fmp4":
        argv += ["-hls_fmp4_init_filename", init_name(start_segment)]
        # fragments carry their own decode times (tfdt) instead of times from the run's start,
        # so a restart's segments sit where the playlist says
        argv += ["-hls_segment_options", "movflags=+frag_discont"]
    argv.append(str(workdir / "ffmpeg.m3u8"))
    return argv


def _dts_heuristic(media: MediaInfo, video_stream: int | None) -> float:
    """ffmpeg moves an input seek 3/23 s earlier when the video has B-frames and the demuxer does
    not seek by presentation time (all but MP4/MOV): a seek to a keyframe would land on the one
    before. Aiming that much later lands on the keyframe."""
    streams = {s.index: s for s in media.streams}
    video = streams.get(video_stream) if video_stream is not None else None
    if video is None or not video.b_frames or "mov" in media.container.split(","):
        return 0.0
    return 3 / 23


def _video_encode(variant: Variant, start_segment: int, tuning: Tuning) -> list[str]:
    video = variant.video
    assert video is not None
    rate = variant.frame_rate
    bit_rate = video.bit_rate or 2_000_000
    scale = f"scale={video.width}:{video.height}:flags={tuning.scale_flags},format=yuv420p"
    if video.burn_subtitle is not None:
        graph = f"[0:{video.stream}][0:{video.burn_subtitle}]overlay=eof_action=pass,{scale}[v]"
        argv = ["-filter_complex", graph, "-map", "[v]"]
    else:
        argv = ["-map", f"0:{video.stream}", "-vf", scale]
    starts = [s.start for s in variant.segments]
    x264 = ["scenecut=0", *(p for p in tuning.x264_params.split(":") if p)]
    argv += [
        "-c:v", "libx264", "-preset", tuning.preset,
        "-profile:v", video.profile or "high", "-level:v", f"{variant.h264_level or 4.0:.1f}",
        "-b:v", str(bit_rate), "-maxrate", str(bit_rate),
        "-bufsize", str(math.ceil(bit_rate * VBV_SECONDS)),
        # keyframes where we force them and nowhere else
        "-g", "100000", "-keyint_min", "1", "-sc_threshold", "0", "-forced-idr", "1",
        "-x264-params", ":".join(x264),
        "-force_key_frames", keyframe_times(starts, start_segment) or "0",
    ]  # fmt: skip
    if rate is not None:
        argv += ["-r", f"{rate.numerator}/{rate.denominator}", "-fps_mode", "cfr"]
    if tuning.threads:
        argv += ["-threads", str(tuning.threads)]
    return argv


def keyframe_times(starts: list[float], start: int) -> str:
    """Segment starts after ``start``, on the run's own clock (it begins at ``starts[start]``):
    ``-force_key_frames`` compares them with the encoder's timestamps, before ``-output_ts_offset``."""
    origin = starts[start]
    return ",".join(f"{t - origin:.6f}" for t in starts[start + 1 :])


def subtitle_args(source: Path, stream: int, out: Path, *, ffmpeg: str = "ffmpeg") -> list[str]:
    """A text subtitle stream as one WebVTT file (the rendition of the master playlist)."""
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
        "-map", f"0:{stream}", "-c:s", "webvtt", "-f", "webvtt", str(out),
    ]  # fmt: skip
