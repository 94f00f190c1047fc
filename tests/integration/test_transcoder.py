"""The transcoder client against the machine's real ffmpeg, on a clip the test makes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from revenge.modules.playback import Transcoder, TranscoderError

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed"),
]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "clip.mkv"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:v", "mpeg4", "-c:a", "aac",
            "-metadata:s:a:0", "language=eng", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


async def test_discover_learns_version_and_encoders() -> None:
    transcoder = await Transcoder.discover()
    assert transcoder.version
    assert {"mpeg4", "aac"} <= transcoder.encoders
    await transcoder.check()


async def test_probe_reports_streams(clip: Path) -> None:
    info = await (await Transcoder.discover()).probe(clip)
    assert "matroska" in info.container
    assert info.duration is not None and 1.9 <= info.duration <= 2.2
    video, audio = info.streams
    assert (video.kind, video.codec, video.width, video.height) == ("video", "mpeg4", 320, 240)
    assert (audio.kind, audio.codec, audio.channels, audio.language) == ("audio", "aac", 1, "eng")


async def test_probe_of_garbage_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(TranscoderError, match="ffprobe failed"):
        await (await Transcoder.discover()).probe(junk)


async def test_missing_ffmpeg_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(TranscoderError, match="PATH"):
        await Transcoder.discover()


async def test_probe_reads_depth_hdr_rate_and_dispositions(tmp_path: Path) -> None:
    srt = tmp_path / "signs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    path = tmp_path / "hdr.mkv"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24000/1001:duration=1",
            "-f", "lavfi", "-i", "sine=duration=1", "-i", str(srt), "-map", "0", "-map", "1", "-map", "2",
            "-c:v", "libx264", "-pix_fmt", "yuv420p10le", "-color_trc", "smpte2084",
            "-color_primaries", "bt2020", "-colorspace", "bt2020nc", "-c:a", "aac", "-c:s", "srt",
            "-disposition:s:0", "forced", "-metadata:s:s:0", "language=fre",
            "-metadata:s:s:0", "title=Signs", str(path),
        ],
        check=True,
    )  # fmt: skip
    info = await (await Transcoder.discover()).probe(path)
    video, audio, sub = info.streams
    assert (video.profile, video.bit_depth, video.hdr) == ("High 10", 10, "hdr10")
    assert video.level is not None and video.level > 0
    assert video.frame_rate is not None and video.frame_rate.denominator == 1001
    assert (audio.profile, audio.sample_rate, audio.frame_rate) == ("LC", 44100, None)
    assert (sub.codec, sub.language, sub.forced, sub.default, sub.title) == (
        "subrip", "fre", True, False, "Signs",
    )  # fmt: skip
