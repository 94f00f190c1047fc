"""HLS planning without ffmpeg: segment boundaries, codec strings, bandwidth, and the playlists
checked against RFC 8216 and the m3u8 library's strict parser."""

from __future__ import annotations

import itertools
from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revenge.modules.playback.decision import (
    Action,
    AudioSupport,
    ClientCaps,
    Method,
    Preferences,
    SubtitleMode,
    VideoSupport,
    decide,
)
from revenge.modules.playback.hls import (
    PlanError,
    avc_codec_string,
    grid_segments,
    h264_level,
    keyframe_segments,
    master_playlist,
    media_playlist,
    plan_hls,
    round_half_up,
    subtitle_playlist,
)
from revenge.modules.playback.transcoder import MediaInfo, PacketIndex, StreamInfo
from tests.unit.hls_rfc import attributes, check_master_playlist, check_media_playlist

VIDEO = StreamInfo(0, "video", "h264", 1920, 1080, profile="High", level=40, bit_depth=8,
                   frame_rate=Fraction(30000, 1001), bit_rate=8_000_000)  # fmt: skip
AUDIO = StreamInfo(1, "audio", "aac", channels=2, language="eng", default=True, bit_rate=128_000,
                   profile="LC")  # fmt: skip
AC3 = replace(AUDIO, codec="ac3", channels=6, bit_rate=448_000, profile=None)
SUBS = (
    StreamInfo(2, "subtitle", "subrip", language="eng", title="English"),
    StreamInfo(3, "subtitle", "ass", language="fre"),
    StreamInfo(4, "subtitle", "hdmv_pgs_subtitle", language="eng"),
)
MKV = MediaInfo("matroska,webm", 95.5, 8_200_000, (VIDEO, AUDIO, *SUBS))
BROWSER = ClientCaps(
    containers=frozenset({"mp4"}),
    video=(VideoSupport("h264", max_level=5.1),),
    audio=(AudioSupport("aac"),),
    segment_format="fmp4",
)


def packets(keys: list[float], end: float, rate: int = 8_000_000) -> PacketIndex:
    bounds = [*keys, end]
    sizes = [int((bounds[i + 1] - bounds[i]) * rate / 8) for i in range(len(keys))]
    return PacketIndex(tuple(keys), tuple(sizes), end)


IRREGULAR = packets([0.0, 0.5, 4.0, 4.2, 9.0, 10.0, 17.0, 18.0, 18.5, 25.0, 33.0], 35.0)


def test_grid_segments_ramp_then_regular_on_the_frame_grid() -> None:
    rate = Fraction(24000, 1001)
    segments = grid_segments(40.0, rate, 6.0)
    durations = [round(s.duration, 2) for s in segments]
    assert durations[:4] == [1.0, 2.0, 3.0, 6.01]
    for s in segments[1:]:
        frames = Fraction(s.start).limit_denominator(10**9) * rate
        assert abs(frames - round(frames)) < 1e-6, "every boundary is on a frame"
    assert segments[-1].end == 40.0
    assert [s.index for s in segments] == list(range(len(segments)))
    for a, b in itertools.pairwise(segments):
        assert a.end == pytest.approx(b.start)


def test_grid_segments_join_a_sliver_of_a_tail() -> None:
    segments = grid_segments(12.3, Fraction(30), 6.0)
    assert [round(s.duration, 3) for s in segments] == [1.0, 2.0, 3.0, 6.3]
    assert [round(s.duration, 3) for s in grid_segments(0.8, Fraction(30), 6.0)] == [0.8]


def test_keyframe_segments_take_whole_gops_up_to_the_length() -> None:
    segments = keyframe_segments(IRREGULAR, 6.0, ramp=())
    assert [(s.first_chunk, s.end_chunk) for s in segments] == [
        (0, 3), (3, 5), (5, 6), (6, 8), (8, 9), (9, 10), (10, 11),
    ]  # fmt: skip
    assert [round(s.duration, 2) for s in segments] == [4.2, 5.8, 7.0, 1.5, 6.5, 8.0, 2.0]
    assert segments[0].start == 0.0 and segments[-1].end == 35.0


def test_keyframe_segments_ramp_up_one_gop_at_a_time() -> None:
    """A remux's first segment is one GOP (ready as soon as ffmpeg has read it), the next ones
    as many as fit in 2 s and 3 s, then whole segment lengths."""
    index = packets([2.0 * k for k in range(12)], 24.0)  # 2 s GOPs
    segments = keyframe_segments(index, 6.0)
    assert [(s.first_chunk, s.end_chunk) for s in segments] == [
        (0, 1), (1, 2), (2, 3), (3, 6), (6, 9), (9, 12),
    ]  # fmt: skip
    assert [s.duration for s in segments] == [2.0, 2.0, 2.0, 6.0, 6.0, 6.0]
    assert keyframe_segments(index, 6.0, ramp=(1.0,))[1].end_chunk == 4


