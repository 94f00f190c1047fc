"""Playback on a served app (Granian, real PostgreSQL, the machine's ffmpeg): sessions, direct play
with Range, HLS decoded whole by ffmpeg as a client, signed URLs refused when tampered, expired
or bare, limits, seeks, and no ffmpeg left behind.

The clips are made here with ffmpeg (``testsrc2``, ``sine``)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psutil
import pytest

from tests.e2e.playback_support import (
    API,
    BOX,
    BROWSER_MP4,
    HLS_ONLY,
    Library,
    World,
    duration_of,
    image_subtitled_mkv,
    served,
    small_clip,
    subtitled_mkv,
)
from tests.unit.hls_rfc import check_master_playlist, check_media_playlist

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed"),
]

ENV = {
    "REVENGE_PLAYBACK__IDLE_TIMEOUT": "20s",
    "REVENGE_PLAYBACK__MAX_TRANSCODES_PER_USER": "2",
    "REVENGE_PLAYBACK__MAX_TRANSCODES": "8",  # the server limit is tested in test_playback_faults
    "REVENGE_METRICS__SCRAPE_TOKEN": "playback-scrape-token",
}
ALERTS = Path(__file__).resolve().parents[2] / "configs" / "alerts.yml"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    small_clip(folder, 10)
    subtitled_mkv(folder)
    image_subtitled_mkv(folder)
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


def problem(reply: Any, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json", reply.text
    body: dict[str, Any] = reply.json()
    assert body["code"] == code, body
    return body


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def bare(url: str) -> str:
    return urlsplit(url).path


def test_direct_play_with_range_and_signed_urls(
    world: World, library: Library, clips: Path
) -> None:
    clip = clips / "small-10.mp4"
    item, file_id = world.item(library, clip)
    _, alice = world.user(grant=library)
    reply = world.play(alice, item, capabilities=BROWSER_MP4)
    assert reply.status_code == 201, reply.text
    session = reply.json()
    assert session["method"] == "direct" and session["reasons"] == []
    assert session["file_id"] == file_id and session["urls"]["master"] is None
    url = path_of(session["urls"]["direct"])
    data = clip.read_bytes()

    whole = world.client.get(url)  # the signed URL alone: no credential
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    etag = whole.headers["etag"]
    part = world.client.get(url, headers={"range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    suffix = world.client.get(url, headers={"range": "bytes=-10"})
    assert suffix.status_code == 206 and suffix.content == data[-10:]
    head = world.client.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    stale = world.client.get(url, headers={"range": "bytes=0-9", "if-range": '"other"'})
    assert stale.status_code == 200 and len(stale.content) == len(data)
    fresh = world.client.get(url, headers={"range": "bytes=0-9", "if-range": etag})
    assert fresh.status_code == 206 and fresh.content == data[:10]
    for bad in (f"bytes={len(data)}-", "bytes=-0", f"bytes={len(data) + 5}-{len(data) + 9}"):
        problem(world.client.get(url, headers={"range": bad}), 416, "range_not_satisfiable")
    for ignored in ("bytes=9-0", "items=0-1", "bytes=a-b", ",".join(["bytes=0-1"] * 100)):
        reply = world.client.get(url, headers={"range": ignored})
        assert reply.status_code in (200, 206, 416), (ignored, reply.status_code)
    # with the credential instead of the signature
    assert world.client.get(bare(url), headers=alice).content == data


def test_no_media_url_works_with_a_bare_id_or_a_bad_signature(
    world: World, library: Library, clips: Path
) -> None:
    item, _ = world.item(library, clips / "small-10.mp4")
    _, alice = world.user(grant=library)
    _, bob = world.user(grant=library)
    session = world.play(alice, item, capabilities=BROWSER_MP4).json()
    url = session["urls"]["direct"]
    path, query = bare(url), parse_qs(urlsplit(url).query)
    exp, sig = query["exp"][0], query["sig"][0]
    problem(world.client.get(path), 401, "unauthenticated")
    problem(
        world.client.get(path, headers={"authorization": "Bearer nope"}), 401, "unauthenticated"
    )
    tampered = sig[:-2] + ("AA" if not sig.endswith("AA") else "BB")
    problem(world.client.get(f"{path}?exp={exp}&sig={tampered}"), 403, "playback_url_invalid")
    problem(world.client.get(f"{path}?exp={int(exp) + 1}&sig={sig}"), 403, "playback_url_invalid")
    problem(world.client.get(f"{path}?sig={sig}"), 403, "playback_url_invalid")
    # another session's signature does not open this one
    other = world.play(alice, item, capabilities=BROWSER_MP4).json()
    other_sig = parse_qs(urlsplit(other["urls"]["direct"]).query)["sig"][0]
    problem(world.client.get(f"{path}?exp={exp}&sig={other_sig}"), 403, "playback_url_invalid")
    # an expired one, signed with the server's key, is refused as expired
    key = bytes(world.query("SELECT key FROM playback_secret")[0][0])
    past = int(time.time()) - 5
    message = f"v1|{session['id']}|{_user_of(world, session['id'])}|{item}|{past}".encode()
    expired = base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest())
    expired_sig = expired.rstrip(b"=").decode()
    problem(world.client.get(f"{path}?exp={past}&sig={expired_sig}"), 403, "playback_url_expired")
    # another user's session, with their own credential: not found
    problem(world.client.get(path, headers=bob), 404, "playback_session_not_found")
    problem(world.client.get(f"{API}/{session['id']}", headers=bob), 404,
            "playback_session_not_found")  # fmt: skip
    problem(world.client.delete(f"{API}/{session['id']}", headers=bob), 404,
            "playback_session_not_found")  # fmt: skip


def _user_of(world: World, session_id: str) -> int:
    return int(
        world.query("SELECT user_id FROM playback_sessions WHERE id = %s", (session_id,))[0][0]
    )


def test_items_of_libraries_the_user_cannot_see_are_not_found(
    world: World, library: Library, clips: Path, tmp_path: Path
) -> None:
    item, file_id = world.item(library, clips / "small-10.mp4")
    _, stranger = world.user()  # no grant
    problem(world.play(stranger, item, capabilities=BROWSER_MP4), 404, "item_not_found")
    _, alice = world.user(grant=library)
    problem(world.play(alice, 2**62, capabilities=BROWSER_MP4), 404, "item_not_found")
    other_item, _ = world.item(library, clips / "subtitled.mkv")
    # a file of another item is not this item's
    problem(world.play(alice, other_item, file_id=file_id, capabilities=BROWSER_MP4), 404,
            "item_not_found")  # fmt: skip
    _, admin = world.user(admin=True)
    assert world.play(admin, item, capabilities=BROWSER_MP4).status_code == 201
    # a file gone from disk is a clear conflict, not a 500
    gone_item, _ = world.item(library, tmp_path / "gone.mp4")  # listed, not on disk
    problem(world.play(alice, gone_item, capabilities=BROWSER_MP4), 409, "media_unavailable")
    # a corrupt file too
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(4096))
    corrupt_item, _ = world.item(library, corrupt)
    problem(world.play(alice, corrupt_item, capabilities=BROWSER_MP4), 409, "media_unavailable")
    problem(world.client.post(API, json={"item_id": item, "capabilities": {}}), 401,
            "unauthenticated")  # fmt: skip
    problem(world.client.post(API, json={"item_id": -1, "capabilities": {}}, headers=alice), 422,
            "validation_failed")  # fmt: skip


def test_progress_saves_position_and_watched_state(
    world: World, library: Library, clips: Path
) -> None:
    item, _ = world.item(library, clips / "small-10.mp4")
    user_id, alice = world.user(grant=library)
    session = world.play(alice, item, capabilities=BROWSER_MP4).json()
    reply = world.client.post(f"{API}/{session['id']}/progress", json={"position_ms": 4000},
                              headers=alice)  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.json()["played"] is False
    state = world.query(
        "SELECT position_ms, played, play_count FROM user_item_state WHERE user_id = %s"
        " AND item_id = %s", (user_id, item),
    )  # fmt: skip
    assert state == [(4000, False, 0)]
    # a new session without a start position resumes there (the default resume preference)
    again = world.play(alice, item, capabilities=BROWSER_MP4).json()
    assert again["start_position_ms"] == 4000
    assert (
        world.play(alice, item, capabilities=BROWSER_MP4, start_position_ms=0).json()[
            "start_position_ms"
        ]
        == 0
    )
    for _ in range(2):  # watched once per session, however many heartbeats say so
        reply = world.client.post(f"{API}/{session['id']}/progress", json={"position_ms": 9500},
                                  headers=alice)  # fmt: skip
        assert reply.json()["played"] is True
    state = world.query(
        "SELECT position_ms, played, play_count FROM user_item_state WHERE user_id = %s"
        " AND item_id = %s", (user_id, item),
    )  # fmt: skip
    assert state == [(0, True, 1)]
    problem(world.client.post(f"{API}/{session['id']}/progress", json={"position_ms": -1},
                              headers=alice), 422, "validation_failed")  # fmt: skip
    assert world.client.delete(f"{API}/{session['id']}", headers=alice).status_code == 204
    problem(world.client.get(f"{API}/{session['id']}", headers=alice), 404,
            "playback_session_not_found")  # fmt: skip
    problem(world.client.get(path_of(session["urls"]["direct"])), 403, "playback_url_invalid")


def _decode(url: str, *headers: str) -> tuple[float, str]:
    """ffmpeg as an HLS client: every frame decoded, no error; the duration it found."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", *headers, "-i", url, "-f", "null", "-"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return duration_of(url, *headers), done.stderr


