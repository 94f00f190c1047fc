"""The start-up sweep: ffmpeg left by a process that is gone is killed and its folder emptied; a
live process's folder (another worker's) is left alone. Real ffmpeg processes."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from revenge.modules.playback.sessions import sweep

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed"),
]


def _dead_pid() -> int:
    probe = subprocess.Popen(["true"])
    probe.wait()
    return probe.pid


def _ffmpeg_into(folder: Path) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True)
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i",
         "testsrc2=size=160x120:rate=10", "-f", "hls", str(folder / "x.m3u8")],
        start_new_session=True,
    )  # fmt: skip


def test_sweep_kills_a_dead_owners_ffmpeg_and_keeps_a_live_owners(tmp_path: Path) -> None:
    root = tmp_path / "transcode"
    dead = root / str(_dead_pid())
    live = root / str(psutil.Process().ppid())
    orphan, kept = _ffmpeg_into(dead / "session"), _ffmpeg_into(live / "session")
    try:
        time.sleep(0.5)
        (root / "stray-file").write_bytes(b"x")
        assert sweep(root) == 1
        assert orphan.wait(timeout=2) is not None
        assert kept.poll() is None, "another live worker's ffmpeg was killed"
        assert not dead.exists() and not (root / "stray-file").exists()
        assert live.exists()
    finally:
        for process in (orphan, kept):
            process.kill()
            process.wait()
