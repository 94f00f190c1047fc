"""The session layer's pure parts: URL signatures, the bandwidth monitor, the stored request and
probe round trips, content types."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from revenge.modules.playback.decision import Method, decide
from revenge.modules.playback.repository import (
    media_from_json,
    media_to_json,
    packets_from_json,
    packets_to_json,
)
from revenge.modules.playback.routes import NewSessionBody
from revenge.modules.playback.sessions import (
    EXTERNAL_SUBTITLE_BASE,
    Bandwidth,
    caps_from_request,
    content_type,
    direct_content_type,
    with_external_subtitles,
)
from revenge.modules.playback.signing import UrlSigner
from revenge.modules.playback.transcoder import MediaInfo, PacketIndex, StreamInfo

KEY = b"0123456789abcdef0123456789abcdef"
NOW = 1_800_000_000


def signed(signer: UrlSigner, session: str = "s", user: int = 1, item: int = 2) -> tuple[str, str]:
    query = signer.query(session, user_id=user, item_id=item, expires=NOW + 60)
    exp, sig = (part.split("=", 1)[1] for part in query.split("&"))
    return exp, sig


def test_a_signature_opens_its_own_session_item_and_user_only() -> None:
    signer = UrlSigner(KEY)
    exp, sig = signed(signer)
    assert signer.check("s", 1, 2, exp, sig, now=NOW) == "ok"
    assert signer.check("t", 1, 2, exp, sig, now=NOW) == "invalid"
    assert signer.check("s", 9, 2, exp, sig, now=NOW) == "invalid"
    assert signer.check("s", 1, 3, exp, sig, now=NOW) == "invalid"
    assert signer.check("s", 1, 2, str(int(exp) + 1), sig, now=NOW) == "invalid"
    assert UrlSigner(KEY[::-1]).check("s", 1, 2, exp, sig, now=NOW) == "invalid"
    assert signer.check("s", 1, 2, exp, sig, now=NOW + 61) == "expired"


@pytest.mark.parametrize(
    ("exp", "sig"),
    [
        ("", "x"),
        ("-1", "x"),
        ("1e9", "x"),
        ("9" * 13, "x"),
        ("\uff11\uff12", "x"),
        ("12", "é"),
        ("12", "a" * 65),
    ],
)
def test_malformed_signatures_are_invalid_never_errors(exp: str, sig: str) -> None:
    assert UrlSigner(KEY).check("s", 1, 2, exp, sig, now=NOW) == "invalid"


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        UrlSigner(b"short")


def test_bandwidth_is_smoothed_per_second_and_forgets_gaps() -> None:
    bw = Bandwidth()
    assert bw.bytes_per_second == 0
    bw.add(500_000, now=0.0)
    bw.add(500_000, now=0.5)  # same window
    bw.add(2_000_000, now=1.0)  # closes the first: 1 MB in 1 s
    assert bw.bytes_per_second == 1_000_000
    bw.add(0, now=2.0)  # 2 MB in 1 s, smoothed
    assert bw.bytes_per_second == round(0.3 * 2_000_000 + 0.7 * 1_000_000)
    bw.add(10, now=100.0)  # after a long gap a new window starts; the estimate stays
    assert bw.bytes_per_second == round(0.3 * 2_000_000 + 0.7 * 1_000_000)


MOVIE = MediaInfo(
    "matroska,webm",
    60.0,
    4_000_000,
    (
        StreamInfo(0, "video", "h264", 1920, 1080, profile="High", level=41, bit_depth=8,
                   frame_rate=Fraction(24000, 1001), b_frames=True),
        StreamInfo(1, "audio", "aac", channels=6, language="eng", default=True),
        StreamInfo(2, "subtitle", "subrip", language="fre", forced=True, title="Forced"),
    ),
    start_time=0.007,
)  # fmt: skip


def test_the_probe_and_keyframes_round_trip_through_json() -> None:
    assert media_from_json(media_to_json(MOVIE)) == MOVIE
    packets = PacketIndex((0.0, 2.002, 4.5), (100, 200, 300), 6.0)
    assert packets_from_json(packets_to_json(packets)) == packets


def test_the_stored_request_gives_the_same_decision_as_the_body() -> None:
    body = NewSessionBody.model_validate(
        {
            "item_id": 1,
            "capabilities": {
                "containers": ["MP4"],
                "video": [{"codec": "H264", "profiles": ["High"], "max_level": 4.1}],
                "audio": [{"codec": "aac", "max_channels": 2}],
                "max_height": 720,
                "segment_format": "ts",
            },
            "subtitle_mode": "always",
            "subtitle_languages": ["fr"],
        }
    )
    raw = body.model_dump(mode="json", exclude={"item_id", "file_id", "start_position_ms"})
    client, prefs = caps_from_request(raw)
    assert client.containers == {"mp4"} and client.video[0].profiles == {"high"}
    assert client.segment_format == "ts" and client.max_height == 720
    decision = decide(MOVIE, client, prefs)
    assert decision.method is Method.TRANSCODE
    assert decision.video is not None and decision.video.height == 720
    assert decision.audio is not None and decision.audio.channels == 2
    assert decision.selected_subtitle is not None and decision.selected_subtitle.stream == 2


def test_content_types() -> None:
    assert content_type("index.m3u8") == "application/vnd.apple.mpegurl"
    assert content_type("3.ts") == "video/mp2t"
    assert content_type("3.m4s") == content_type("init.mp4") == "video/mp4"
    assert content_type("2.vtt").startswith("text/vtt")
    assert direct_content_type(MOVIE) == "video/x-matroska"
    mp4 = MediaInfo("mov,mp4,m4a,3gp,3g2,mj2", 1.0, None, ())
    assert direct_content_type(mp4) == "video/mp4"
    vp9 = MediaInfo("matroska,webm", 1.0, None, (StreamInfo(0, "video", "vp9"),))
    assert direct_content_type(vp9) == "video/webm"
    assert direct_content_type(MediaInfo("flv", 1.0, None, ())) == "application/octet-stream"


def test_subtitle_files_beside_the_video_become_subtitle_streams(tmp_path: Path) -> None:
    video = tmp_path / "Movie (2010).mkv"
    for name in (
        "Movie (2010).srt",
        "Movie (2010).en.forced.ass",
        "Movie (2010) - fr.vtt",
        "Movie (2010)2.srt",
        "Movie (2010).nfo",
        "Other.srt",
        "Movie (2010).de.sub",
    ):
        (tmp_path / name).write_text("x")  # fmt: skip
    media, files = with_external_subtitles(MOVIE, str(video))
    added = media.streams[len(MOVIE.streams) :]
    assert [(s.index, s.codec, s.language, s.forced) for s in added] == [
        (EXTERNAL_SUBTITLE_BASE, "webvtt", "fr", False),
        (EXTERNAL_SUBTITLE_BASE + 1, "ass", "en", True),
        (EXTERNAL_SUBTITLE_BASE + 2, "subrip", None, False),
    ]  # "Movie (2010)2.srt", the NFO, another name and an image subtitle are not taken
    assert files[EXTERNAL_SUBTITLE_BASE + 1] == tmp_path / "Movie (2010).en.forced.ass"
    assert with_external_subtitles(MOVIE, str(tmp_path / "none" / "x.mkv")) == (MOVIE, {})