@pytest.mark.parametrize("fmt", ["fmp4", "ts"])
def test_transcode_plays_whole_in_ffmpeg(
    world: World, library: Library, clips: Path, fmt: str
) -> None:
    clip = clips / "small-10.mp4"
    item, _ = world.item(library, clip)
    _, alice = world.user(grant=library)
    caps = {**HLS_ONLY, "max_height": 240, "segment_format": fmt}
    reply = world.play(alice, item, capabilities=caps)
    assert reply.status_code == 201, reply.text
    session = reply.json()
    assert session["method"] == "transcode" and "video_resolution_too_high" in session["reasons"]
    assert session["video"]["height"] == 240
    master_url = world.server.base_url + path_of(session["urls"]["master"])
    master = world.client.get(path_of(session["urls"]["master"]))
    assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
    check_master_playlist(master.text)
    for line in master.text.splitlines():
        if line and not line.startswith("#"):
            variant_path = bare(session["urls"]["master"]).rsplit("/", 1)[0] + "/" + line
            media = world.client.get(variant_path)
            assert media.status_code == 200, media.text
            check_media_playlist(media.text)
    found, _ = _decode(master_url)  # signed URLs only
    assert abs(found - duration_of(str(clip))) <= 0.5
    # and with the credential in a header instead, from the bare URL
    token = alice["authorization"]
    found, _ = _decode(
        world.server.base_url + bare(session["urls"]["master"]), "-headers",
        f"Authorization: {token}\r\n",
    )  # fmt: skip
    assert abs(found - duration_of(str(clip))) <= 0.5