@given(
    st.lists(st.floats(0.04, 12.0), min_size=1, max_size=60),
    st.floats(0.04, 12.0),
    st.sampled_from([2.0, 4.0, 6.0, 10.0]),
)
def test_keyframe_segments_cover_every_chunk_once(
    gaps: list[float], tail: float, length: float
) -> None:
    keys = [0.0]
    for g in gaps:
        keys.append(keys[-1] + g)
    index = packets(keys, keys[-1] + tail)
    segments = keyframe_segments(index, length)
    assert segments[0].first_chunk == 0 and segments[-1].end_chunk == len(keys)
    for a, b in itertools.pairwise(segments):
        assert a.end_chunk == b.first_chunk and a.end == pytest.approx(b.start)
        assert a.end_chunk > a.first_chunk
    for s in segments[:-1]:
        single_gop = s.end_chunk - s.first_chunk == 1
        assert s.duration <= length + 1e-6 or single_gop, "longer only when one GOP is longer"


def test_codec_strings_and_levels() -> None:
    assert avc_codec_string("high", h264_level(1280, 720, Fraction(30), 2_800_000)) == "avc1.64001f"
    assert avc_codec_string("main", h264_level(854, 480, Fraction(30), 1_200_000)) == "avc1.4d401f"
    assert h264_level(640, 360, Fraction(30), 700_000) == 3.0
    assert h264_level(1920, 1080, Fraction(60), 5_000_000) == 4.2
    assert h264_level(3840, 2160, Fraction(30), 16_000_000) == 5.1


def test_transcode_plan_has_a_ladder_below_the_source() -> None:
    hevc = replace(VIDEO, codec="hevc", profile="Main", level=123)
    decision = decide(replace(MKV, streams=(hevc, AUDIO)), BROWSER)
    assert decision.method is Method.TRANSCODE
    plan = plan_hls(replace(MKV, streams=(hevc, AUDIO)), decision)
    assert [v.name for v in plan.variants] == ["source", "720p", "480p", "360p"]
    top, r720, r480, r360 = plan.variants
    assert (top.video and top.video.height, top.codecs) == (1080, "avc1.640028,mp4a.40.2")
    assert r720.codecs == "avc1.64001f,mp4a.40.2" and r480.codecs == "avc1.64001f,mp4a.40.2"
    assert r360.codecs == "avc1.64001e,mp4a.40.2"
    assert [v.video and (v.video.width, v.video.height) for v in plan.variants] == [
        (1920, 1080), (1280, 720), (854, 480), (640, 360),
    ]  # fmt: skip
    for v in plan.variants:
        assert v.average_bandwidth < v.bandwidth
        assert v.segments == plan.variants[0].segments, "transcoded variants cut alike"
        assert v.target_duration == 6
    rates = [v.bandwidth for v in plan.variants]
    assert rates == sorted(rates, reverse=True)
    master = check_master_playlist(master_playlist(plan))
    assert [p.uri for p in master.playlists] == [f"{v.name}/index.m3u8" for v in plan.variants]
    for v in plan.variants:
        parsed = check_media_playlist(media_playlist(plan, v))
        assert parsed.segment_map and parsed.segment_map[0].uri == "init.mp4"
        assert sum(s.duration for s in parsed.segments) == pytest.approx(95.5, abs=1e-3)


def test_remux_plan_copies_on_source_keyframes_and_measures_bandwidth() -> None:
    media = replace(MKV, duration=35.0)
    decision = decide(media, BROWSER)
    assert decision.method is Method.REMUX
    with pytest.raises(PlanError, match="keyframes"):
        plan_hls(media, decision)
    plan = plan_hls(media, decision, packets=IRREGULAR)
    top = plan.variants[0]
    assert top.copies_video and top.chunked
    assert top.codecs == "avc1.640028,mp4a.40.2"
    # the ramp (1 s, 2 s, 3 s, whole GOPs, at least one) first, then up to 6 s of GOPs
    durations = [0.5, 3.5, 0.2, 5.8, 7.0, 1.5, 6.5, 8.0, 2.0]
    assert [s.duration for s in top.segments] == pytest.approx(durations)
    assert top.target_duration == 8
    # a constant 8 Mbit/s source: peak and average are that, plus the container's bytes
    assert 8_000_000 < top.average_bandwidth <= top.bandwidth < 8_300_000
    check_media_playlist(media_playlist(plan, top))
    check_master_playlist(master_playlist(plan))


