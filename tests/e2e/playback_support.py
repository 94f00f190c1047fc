"""Playback e2e helpers: clips made with ffmpeg, library rows pointing at them, users and a served
app (Granian on a real socket, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from revenge.config import load_settings
from revenge.modules.auth.admin import create_user
from tests.e2e.conftest import Server, free_port, granian_argv, run_server

PASSWORD = "playback test password"
FAST_ARGON2 = {
    "REVENGE_AUTH__ARGON2_TIME_COST": "1",
    "REVENGE_AUTH__ARGON2_MEMORY_KIB": "1024",
    "REVENGE_AUTH__ARGON2_PARALLELISM": "1",
}
API = "/api/v1/playback/sessions"


def make(path: Path, *args: str) -> Path:
    if not path.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(path)], check=True)
    return path


def small_clip(folder: Path, seconds: int = 10) -> Path:
    """640x360 25 fps H.264 (keyframe every 2 s) with stereo AAC, in MP4."""
    return make(
        folder / f"small-{seconds}.mp4",
        "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac", "-ac", "2",
    )  # fmt: skip


def subtitled_mkv(folder: Path) -> Path:
    srt = folder / "subs.srt"
    srt.write_text(
        "1\n00:00:01,000 --> 00:00:02,500\nHello there\n\n"
        "2\n00:00:05,000 --> 00:00:07,000\nSecond line\n",
        encoding="utf-8",
    )
    return make(
        folder / "subtitled.mkv",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=10",
        "-f", "lavfi", "-i", "sine=duration=10", "-i", str(srt),
        "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast",
        "-g", "50", "-c:a", "aac", "-c:s", "srt", "-metadata:s:s:0", "language=eng",
    )  # fmt: skip


def dvd_subtitle_packet(x: int, y: int, width: int, height: int, duration_ms: int) -> bytes:
    """One DVD subpicture (SPU, as ffmpeg's dvdsub decoder reads it): a solid box of colour 1,
    opaque, the rest transparent, shown for ``duration_ms``. ffmpeg encodes bitmap subtitles only
    from bitmap subtitles, so a test that needs an image subtitle writes one itself."""
    line = b"\x00\x01"  # RLE: "colour 1 to the end of the line" (each line byte-aligned)
    top, bottom = line * ((height + 1) // 2), line * (height // 2)  # the two fields
    top_at = 4
    bottom_at = top_at + len(top)
    first_control = bottom_at + len(bottom)
    area = (x << 36) | ((x + width - 1) << 24) | (y << 12) | (y + height - 1)
    commands = (
        b"\x01"  # start display
        + b"\x03\x32\x10"  # colour indices 3 2 1 0
        + b"\x04\x00\xf0"  # alpha: only colour 1 opaque
        + b"\x05" + area.to_bytes(6, "big")
        + b"\x06" + struct.pack(">HH", top_at, bottom_at)
        + b"\xff"
    )  # fmt: skip
    second_control = first_control + 4 + len(commands)
    stop = round(duration_ms * 90 / 1024)  # control dates count 1024/90000 s
    body = (
        top + bottom
        + struct.pack(">HH", 0, second_control) + commands
        + struct.pack(">HH", stop, second_control) + b"\x02\xff"  # stop display, last
    )  # fmt: skip
    return struct.pack(">HH", 4 + len(body), first_control) + body


def _program_stream(packets: list[tuple[float, bytes]]) -> bytes:
    """MPEG program stream (a VobSub ``.sub``): each SPU in a private stream 1 packet,
    substream 0x20 (the first subtitle track), with its presentation time."""
    pack = bytes.fromhex("000001BA4400040004010189C3F8")  # pack header, SCR 0
    out = b""
    for seconds, spu in packets:
        pts = round(seconds * 90_000)
        stamp = bytes([
            0x21 | ((pts >> 29) & 0x0E), (pts >> 22) & 0xFF, ((pts >> 14) & 0xFE) | 1,
            (pts >> 7) & 0xFF, ((pts << 1) & 0xFE) | 1,
        ])  # fmt: skip
        data = b"\x81\x80\x05" + stamp + b"\x20" + spu
        out += pack + b"\x00\x00\x01\xbd" + struct.pack(">H", len(data)) + data
    return out + b"\x00\x00\x01\xb9"


BOX = (60, 60, 200, 120)  # where image_subtitled_mkv's subtitle draws its box (x, y, w, h)


def image_subtitled_mkv(folder: Path) -> Path:
    """6 s of black 320x240 H.264 + AAC with a DVD (VobSub) subtitle track: a white box at
    ``BOX`` from 1 s to 3 s, nothing after."""
    sub = folder / "box.sub"
    sub.write_bytes(_program_stream([(1.0, dvd_subtitle_packet(*BOX, 2000))]))
    return make(
        folder / "image-subtitled.mkv",
        "-f", "lavfi", "-i", "color=c=black:s=320x240:r=25:d=6", "-f", "lavfi", "-i", "sine=d=6",
        "-f", "mpeg", "-i", str(sub), "-map", "0:v", "-map", "1:a", "-map", "2:s",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac", "-c:s", "copy",
        "-metadata:s:s:0", "language=eng",
    )  # fmt: skip


def duration_of(path_or_url: str, *headers: str) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", *headers, "-show_entries", "format=duration", "-of", "csv=p=0",
         path_or_url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip())


@dataclass
class Library:
    id: int
    root_id: int
    folder: Path


async def _seed_library(url: str, root: Path) -> Library:
    root = root / f"lib-{uuid.uuid4().hex[:8]}"  # a root belongs to one library
    root.mkdir()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "INSERT INTO libraries (name, kind) VALUES (%s, 'movies') RETURNING id",
            (f"lib {uuid.uuid4().hex[:8]}",),
        )
        library_id = (await cur.fetchone())[0]  # type: ignore[index]
        cur = await conn.execute(
            "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, %s)"
            " RETURNING id",
            (library_id, os.fsencode(root), str(root)),
        )
        root_id = (await cur.fetchone())[0]  # type: ignore[index]
    return Library(library_id, root_id, root)


async def _seed_item(url: str, library: Library, source: Path) -> tuple[int, int]:
    # a file belongs to one item: each item gets its own name (a hard link) in the library
    path = library.folder / f"{source.stem}-{uuid.uuid4().hex[:6]}{source.suffix}"
    if source.exists():
        os.link(source, path)
    else:
        path.write_bytes(b"")
    info = path.stat()
    if not source.exists():
        path.unlink()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "INSERT INTO items (library_id, kind, key, title, sort_title)"
            " VALUES (%s, 'movie', %s, %s, %s) RETURNING id",
            (library.id, f"{path}-{uuid.uuid4().hex[:6]}", path.stem, path.stem),
        )
        item_id = (await cur.fetchone())[0]  # type: ignore[index]
        cur = await conn.execute(
            "INSERT INTO media_files (item_id, library_id, root_id, path, path_text, size,"
            " mtime_ns, inode, device, probe_status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, 'ok') RETURNING id",
            (item_id, library.id, library.root_id, os.fsencode(path), str(path), info.st_size,
             info.st_mtime_ns, info.st_ino, info.st_dev),
        )  # fmt: skip
        file_id = (await cur.fetchone())[0]  # type: ignore[index]
    return int(item_id), int(file_id)


async def _grant(url: str, user_id: int, library_id: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO library_grants (user_id, library_id) VALUES (%s, %s)",
            (user_id, library_id),
        )


class World:
    """A served app over a migrated database, with libraries, items and users."""

    def __init__(self, url: str, server: Server) -> None:
        self.url = url
        self.server = server
        self.client = httpx.Client(base_url=server.base_url, timeout=60)
        self.settings = load_settings(env={"REVENGE_DATABASE__URL": url, **FAST_ARGON2})

    def library(self, root: Path) -> Library:
        return asyncio.run(_seed_library(self.url, root))

    def item(self, library: Library, path: Path) -> tuple[int, int]:
        return asyncio.run(_seed_item(self.url, library, path))

    def user(
        self, *, grant: Library | None = None, admin: bool = False
    ) -> tuple[int, dict[str, str]]:
        name = f"u{uuid.uuid4().hex[:10]}"
        record = asyncio.run(create_user(self.url, self.settings, name, PASSWORD, admin=admin))
        if grant is not None:
            asyncio.run(_grant(self.url, record.id, grant.id))
        reply = self.client.post(
            "/api/v1/auth/login", json={"username": name, "password": PASSWORD}
        )
        assert reply.status_code == 200, reply.text
        self.client.cookies.clear()
        return record.id, {"authorization": f"Bearer {reply.json()['token']}"}

    def play(self, headers: Mapping[str, str], item_id: int, **body: Any) -> httpx.Response:
        return self.client.post(API, json={"item_id": item_id, **body}, headers=dict(headers))

    def ffmpeg_children(self) -> list[psutil.Process]:
        found = []
        for child in psutil.Process(self.server.process.pid).children(recursive=True):
            try:
                if child.name().startswith("ffmpeg") and child.status() != psutil.STATUS_ZOMBIE:
                    found.append(child)
            except psutil.NoSuchProcess:
                pass
        return found

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


@contextmanager
def served(
    url: str, tmp: Path, env: Mapping[str, str] | None = None, workers: int = 1
) -> Iterator[World]:
    port = free_port()
    full = {
        "REVENGE_DATABASE__URL": url,
        "REVENGE_SERVER__DATA_DIR": str(tmp / "data"),
        **FAST_ARGON2,
        **(env or {}),
    }
    extra = ("--workers", str(workers)) if workers > 1 else ()
    with run_server(granian_argv(port, *extra), port, tmp, full) as server:
        world = World(url, server)
        try:
            yield world
        finally:
            world.client.close()


H264_AAC = {"video": [{"codec": "h264", "max_level": 5.2}], "audio": [{"codec": "aac"}]}
BROWSER_MP4 = {"containers": ["mp4"], **H264_AAC}
HLS_ONLY = {"containers": [], **H264_AAC}

PYTHON = sys.executable