def test_remux_of_a_matroska_file_plays_whole_with_its_subtitles(
    world: World, library: Library, clips: Path
) -> None:
    clip = clips / "subtitled.mkv"
    item, _ = world.item(library, clip)
    _, alice = world.user(grant=library)
    reply = world.play(alice, item, capabilities=HLS_ONLY, subtitle_mode="always")
    assert reply.status_code == 201, reply.text
    session = reply.json()
    assert session["method"] == "remux" and session["reasons"] == ["container_unsupported"]
    master = world.client.get(path_of(session["urls"]["master"])).text
    check_master_playlist(master)
    assert "TYPE=SUBTITLES" in master and 'LANGUAGE="en"' in master
    subtitle = session["subtitles"][0]
    assert subtitle["delivery"] == "webvtt" and subtitle["url"]
    vtt = world.client.get(path_of(subtitle["url"]))
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT")
    assert "Hello there" in vtt.text and "X-TIMESTAMP-MAP" in vtt.text
    found, _ = _decode(world.server.base_url + path_of(session["urls"]["master"]))
    assert abs(found - duration_of(str(clip))) <= 0.5


def test_image_subtitles_are_burned_in_only_when_asked(
    world: World, library: Library, clips: Path
) -> None:
    """A VobSub (dvd_subtitle) track: left out unless the user asks; asked, it is drawn into
    the picture (a transcode), seen in the frames ffmpeg decodes from the HLS stream."""
    clip = clips / "image-subtitled.mkv"
    item, _ = world.item(library, clip)
    _, alice = world.user(grant=library)
    plain = world.play(alice, item, capabilities=HLS_ONLY, subtitle_mode="always").json()
    assert plain["method"] == "remux", plain
    assert [s["delivery"] for s in plain["subtitles"] if s["selected"]] != ["burn_in"]
    world.client.delete(f"{API}/{plain['id']}", headers=alice)
    reply = world.play(alice, item, capabilities=HLS_ONLY, subtitle_mode="always",
                       burn_in_image_subtitles=True)  # fmt: skip
    assert reply.status_code == 201, reply.text
    session = reply.json()
    assert session["method"] == "transcode" and "subtitle_burn_in" in session["reasons"]
    burned = [s for s in session["subtitles"] if s["delivery"] == "burn_in"]
    assert [(s["codec"], s["selected"], s["url"]) for s in burned] == [("dvd_subtitle", True, None)]
    master = world.server.base_url + path_of(session["urls"]["master"])
    x, y, w, h = BOX
    for at, lit in ((2.0, True), (4.5, False)):  # the box is shown from 1 s to 3 s
        frame_no = round(at * 25)  # frames decoded from the start, 25 fps
        done = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", master, "-frames:v", "1",
             "-vf", f"select=gte(n\\,{frame_no}),crop={w - 20}:{h - 20}:{x + 10}:{y + 10}",
             "-f", "rawvideo", "-pix_fmt", "gray", "-"],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        frame = done.stdout
        assert len(frame) == (w - 20) * (h - 20), done.stderr.decode(errors="replace")[-2000:]
        mean = sum(frame) / len(frame)
        assert (mean > 200) if lit else (mean < 40), f"at {at} s the box's mean luma is {mean}"
    found, _ = _decode(master)
    assert abs(found - duration_of(str(clip))) <= 0.5
    assert world.client.delete(f"{API}/{session['id']}", headers=alice).status_code == 204


