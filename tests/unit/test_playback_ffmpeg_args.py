"""The ffmpeg command line for a run, and the fMP4 chunk join, without running ffmpeg (the
integration tests run it: tests/integration/test_playback_ffmpeg.py)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from revenge.modules.playback.decision import AudioSupport, ClientCaps, VideoSupport, decide
from revenge.modules.playback.ffmpeg import TIMELINE_OFFSET, Tuning, hls_args
from revenge.modules.playback.hls import plan_hls
from revenge.modules.playback.job import _without_styp
from revenge.modules.playback.transcoder import MediaInfo, PacketIndex, StreamInfo

VIDEO = StreamInfo(0, "video", "h264", 1920, 1080, profile="High", level=40,
                   frame_rate=Fraction(30), bit_rate=8_000_000)  # fmt: skip
AUDIO = StreamInfo(1, "audio", "aac", channels=2, default=True, bit_rate=128_000)
MEDIA = MediaInfo("matroska,webm", 40.0, 8_200_000, (VIDEO, AUDIO))
PACKETS = PacketIndex((0.0, 5.0, 10.0, 16.0, 22.0, 30.0), (1000,) * 6, 40.0)
CAPS = ClientCaps(frozenset(), (VideoSupport("h264"),), (AudioSupport("aac"),))
WORK = Path("/w")


def value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_first_transcode_run_forces_keyframes_at_every_boundary() -> None:
    plan = plan_hls(MEDIA, decide(MEDIA, CAPS), 6.0, PACKETS)
    variant = plan.variant("720p")
    argv = hls_args(Path("/m/a.mkv"), MEDIA, plan, variant, 0, WORK)
    assert "-ss" not in argv
    assert value(argv, "-force_key_frames") == ",".join(
        f"{s.start:.6f}" for s in variant.segments[1:]
    )
    assert value(argv, "-start_number") == "0"
    assert value(argv, "-output_ts_offset") == f"{TIMELINE_OFFSET:.6f}"
    assert value(argv, "-hls_time") == "0.001"
    assert value(argv, "-hls_segment_filename") == "/w/%d.m4s"
    assert value(argv, "-hls_fmp4_init_filename") == "init.mp4"
    assert value(argv, "-level:v") == "3.1" and value(argv, "-maxrate") == "2800000"
    assert "scale=1280:720" in value(argv, "-vf")
    assert value(argv, "-r") == "30/1" and value(argv, "-sc_threshold") == "0"


def test_a_restart_seeks_numbers_and_shifts_back_onto_the_timeline() -> None:
    plan = plan_hls(MEDIA, decide(MEDIA, CAPS), 6.0, PACKETS)
    variant = plan.variant("480p")
    start = variant.segments[4]
    argv = hls_args(Path("/m/a.mkv"), MEDIA, plan, variant, 4, WORK)
    assert argv.index("-ss") < argv.index("-i"), "an input seek"
    assert value(argv, "-ss") == f"{start.start:.6f}"
    assert value(argv, "-start_number") == "4"
    assert value(argv, "-output_ts_offset") == f"{TIMELINE_OFFSET + start.start:.6f}"
    times = [float(t) for t in value(argv, "-force_key_frames").split(",")]
    assert times == pytest.approx([s.start - start.start for s in variant.segments[5:]])
    assert value(argv, "-hls_fmp4_init_filename") == "init-4.mp4", "the first init stays"


def test_a_copy_writes_one_chunk_per_keyframe_from_the_segment_s_first() -> None:
    plan = plan_hls(MEDIA, decide(MEDIA, replace(CAPS, segment_format="ts")), 6.0, PACKETS)
    source = plan.variants[0]
    assert [(s.first_chunk, s.end_chunk) for s in source.segments] == [
        (0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6),
    ]  # fmt: skip
    argv = hls_args(Path("/m/a.mkv"), MEDIA, plan, source, 3, WORK)
    assert value(argv, "-c:v") == "copy" and value(argv, "-c:a") == "copy"
    assert float(value(argv, "-ss")) == pytest.approx(16.0, abs=1e-5)
    assert float(value(argv, "-ss")) > 16.0, "just past the keyframe, never before it"
    assert value(argv, "-start_number") == "3"
    assert value(argv, "-hls_segment_filename") == "/w/c%d.ts"
    assert "-hls_fmp4_init_filename" not in argv and "-force_key_frames" not in argv


def test_hevc_copied_into_fmp4_is_tagged_hvc1() -> None:
    hevc = replace(VIDEO, codec="hevc", profile="Main", level=120)
    media = replace(MEDIA, streams=(hevc, AUDIO))
    caps = replace(CAPS, video=(VideoSupport("h264"), VideoSupport("hevc", max_level=5.1)))
    plan = plan_hls(media, decide(media, caps), 6.0, PACKETS)
    assert plan.variants[0].codecs == "hvc1.1.6.L120.B0,mp4a.40.2"
    argv = hls_args(Path("/m/a.mkv"), media, plan, plan.variants[0], 0, WORK)
    assert value(argv, "-tag:v") == "hvc1"


def test_a_segment_outside_the_plan_is_refused() -> None:
    plan = plan_hls(MEDIA, decide(MEDIA, CAPS), 6.0, PACKETS)
    with pytest.raises(ValueError, match="not in the plan"):
        hls_args(Path("/m/a.mkv"), MEDIA, plan, plan.variants[0], 99, WORK)


def box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def test_joined_chunks_keep_one_styp() -> None:
    chunk = box(b"styp", b"msdh") + box(b"moof", b"x" * 10) + box(b"mdat", b"y" * 20)
    assert _without_styp(chunk) == box(b"moof", b"x" * 10) + box(b"mdat", b"y" * 20)
    large = (1).to_bytes(4, "big") + b"mdat" + (24).to_bytes(8, "big") + b"z" * 8
    assert _without_styp(box(b"styp", b"") + large) == large


@pytest.mark.parametrize(
    ("container", "b_frames", "extra"),
    [("matroska,webm", True, 3 / 23), ("matroska,webm", False, 0.0),
     ("mov,mp4,m4a,3gp,3g2,mj2", True, 0.0), ("mpegts", True, 3 / 23)],
)  # fmt: skip
def test_a_copy_restart_undoes_ffmpeg_s_b_frame_seek_heuristic(
    container: str, b_frames: bool, extra: float
) -> None:
    media = replace(MEDIA, container=container, streams=(replace(VIDEO, b_frames=b_frames), AUDIO))
    plan = plan_hls(media, decide(media, replace(CAPS, segment_format="ts")), 6.0, PACKETS)
    argv = hls_args(Path("/m/a"), media, plan, plan.variants[0], 3, WORK)
    seek = float(value(argv, "-ss"))
    assert seek == pytest.approx(16.0 + extra, abs=1e-5)
    assert float(value(argv, "-output_ts_offset")) == pytest.approx(TIMELINE_OFFSET + seek)


def test_tuning_reaches_the_command_line() -> None:
    plan = plan_hls(MEDIA, decide(MEDIA, CAPS), 6.0, PACKETS)
    variant = plan.variant("480p")
    plain = hls_args(Path("/m/a.mkv"), MEDIA, plan, variant, 0, WORK)
    assert plain.index("-probesize") < plain.index("-i"), "Matroska: a short probe"
    assert value(plain, "-preset") == "veryfast"
    tuned = hls_args(Path("/m/a.mkv"), MEDIA, plan, variant, 0, WORK,
                     Tuning(preset="superfast", x264_params="rc-lookahead=5", fast_probe=False))  # fmt: skip
    assert "-probesize" not in tuned
    assert value(tuned, "-preset") == "superfast"
    assert value(tuned, "-x264-params") == "scenecut=0:rc-lookahead=5"
    ts = replace(MEDIA, container="mpegts")
    assert "-probesize" not in hls_args(Path("/m/a.ts"), ts, plan, variant, 0, WORK)
