"""The playback decision as a table: one row per rule, each naming the method and reasons it expects."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from revenge.modules.playback.decision import (
    Action,
    AudioSupport,
    ClientCaps,
    Decision,
    Method,
    NoPlayableFormat,
    Preferences,
    Reason,
    SubtitleDelivery,
    SubtitleMode,
    VideoSupport,
    decide,
)
from revenge.modules.playback.transcoder import MediaInfo, StreamInfo

H264 = StreamInfo(
    0,
    "video",
    "h264",
    1920,
    1080,
    profile="High",
    level=41,
    bit_depth=8,
    bit_rate=6_000_000,
    default=True,
)
HEVC_HDR = StreamInfo(
    0,
    "video",
    "hevc",
    3840,
    2160,
    profile="Main 10",
    level=153,
    bit_depth=10,
    hdr="hdr10",
    bit_rate=20_000_000,
)
AAC = StreamInfo(1, "audio", "aac", channels=2, language="eng", default=True, bit_rate=128_000)
AC3_51 = StreamInfo(1, "audio", "ac3", channels=6, language="eng", default=True, bit_rate=448_000)
SRT_EN = StreamInfo(5, "subtitle", "subrip", language="eng")
SRT_FR = StreamInfo(6, "subtitle", "subrip", language="fre")
FORCED_EN = StreamInfo(7, "subtitle", "subrip", language="eng", forced=True)
PGS_EN = StreamInfo(8, "subtitle", "hdmv_pgs_subtitle", language="eng")


def media(
    *streams: StreamInfo,
    container: str = "mov,mp4,m4a,3gp,3g2,mj2",
    bit_rate: int | None = 6_200_000,
) -> MediaInfo:
    return MediaInfo(container, 600.0, bit_rate, streams)


BROWSER = ClientCaps(
    containers=frozenset({"mp4", "webm"}),
    video=(
        VideoSupport("h264", frozenset({"high", "main", "constrained baseline"}), 5.1),
        VideoSupport("vp9"),
        VideoSupport("av1", max_bit_depth=10),
    ),
    audio=(AudioSupport("aac", 2), AudioSupport("opus", 2), AudioSupport("mp3")),
    segment_format="fmp4",
    subtitles=frozenset({"vtt"}),
)
TV = ClientCaps(
    containers=frozenset({"mp4", "mkv", "ts"}),
    video=(
        VideoSupport("h264", max_level=5.2),
        VideoSupport("hevc", frozenset({"main", "main 10"}), 5.1, 10, frozenset({"hdr10", "hlg"})),
    ),
    audio=(AudioSupport("aac", 6), AudioSupport("ac3", 6), AudioSupport("eac3", 8)),
    segment_format="ts",
    subtitles=frozenset({"vtt", "srt", "pgs"}),
)


@dataclass(frozen=True)
class Row:
    name: str
    media: MediaInfo
    client: ClientCaps
    prefs: Preferences = field(default_factory=Preferences)
    method: Method = Method.DIRECT
    reasons: tuple[Reason, ...] = ()
    video: Action | None = Action.COPY
    audio: Action | None = Action.COPY
    check: dict[str, Any] = field(default_factory=dict)


R = Reason
ROWS = [
    Row("mp4 h264 aac in a browser plays directly", media(H264, AAC), BROWSER),
    Row(
        "mkv to a browser is remuxed",
        media(H264, AAC, container="matroska,webm"),
        BROWSER,
        method=Method.REMUX,
        reasons=(R.CONTAINER,),
    ),
    Row(
        "mkv to a TV that takes mkv plays directly",
        media(H264, AC3_51, container="matroska,webm"),
        TV,
    ),
    Row(
        "webm vp9 opus in a browser plays directly",
        media(
            replace(H264, codec="vp9", profile="Profile 0", level=None),
            replace(AAC, codec="opus"),
            container="matroska,webm",
        ),
        BROWSER,
        check={"container": "webm"},
    ),
    Row(
        "hevc to a browser is transcoded to h264",
        media(replace(HEVC_HDR, bit_depth=8, hdr=None, width=1920, height=1080, level=123), AAC),
        BROWSER,
        method=Method.TRANSCODE,
        reasons=(R.VIDEO_CODEC,),
        video=Action.TRANSCODE,
        check={"video.codec": "h264", "video.height": 1080},
    ),
    Row(
        "h264 profile the client lacks",
        media(replace(H264, profile="High 4:4:4 Predictive"), AAC),
        BROWSER,
        method=Method.TRANSCODE,
        reasons=(R.VIDEO_PROFILE,),
        video=Action.TRANSCODE,
    ),
    Row(
        "h264 level above the client's",
        media(replace(H264, level=52), AAC),
        BROWSER,
        method=Method.TRANSCODE,
        reasons=(R.VIDEO_LEVEL,),
        video=Action.TRANSCODE,
    ),
    Row(
        "hevc level compared in its x30 numbering", media(replace(HEVC_HDR, level=150), AC3_51), TV
    ),
    Row(
        "10-bit h264 to an 8-bit decoder",
        media(replace(H264, profile="High 10", bit_depth=10), AAC),
        replace(BROWSER, video=(VideoSupport("h264", max_level=5.1),)),
        method=Method.TRANSCODE,
        reasons=(R.VIDEO_BIT_DEPTH,),
        video=Action.TRANSCODE,
        check={"video.profile": "high"},
    ),
    Row(
        "HDR10 hevc to an SDR hevc TV",
        media(HEVC_HDR, AC3_51),
        replace(
            TV, video=(VideoSupport("h264"), VideoSupport("hevc", max_level=5.1, max_bit_depth=10))
        ),
        method=Method.TRANSCODE,
        reasons=(R.VIDEO_HDR,),
        video=Action.TRANSCODE,
    ),
    Row("HDR10 hevc to an HDR TV plays directly", media(HEVC_HDR, AC3_51), TV),
    Row(
        "dolby vision to an HDR10-only TV",
        media(replace(HEVC_HDR, hdr="dolby-vision"), AC3_51),
        TV,
        method=Method.TRANSCODE,
        reasons=(R.VIDEO_HDR,),
        video=Action.TRANSCODE,
    ),
    Row(
        "4k to a 1080p client is scaled down",
        media(replace(H264, width=3840, height=2160, level=51), AAC),
        replace(BROWSER, max_width=1920, max_height=1080),
        method=Method.TRANSCODE,
        reasons=(R.VIDEO_RESOLUTION,),
        video=Action.TRANSCODE,
        check={"video.width": 1920, "video.height": 1080},
    ),
    Row(
        "bit rate over the client's cap",
        media(H264, AAC),
        replace(BROWSER, max_bitrate=3_000_000),
        method=Method.TRANSCODE,
        reasons=(R.BITRATE,),
        video=Action.TRANSCODE,
        check={"video.height": 720, "max_bitrate": 3_000_000},
    ),
    Row(
        "bit rate over the user's cap, the lower one wins",
        media(H264, AAC),
        replace(BROWSER, max_bitrate=20_000_000),
        Preferences(max_bitrate=1_500_000),
        method=Method.TRANSCODE,
        reasons=(R.BITRATE,),
        video=Action.TRANSCODE,
        check={"video.height": 480, "max_bitrate": 1_500_000, "video.bit_rate": 1_200_000},
    ),
    Row(
        "bit rate under the cap plays directly",
        media(H264, AAC),
        replace(BROWSER, max_bitrate=10_000_000),
    ),
    Row(
        "ac3 to a browser: audio-only transcode",
        media(H264, AC3_51),
        BROWSER,
        method=Method.TRANSCODE,
        reasons=(R.AUDIO_CODEC,),
        audio=Action.TRANSCODE,
        check={"audio.codec": "aac", "audio.channels": 2, "audio.bit_rate": 128_000},
    ),
    Row(
        "5.1 aac to a stereo-only client",
        media(H264, replace(AAC, channels=6)),
        BROWSER,
        method=Method.TRANSCODE,
        reasons=(R.AUDIO_CHANNELS,),
        audio=Action.TRANSCODE,
        check={"audio.channels": 2},
    ),
    Row(
        "5.1 dts to a 5.1 TV keeps six channels",
        media(H264, replace(AC3_51, codec="dts")),
        TV,
        method=Method.TRANSCODE,
        reasons=(R.AUDIO_CODEC,),
        audio=Action.TRANSCODE,
        check={"audio.codec": "aac", "audio.channels": 6, "audio.bit_rate": 384_000},
    ),
    Row(
        "both streams unsupported",
        media(replace(H264, codec="mpeg4", profile=None), AC3_51),
        BROWSER,
        method=Method.TRANSCODE,
        reasons=(R.VIDEO_CODEC, R.AUDIO_CODEC),
        video=Action.TRANSCODE,
        audio=Action.TRANSCODE,
    ),
    Row(
        "the second audio track in the user's language: remux",
        media(H264, AAC, replace(AAC, index=2, language="fre", default=False)),
        BROWSER,
        Preferences(audio_languages=("fr",)),
        method=Method.REMUX,
        reasons=(R.AUDIO_TRACK,),
        check={"audio.stream": 2},
    ),
    Row(
        "the player's explicit audio choice",
        media(H264, AAC, replace(AAC, index=2, language="ger", default=False)),
        BROWSER,
        Preferences(audio_stream=2),
        method=Method.REMUX,
        reasons=(R.AUDIO_TRACK,),
        check={"audio.stream": 2},
    ),
    Row(
        "the preferred language is already the default track",
        media(H264, AAC, replace(AAC, index=2, language="fre", default=False)),
        BROWSER,
        Preferences(audio_languages=("en",)),
        check={"audio.stream": 1},
    ),
    Row(
        "no track in the preferred language: the default",
        media(
            H264, replace(AAC, default=False), replace(AAC, index=2, language="jpn", default=True)
        ),
        BROWSER,
        Preferences(audio_languages=("de",)),
        check={"audio.stream": 2},
    ),
    Row(
        "vp9 copied into TS is impossible: transcode",
        media(
            replace(H264, codec="vp9", profile="Profile 0", level=None),
            replace(AAC, codec="opus"),
            container="matroska,webm",
        ),
        replace(BROWSER, containers=frozenset({"mp4"}), segment_format="ts"),
        method=Method.TRANSCODE,
        reasons=(R.CONTAINER, R.SEGMENT_FORMAT),
        video=Action.TRANSCODE,
        audio=Action.TRANSCODE,
    ),
    Row(
        "opus copies into fMP4",
        media(H264, replace(AAC, codec="opus"), container="matroska,webm"),
        BROWSER,
        method=Method.REMUX,
        reasons=(R.CONTAINER,),
    ),
    Row(
        "text subtitle to a browser: a WebVTT rendition, still direct",
        media(H264, AAC, SRT_EN),
        BROWSER,
        Preferences(subtitle_mode=SubtitleMode.ALWAYS, subtitle_languages=("en",)),
        check={"subtitle": (5, SubtitleDelivery.WEBVTT)},
    ),
    Row(
        "text subtitle a TV reads from the file",
        media(H264, AC3_51, SRT_EN, container="matroska,webm"),
        TV,
        Preferences(subtitle_mode=SubtitleMode.ALWAYS),
        check={"subtitle": (5, SubtitleDelivery.EMBEDDED)},
    ),
    Row(
        "subtitles off shows none, but offers every text track",
        media(H264, AAC, SRT_EN, SRT_FR),
        BROWSER,
        Preferences(subtitle_mode=SubtitleMode.OFF),
        check={"subtitle": None, "offered": (5, 6)},
    ),
    Row(
        "subtitle language preference",
        media(H264, AAC, SRT_EN, SRT_FR),
        BROWSER,
        Preferences(subtitle_mode=SubtitleMode.ALWAYS, subtitle_languages=("fr", "en")),
        check={"subtitle": (6, SubtitleDelivery.WEBVTT)},
    ),
    Row(
        "forced mode picks the forced track in the audio's language",
        media(H264, AAC, SRT_EN, FORCED_EN),
        BROWSER,
        Preferences(subtitle_mode=SubtitleMode.FORCED),
        check={"subtitle": (7, SubtitleDelivery.WEBVTT)},
    ),
    Row(
        "forced mode with no forced track shows none",
        media(H264, AAC, SRT_EN),
        BROWSER,
        Preferences(subtitle_mode=SubtitleMode.FORCED),
        check={"subtitle": None},
    ),
    Row(
        "image subtitle not burned unless asked",
        media(H264, AAC, PGS_EN),
        BROWSER,
        Preferences(subtitle_mode=SubtitleMode.ALWAYS, subtitle_languages=("en",)),
        check={"subtitle": None, "offered": ()},
    ),
    Row(
        "image subtitle burned in when asked",
        media(H264, AAC, PGS_EN),
        BROWSER,
        Preferences(
            subtitle_mode=SubtitleMode.ALWAYS,
            subtitle_languages=("en",),
            burn_in_image_subtitles=True,
        ),
        method=Method.TRANSCODE,
        reasons=(R.SUBTITLE_BURN_IN,),
        video=Action.TRANSCODE,
        check={"subtitle": (8, SubtitleDelivery.BURN_IN), "video.burn_subtitle": 8},
    ),
    Row(
        "burn-in asked but subtitles off: nothing burned",
        media(H264, AAC, PGS_EN),
        BROWSER,
        Preferences(subtitle_mode=SubtitleMode.OFF, burn_in_image_subtitles=True),
    ),
    Row(
        "image subtitle a TV draws itself from the file",
        media(H264, AC3_51, PGS_EN, container="matroska,webm"),
        TV,
        Preferences(subtitle_mode=SubtitleMode.ALWAYS),
        check={"subtitle": (8, SubtitleDelivery.EMBEDDED)},
    ),
    Row(
        "image subtitle of a remuxed file is not offered",
        media(H264, AAC, PGS_EN, container="matroska,webm"),
        replace(TV, containers=frozenset({"mp4"})),
        Preferences(subtitle_mode=SubtitleMode.ALWAYS),
        method=Method.REMUX,
        reasons=(R.CONTAINER,),
        check={"subtitle": None, "container": "ts"},
    ),
    Row(
        "music: audio only plays directly",
        media(replace(AAC, index=0), bit_rate=128_000),
        BROWSER,
        video=None,
    ),
    Row(
        "cover art is not a video stream",
        media(
            replace(AAC, index=0),
            StreamInfo(1, "video", "mjpeg", 600, 600, cover=True),
            bit_rate=128_000,
        ),
        BROWSER,
        video=None,
    ),
    Row(
        "flac to a browser without flac",
        media(replace(AAC, index=0, codec="flac"), container="flac", bit_rate=900_000),
        BROWSER,
        method=Method.TRANSCODE,
        reasons=(R.CONTAINER, R.AUDIO_CODEC),
        video=None,
        audio=Action.TRANSCODE,
    ),
    Row(
        "an 8-bit SDR hevc in mp4 to a TV",
        media(replace(HEVC_HDR, bit_depth=8, hdr=None, profile="Main", level=120), AC3_51),
        TV,
    ),
]


def _get(decision: Decision, path: str) -> Any:
    value: Any = decision
    for part in path.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_decision_table(row: Row) -> None:
    d = decide(row.media, row.client, row.prefs)
    assert d.method is row.method
    assert d.reasons == row.reasons
    assert (d.video.action if d.video else None) is row.video
    assert (d.audio.action if d.audio else None) is row.audio
    for key, expected in row.check.items():
        if key == "subtitle":
            chosen = d.selected_subtitle
            assert (None if chosen is None else (chosen.stream, chosen.delivery)) == expected
        elif key == "offered":
            assert tuple(s.stream for s in d.subtitles) == expected
        else:
            assert _get(d, key) == expected, key
    if d.method is Method.DIRECT:
        assert d.reasons == ()
    else:
        assert d.reasons, "every remux or transcode says why"
        assert d.container == row.client.segment_format


def test_table_covers_every_reason() -> None:
    seen = {reason for row in ROWS for reason in row.reasons}
    assert seen == set(Reason)


def test_a_transcode_fits_the_client_even_when_the_cap_is_tiny() -> None:
    d = decide(media(H264, AAC), replace(BROWSER, max_bitrate=200_000))
    assert d.video is not None and d.video.height == 240 and d.video.bit_rate == 400_000


def test_a_client_without_h264_cannot_get_a_transcode() -> None:
    with pytest.raises(NoPlayableFormat):
        decide(
            media(replace(H264, codec="mpeg4"), AAC), replace(BROWSER, video=(VideoSupport("vp9"),))
        )


def test_a_client_without_aac_or_mp3_cannot_get_audio() -> None:
    with pytest.raises(NoPlayableFormat):
        decide(media(H264, AC3_51), replace(BROWSER, audio=(AudioSupport("opus"),)))


def test_a_file_with_nothing_to_play_is_refused() -> None:
    with pytest.raises(NoPlayableFormat):
        decide(media(SRT_EN), BROWSER)