def test_subtitle_files_beside_the_video_are_webvtt_renditions(
    world: World, library: Library, clips: Path
) -> None:
    item, file_id = world.item(library, clips / "small-10.mp4")
    video = Path(os.fsdecode(bytes(world.query("SELECT path FROM media_files WHERE id = %s",
                                               (file_id,))[0][0])))  # fmt: skip
    (video.parent / f"{video.stem}.en.srt").write_text(
        "1\n00:00:01,000 --> 00:00:03,000\nFrom the SRT file\n", encoding="utf-8"
    )
    ass = "\n".join([
        "[Script Info]", "ScriptType: v4.00+", "", "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, Bold, Italic, Alignment",
        "Style: Default,Arial,20,&H00FFFFFF,0,0,2", "", "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
        "Dialogue: 0,0:00:02.00,0:00:04.00,Default,,0,0,0,,Depuis le fichier ASS", "",
    ])  # fmt: skip
    (video.parent / f"{video.stem}.fr.forced.ass").write_text(ass, encoding="utf-8")
    _, alice = world.user(grant=library)
    reply = world.play(alice, item, capabilities={**HLS_ONLY, "max_height": 240},
                       subtitle_mode="always", subtitle_languages=["en"])  # fmt: skip
    assert reply.status_code == 201, reply.text
    session = reply.json()
    subs = {s["language"]: s for s in session["subtitles"]}
    assert set(subs) == {"en", "fr"} and subs["en"]["selected"] and subs["fr"]["forced"]
    master = world.client.get(path_of(session["urls"]["master"])).text
    check_master_playlist(master)
    assert master.count("TYPE=SUBTITLES") == 2 and "FORCED=YES" in master
    for language, text in (("en", "From the SRT file"), ("fr", "Depuis le fichier ASS")):
        vtt = world.client.get(path_of(subs[language]["url"]))
        assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT"), vtt.text
        assert text in vtt.text and "X-TIMESTAMP-MAP" in vtt.text
    assert world.client.delete(f"{API}/{session['id']}", headers=alice).status_code == 204


