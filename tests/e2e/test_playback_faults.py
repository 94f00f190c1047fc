"""Playback when things go wrong, on a served app with tight settings: idle sessions lose their
ffmpeg, ffmpeg crashing (restarted once, then a clear error), the source deleted mid-stream, a
client leaving mid-segment, 50 sessions asked at once, and the disk budget held while a client
reads a remux as fast as it can. Real ffmpeg, real sockets; clips made here."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from tests.e2e.playback_support import (
    API,
    HLS_ONLY,
    Library,
    World,
    make,
    served,
    small_clip,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed"),
]

DISK_MAX = 32 << 20
ENV = {
    "REVENGE_PLAYBACK__IDLE_TIMEOUT": "5s",
    "REVENGE_PLAYBACK__MAX_TRANSCODES": "3",
    "REVENGE_PLAYBACK__MAX_TRANSCODES_PER_USER": "2",
    "REVENGE_PLAYBACK__TRANSCODE_DISK_MAX": str(DISK_MAX),
    "REVENGE_PLAYBACK__MAX_AHEAD": "3",
    "REVENGE_METRICS__SCRAPE_TOKEN": "faults-scrape-token",
}
LOW = {**HLS_ONLY, "max_height": 240}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    small_clip(folder, 30)
    small_clip(folder, 120)
    # a remux source heavy enough that its segments are megabytes (720p at 12 Mbit/s)
    make(
        folder / "heavy.mkv",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=40",
        "-f", "lavfi", "-i", "sine=duration=40", "-c:v", "libx264", "-preset", "ultrafast",
        "-g", "50", "-b:v", "12M", "-maxrate", "12M", "-bufsize", "4M", "-c:a", "aac",
    )  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def world(
    migrated_url: str, clips: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with served(migrated_url, tmp_path_factory.mktemp("server"), ENV) as w:
        yield w


@pytest.fixture(scope="module")
def library(world: World, clips: Path) -> Library:
    return world.library(clips)


def urls(session: dict[str, Any]) -> tuple[str, str]:
    master = session["urls"]["master"]
    return urlsplit(master).path.rsplit("/", 1)[0], urlsplit(master).query


def session_ffmpeg(world: World, session_id: str) -> list[psutil.Process]:
    found = []
    for process in world.ffmpeg_children():
        try:
            if any(session_id in arg for arg in process.cmdline()):
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


def pinned_bytes(world: World) -> float:
    text = world.client.get(
        "/metrics", headers={"authorization": "Bearer faults-scrape-token"}
    ).text
    found = re.search(r"^revenge_playback_pinned_bytes\S* (\S+)$", text, re.M)
    assert found, "revenge_playback_pinned_bytes is not exported"
    return float(found.group(1))


def wait_until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_an_idle_session_loses_its_ffmpeg_and_comes_back(
    world: World, library: Library, clips: Path
) -> None:
    item, _ = world.item(library, clips / "small-30.mp4")
    _, alice = world.user(grant=library)
    session = world.play(alice, item, capabilities=LOW).json()
    base, query = urls(session)
    assert world.client.get(f"{base}/source/0.m4s?{query}").status_code == 200
    assert session_ffmpeg(world, session["id"])
    # no request for longer than the idle timeout (5 s; the reaper looks every 0.5 s)
    wait_until(
        lambda: not session_ffmpeg(world, session["id"]), 9, "ffmpeg outlived the idle timeout"
    )
    # the session is still valid: rebuilt from its row, ffmpeg started again where asked
    assert world.client.get(f"{API}/{session['id']}", headers=alice).status_code == 200
    reply = world.client.get(f"{base}/source/5.m4s?{query}")
    assert reply.status_code == 200 and len(reply.content) > 1000
    assert world.client.delete(f"{API}/{session['id']}", headers=alice).status_code == 204


def kill_ffmpeg_of(world: World, session_id: str) -> None:
    killed = session_ffmpeg(world, session_id)
    assert killed, "no ffmpeg to kill"
    for process in killed:
        process.send_signal(signal.SIGKILL)
    psutil.wait_procs(killed, timeout=5)
    time.sleep(0.3)  # the server's child watcher reaps it


def test_ffmpeg_crashing_is_restarted_once_then_a_clear_error(
    world: World, library: Library, clips: Path
) -> None:
    item, _ = world.item(library, clips / "small-120.mp4")
    _, alice = world.user(grant=library)
    session = world.play(alice, item, capabilities=LOW).json()
    base, query = urls(session)
    assert world.client.get(f"{base}/source/0.m4s?{query}").status_code == 200
    kill_ffmpeg_of(world, session["id"])  # held back at max_ahead: segment 10 is not written
    reply = world.client.get(f"{base}/source/10.m4s?{query}")  # restarted once
    assert reply.status_code == 200, reply.text
    kill_ffmpeg_of(world, session["id"])
    reply = world.client.get(f"{base}/source/16.m4s?{query}")
    assert reply.status_code == 409, reply.text
    assert reply.json()["code"] == "transcode_failed"
    assert world.client.get(f"{API}/{session['id']}", headers=alice).status_code == 200
    assert world.client.delete(f"{API}/{session['id']}", headers=alice).status_code == 204


def test_a_source_deleted_mid_stream_is_a_clear_conflict(
    world: World, library: Library, clips: Path
) -> None:
    item, file_id = world.item(library, clips / "small-120.mp4")
    _, alice = world.user(grant=library)
    session = world.play(alice, item, capabilities=LOW).json()
    base, query = urls(session)
    assert world.client.get(f"{base}/source/0.m4s?{query}").status_code == 200
    path = bytes(world.query("SELECT path FROM media_files WHERE id = %s", (file_id,))[0][0])
    os.unlink(path)
    # the running ffmpeg has the file open and goes on; a seek needs a new one, which cannot be
    reply = world.client.get(f"{base}/source/15.m4s?{query}")
    assert reply.status_code == 409, reply.text
    assert reply.json()["code"] == "media_unavailable"
    assert world.client.delete(f"{API}/{session['id']}", headers=alice).status_code == 204


def test_a_client_leaving_mid_segment_harms_nothing(
    world: World, library: Library, clips: Path
) -> None:
    item, _ = world.item(library, clips / "small-30.mp4")
    _, alice = world.user(grant=library)
    session = world.play(alice, item, capabilities=LOW).json()
    base, query = urls(session)
    host, port = world.server.base_url.removeprefix("http://").split(":")
    for index in (1, 2, 3):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                f"GET {base}/source/{index}.m4s?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            )
            sock.recv(100)  # the status line has come; leave without the body
    for index in (1, 2, 3, 4):
        assert world.client.get(f"{base}/source/{index}.m4s?{query}").status_code == 200
    assert world.client.delete(f"{API}/{session['id']}", headers=alice).status_code == 204


def test_fifty_sessions_at_once_keep_the_limits_and_the_server_answers(
    world: World, library: Library, clips: Path
) -> None:
    item, _ = world.item(library, clips / "small-30.mp4")
    users = [world.user(grant=library)[1] for _ in range(10)]

    def play(n: int) -> httpx.Response:
        with httpx.Client(base_url=world.server.base_url, timeout=120) as client:
            return client.post(API, json={"item_id": item, "capabilities": LOW},
                               headers=users[n % 10])  # fmt: skip

    with ThreadPoolExecutor(50) as pool:
        futures = [pool.submit(play, n) for n in range(50)]
        started = time.monotonic()
        live = world.client.get("/health/live")
        live_seconds = time.monotonic() - started
        replies = [f.result() for f in futures]
    assert live.status_code == 200 and live_seconds < 5, live_seconds
    statuses = sorted(r.status_code for r in replies)
    assert set(statuses) <= {201, 429, 503}, statuses
    created = [r.json() for r in replies if r.status_code == 201]
    assert 1 <= len(created) <= 3, statuses  # playback.max_transcodes
    codes = sorted(r.json()["code"] for r in replies if r.status_code != 201)
    assert set(codes) <= {"transcoder_unavailable", "transcode_limit_reached"}, codes
    for reply in replies:
        if reply.status_code != 201:
            assert reply.headers["retry-after"] == "30"
    running = [p for s in created for p in session_ffmpeg(world, s["id"])]
    assert len(running) <= 3
    for session, headers in ((s, u) for s in created for u in users):
        world.client.delete(f"{API}/{session['id']}", headers=headers)


def test_the_disk_budget_holds_while_a_client_reads_a_remux_flat_out(
    world: World, library: Library, clips: Path
) -> None:
    item, _ = world.item(library, clips / "heavy.mkv")
    _, alice = world.user(grant=library)
    deadline = time.monotonic() + 15  # earlier tests' sessions go idle (5 s) and free their slots
    while (reply := world.play(alice, item, capabilities=HLS_ONLY)).status_code == 503:
        assert time.monotonic() < deadline, reply.text
        time.sleep(0.5)
    assert reply.status_code == 201, reply.text
    session = reply.json()
    assert session["method"] == "remux"
    base, query = urls(session)
    folder = Path(world.server.log.parent / "data" / "transcode")
    peak = 0
    stop = False

    def measure() -> None:
        nonlocal peak
        while not stop:
            total = 0
            for root, _, files in os.walk(folder):
                for name in files:
                    with contextlib.suppress(FileNotFoundError):
                        total += os.stat(os.path.join(root, name)).st_size
            peak = max(peak, total)
            time.sleep(0.005)

    sampler = threading.Thread(target=measure)
    sampler.start()
    try:
        playlist = world.client.get(f"{base}/source/index.m3u8?{query}").text
        names = [ln.split("?")[0] for ln in playlist.splitlines() if ln and not ln.startswith("#")]
        got = 0
        for name in names:
            reply = world.client.get(f"{base}/source/{name}?{query}")
            assert reply.status_code == 200, reply.text
            got += len(reply.content)
    finally:
        stop = True
        sampler.join()
    assert got > 1.5 * DISK_MAX, f"the remux ({got} bytes) did not outgrow the budget"
    assert 0 < peak < DISK_MAX, f"{peak} bytes of segments on disk, budget {DISK_MAX}"