def test_copy_bandwidth_is_the_peak_of_runs_of_segments() -> None:
    keys = [float(k) for k in range(0, 60, 6)]
    burst = replace(packets(keys, 60.0, 1_000_000), chunk_bytes=(125_000 * 6,) * 4
                    + (125_000 * 6 * 5,) + (125_000 * 6,) * 5)  # fmt: skip
    plan = plan_hls(replace(MKV, duration=60.0), decide(MKV, BROWSER), packets=burst)
    top = plan.variants[0]
    assert 5_000_000 <= top.bandwidth < 5_300_000, "one 6 s segment at 5 Mbit/s is the peak"
    assert 1_400_000 <= top.average_bandwidth < 1_500_000


def test_ts_plan_and_no_ladder_above_the_cap() -> None:
    tv = replace(BROWSER, segment_format="ts", max_bitrate=2_000_000)
    decision = decide(MKV, tv)
    plan = plan_hls(MKV, decision)
    assert plan.segment_format == "ts"
    assert [v.name for v in plan.variants] == ["source", "360p"]
    for v in plan.variants:
        text = media_playlist(plan, v)
        assert "EXT-X-MAP" not in text and "0.ts" in text
        check_media_playlist(text)
    assert "#EXT-X-VERSION:3" in master_playlist(plan)


def test_subtitle_renditions_are_the_text_tracks_with_the_chosen_one_default() -> None:
    prefs = Preferences(subtitle_mode=SubtitleMode.ALWAYS, subtitle_languages=("fr",))
    plan = plan_hls(MKV, decide(MKV, BROWSER, prefs), packets=IRREGULAR)
    assert [(s.stream, s.language, s.default) for s in plan.subtitles] == [
        (2, "en", False), (3, "fr", True),
    ]  # fmt: skip
    master = master_playlist(plan, uri=lambda name: f"/p/abc/{name}?sig=x")
    check_master_playlist(master)
    media_lines = [ln for ln in master.splitlines() if ln.startswith("#EXT-X-MEDIA")]
    assert [attributes(ln)["URI"] for ln in media_lines] == [
        "/p/abc/subtitles/2.m3u8?sig=x", "/p/abc/subtitles/3.m3u8?sig=x",
    ]  # fmt: skip
    assert [attributes(ln)["NAME"] for ln in media_lines] == ["English", "fr"]
    sub = subtitle_playlist(plan.subtitles[0])
    parsed = check_media_playlist(sub.replace("2.vtt", "0.vtt"))
    assert parsed.target_duration == 96 and parsed.segments[0].duration == pytest.approx(95.5)


def test_direct_play_and_durationless_media_are_not_planned() -> None:
    mp4 = replace(MKV, container="mov,mp4,m4a,3gp,3g2,mj2")
    with pytest.raises(PlanError):
        plan_hls(mp4, decide(mp4, BROWSER))
    with pytest.raises(PlanError):
        plan_hls(replace(MKV, duration=None), decide(MKV, BROWSER), packets=IRREGULAR)


def test_audio_only_plan_cuts_on_the_grid() -> None:
    flac = MediaInfo("flac", 20.0, 900_000, (StreamInfo(0, "audio", "flac", channels=2),))
    decision = decide(flac, BROWSER)
    assert decision.audio is not None and decision.audio.action is Action.TRANSCODE
    plan = plan_hls(flac, decision)
    (only,) = plan.variants
    assert [s.duration for s in only.segments] == pytest.approx([6.0, 6.0, 6.0, 2.0])
    assert only.codecs == "mp4a.40.2" and "RESOLUTION" not in master_playlist(plan)


def test_rounding_is_half_up() -> None:
    assert [round_half_up(x) for x in (5.49, 5.5, 6.4999, 6.5)] == [5, 6, 6, 7]


def test_rungs_use_the_profile_the_client_decodes() -> None:
    main_only = replace(BROWSER, video=(VideoSupport("h264", frozenset({"main"}), 4.1),))
    hevc = replace(VIDEO, codec="hevc", profile="Main", level=123)
    media = replace(MKV, streams=(hevc, AUDIO))
    decision = decide(media, main_only)
    assert decision.encode_profile == "main"
    plan = plan_hls(media, decision)
    assert {v.video.profile for v in plan.variants if v.video} == {"main"}
    assert [v.codecs.split(",")[0] for v in plan.variants] == [
        "avc1.4d4028", "avc1.4d401f", "avc1.4d401f", "avc1.4d401e",
    ]  # fmt: skip