def test_bad_segment_requests_are_clear_problems(
    world: World, library: Library, clips: Path
) -> None:
    item, _ = world.item(library, clips / "small-10.mp4")
    _, alice = world.user(grant=library)
    session = world.play(alice, item, capabilities={**HLS_ONLY, "max_height": 240}).json()
    base = bare(session["urls"]["master"]).rsplit("/", 1)[0]
    query = urlsplit(session["urls"]["master"]).query
    for name in ("-1.m4s", "99999.m4s", "9999999999999.m4s", "1.ts", "x.m4s", "1.m4s.m4s",
                 "index.m3u"):  # fmt: skip
        problem(world.client.get(f"{base}/source/{name}?{query}"), 404, "segment_not_found")
    problem(world.client.get(f"{base}/nope/index.m3u8?{query}"), 404, "segment_not_found")
    problem(world.client.get(f"{base}/subtitles/1.m3u8?{query}"), 404, "segment_not_found")
    problem(world.client.get(f"{base}/source/0.m4s"), 401, "unauthenticated")


def test_a_seek_restarts_ffmpeg_there_and_numbering_continues(
    world: World, library: Library, clips: Path
) -> None:
    clip = clips / "small-10.mp4"
    item, _ = world.item(library, clip)
    _, alice = world.user(grant=library)
    session = world.play(alice, item, capabilities={**HLS_ONLY, "max_height": 240}).json()
    base = bare(session["urls"]["master"]).rsplit("/", 1)[0]
    query = urlsplit(session["urls"]["master"]).query
    playlist = world.client.get(f"{base}/source/index.m3u8?{query}").text
    segments = [ln for ln in playlist.splitlines() if ln and not ln.startswith("#")][1:]
    last = segments[-1].split("?")[0]
    far = world.client.get(f"{base}/source/{last}?{query}")
    assert far.status_code == 200 and len(far.content) > 0
    info = world.client.get(f"{API}/{session['id']}", headers=alice).json()
    assert info["transcode"]["start_segment"] == int(last.split(".")[0])
    first = world.client.get(f"{base}/source/0.m4s?{query}")  # behind: restarts once
    assert first.status_code == 200
    init = world.client.get(f"{base}/source/init.mp4?{query}")
    assert init.status_code == 200 and init.content[4:8] == b"ftyp"


def test_limits_refuse_with_retry_after_and_delete_kills_ffmpeg(
    world: World, library: Library, clips: Path
) -> None:
    item, _ = world.item(library, clips / "small-10.mp4")
    _, alice = world.user(grant=library)
    caps = {**HLS_ONLY, "max_height": 240}
    first = world.play(alice, item, capabilities=caps).json()
    second = world.play(alice, item, capabilities=caps).json()
    refused = world.play(alice, item, capabilities=caps)
    problem(refused, 429, "transcode_limit_reached")
    assert refused.headers["retry-after"] == "30"
    for session in (first, second):
        assert world.client.delete(f"{API}/{session['id']}", headers=alice).status_code == 204
    deadline = time.monotonic() + 2
    while any(_runs_session(p, s["id"]) for p in world.ffmpeg_children() for s in (first, second)):
        assert time.monotonic() < deadline, "ffmpeg outlived its session by 2 s"
        time.sleep(0.05)
    assert world.play(alice, item, capabilities=caps).status_code == 201


def _runs_session(process: psutil.Process, session_id: str) -> bool:
    try:
        return any(session_id in arg for arg in process.cmdline())
    except psutil.NoSuchProcess:
        return False


