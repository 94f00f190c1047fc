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