def test_sigkill_of_the_worker_mid_transcode_leaves_no_ffmpeg(
    migrated_url: str, clips: Path, tmp_path: Path
) -> None:
    long_clip = small_clip(clips, 120)
    with served(migrated_url, tmp_path, ENV) as w:
        lib = w.library(clips)
        item, _ = w.item(lib, long_clip)
        _, alice = w.user(grant=lib)
        session = w.play(alice, item, capabilities={**HLS_ONLY, "max_height": 240}).json()
        deadline = time.monotonic() + 10
        while not (ffmpeg := w.ffmpeg_children()):
            assert time.monotonic() < deadline, "no ffmpeg started"
            time.sleep(0.05)
        worker = ffmpeg[0].parent()
        assert worker is not None and worker.pid != w.server.process.pid
        os.kill(worker.pid, signal.SIGKILL)
        time.sleep(2.0)
        left = [p for p in ffmpeg if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert left == [], f"ffmpeg outlived its worker: {left}"
        del session


def test_two_workers_run_one_ffmpeg_per_session_whichever_gets_the_request(
    migrated_url: str, clips: Path, tmp_path: Path
) -> None:
    """Every request on a new connection, so both Granian workers receive them: the session's
    segments come from its one ffmpeg, owned by one worker, and a whole decode still works."""
    clip = small_clip(clips, 30)
    with served(migrated_url, tmp_path, ENV, workers=2) as w:
        lib = w.library(clips)
        item, _ = w.item(lib, clip)
        _, alice = w.user(grant=lib)
        reply = w.play(alice, item, capabilities={**HLS_ONLY, "max_height": 240})
        assert reply.status_code == 201, reply.text
        session = reply.json()
        seen: dict[int, int] = {}  # ffmpeg pid -> its parent (the owning worker)
        most_at_once = 0
        stop = False

        def watch() -> None:
            nonlocal most_at_once
            while not stop:
                alive = [p for p in w.ffmpeg_children() if _runs_session(p, session["id"])]
                most_at_once = max(most_at_once, len(alive))
                for p in alive:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        seen[p.pid] = p.ppid()
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            master = path_of(session["urls"]["master"])
            base = bare(master).rsplit("/", 1)[0]
            query = urlsplit(master).query
            with httpx.Client(base_url=w.server.base_url, timeout=60,
                              limits=httpx.Limits(max_keepalive_connections=0)) as fresh:  # fmt: skip
                playlist = fresh.get(f"{base}/source/index.m3u8?{query}").text
                names = [ln.split("?")[0] for ln in playlist.splitlines()
                         if ln and not ln.startswith("#")]  # fmt: skip
                assert fresh.get(f"{base}/source/init.mp4?{query}").status_code == 200
                last = fresh.get(f"{base}/source/{names[-1]}?{query}")  # a seek, on either worker
                assert last.status_code == 200, last.text
                for name in names:
                    reply = fresh.get(f"{base}/source/{name}?{query}")
                    assert reply.status_code == 200 and len(reply.content) > 1000, reply.text
            found, _ = _decode(w.server.base_url + master, "-http_persistent", "0")
            assert abs(found - duration_of(str(clip))) <= 0.5
        finally:
            stop = True
            watcher.join()
        assert most_at_once == 1, f"{most_at_once} ffmpeg ran at once for one session"
        # the other worker asked the owner: the owner's hand-over folder exists
        assert list((tmp_path / "data" / "transcode").glob("*/handoff")), "one worker served all"
        assert len(set(seen.values())) == 1, f"ffmpeg started by several workers: {seen}"


def test_metrics_have_what_the_alerts_read(world: World, library: Library, clips: Path) -> None:
    item, _ = world.item(library, clips / "small-10.mp4")
    _, alice = world.user(grant=library)
    session = world.play(alice, item, capabilities={**HLS_ONLY, "max_height": 240}).json()
    base = bare(session["urls"]["master"]).rsplit("/", 1)[0]
    query = urlsplit(session["urls"]["master"]).query
    assert world.client.get(f"{base}/source/0.m4s?{query}").status_code == 200
    text = world.client.get(
        "/metrics", headers={"authorization": "Bearer playback-scrape-token"}
    ).text
    wanted = set(re.findall(r"revenge_playback_[a-z_]+", ALERTS.read_text()))
    assert wanted, "the alerts read no playback metric"
    for name in wanted:
        assert re.search(rf"^{name}(_total)?{{", text, re.M) or re.search(
            rf"^{name}(_total)? ", text, re.M
        ), f"{name} is not exported"
    assert re.search(r'^revenge_playback_sessions_total\{method="transcode"\} [1-9]', text, re.M)
    assert re.search(r'^revenge_playback_first_segment_seconds_count\{kind="encode"\} [1-9]', text,
                     re.M)  # fmt: skip
