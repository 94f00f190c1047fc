"""``images_process`` on real files and the real PostgreSQL: sidecar artwork found by the scan,
cover art embedded in a video (found by the real ffprobe, copied out by the real ffmpeg),
variants and blurhash in the data folder (never beside the media), shared content stored
once, a changed source remade, corrupt and bomb images failed with a reason."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from revenge.infra.db import Database
from revenge.modules.library.browse import Filters, item_detail, list_items
from revenge.modules.library.images import (
    VARIANT_WIDTHS,
    item_images,
    pending_images,
    process_image,
    remove_unused_variants,
)
from revenge.modules.library.probe import probe_file
from revenge.modules.library.scan import Scanner
from revenge.modules.library.visibility import load_viewer
from revenge.modules.playback import Transcoder

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def picture(path: Path, size: str, source: str = "testsrc2") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{source}=size={size}",
         "-frames:v", "1", str(path)],
        check=True,
    )  # fmt: skip
    return path


def clip_with_cover(path: Path, cover: Path) -> Path:
    """A 1 s MP4 whose second video stream is an attached picture (iTunes-style cover art)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1",
         "-i", str(cover), "-map", "0:v", "-map", "1:v", "-c:v:0", "libx264", "-preset", "ultrafast",
         "-c:v:1", "mjpeg", "-disposition:v:1", "attached_pic", str(path)],
        check=True,
    )  # fmt: skip
    return path


def png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")
    )  # fmt: skip


async def new_library(db: Database, root: Path, kind: str = "movies") -> int:
    row = await db.fetch_one(
        "INSERT INTO libraries (name, kind) VALUES (%s, %s) RETURNING id",
        (f"lib-{os.urandom(4).hex()}", kind),
    )
    assert row is not None
    raw = os.fsencode(root)
    await db.execute(
        "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, %s)",
        (row[0], raw, raw.decode()),
    )
    return int(row[0])


async def image_rows(db: Database, library: int) -> dict[tuple[str, str, str], dict[str, Any]]:
    rows = await db.fetch_all(
        "SELECT i.key, g.kind, g.source, g.id, g.status, g.reason, g.width, g.height, g.blurhash,"
        " encode(g.content_hash, 'hex') FROM images g JOIN items i ON i.id = g.item_id"
        " WHERE i.library_id = %s",
        (library,),
    )
    names = ("id", "status", "reason", "width", "height", "blurhash", "hash")
    return {(r[0], r[1], r[2]): dict(zip(names, r[3:], strict=True)) for r in rows}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
    }


async def test_sidecars_and_embedded_cover_become_variants(db: Database, tmp_path: Path) -> None:
    media, data = tmp_path / "media", tmp_path / "data" / "images"
    picture(media / "Alpha (2001)" / "poster.jpg", "600x900")
    picture(media / "Alpha (2001)" / "fanart.png", "1280x720", "mandelbrot")
    (media / "Alpha (2001)" / "Alpha (2001).mkv").write_bytes(b"")
    # the same poster under a second movie: one content folder serves both
    beta = media / "Beta (2002)"
    beta.mkdir()
    (beta / "poster.jpg").write_bytes((media / "Alpha (2001)" / "poster.jpg").read_bytes())
    (beta / "Beta (2002).mkv").write_bytes(b"")
    (media / "Gamma (2003)").mkdir()
    (media / "Gamma (2003)" / "poster.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (media / "Gamma (2003)" / "Gamma (2003).mkv").write_bytes(b"")
    cover = picture(tmp_path / "cover.jpg", "300x450", "smptebars")
    clip_with_cover(media / "Delta (2004)" / "Delta (2004).mp4", cover)
    lib = await new_library(db, media)
    queued: list[int] = []
    files: list[int] = []

    async def on_images(ids: Any) -> None:
        queued.extend(ids)

    async def on_files(ids: Any) -> None:
        files.extend(ids)

    before = snapshot(media)
    await Scanner(db).scan(lib, on_images=on_images, on_files=on_files)
    rows = await image_rows(db, lib)
    assert sorted(queued) == sorted(r["id"] for r in rows.values())
    assert {k for k in rows} == {
        ("movie:alpha:2001", "poster", "sidecar"),
        ("movie:alpha:2001", "fanart", "sidecar"),
        ("movie:beta:2002", "poster", "sidecar"),
        ("movie:gamma:2003", "poster", "sidecar"),
    }
    # the embedded cover appears with the probe
    transcoder = await Transcoder.discover()
    await asyncio.gather(*(probe_file(db, transcoder, f) for f in files))
    async with db.connection() as conn:
        pending = await pending_images(conn)
    rows = await image_rows(db, lib)
    embedded = rows[("movie:delta:2004", "poster", "embedded")]
    assert set(pending) >= {r["id"] for r in rows.values()}

    async def ffmpeg() -> str:
        return transcoder.ffmpeg

    outcomes = await asyncio.gather(
        *(process_image(db, data, r["id"], ffmpeg=ffmpeg) for r in rows.values())
    )
    assert sorted(o or "" for o in outcomes) == ["failed", "ok", "ok", "ok", "ok"]
    rows = await image_rows(db, lib)
    poster = rows[("movie:alpha:2001", "poster", "sidecar")]
    assert (poster["status"], poster["width"], poster["height"]) == ("ok", 600, 900)
    assert len(poster["blurhash"]) == 28  # 4 x 3 components
    assert rows[("movie:beta:2002", "poster", "sidecar")]["hash"] == poster["hash"]
    gamma = rows[("movie:gamma:2003", "poster", "sidecar")]
    assert gamma["status"] == "failed" and "decode" in gamma["reason"]
    cover_row = rows[("movie:delta:2004", "poster", "embedded")]
    assert (cover_row["id"], cover_row["status"], cover_row["width"]) == (embedded["id"], "ok", 300)
    variants = await db.fetch_all(
        "SELECT width, height, file, size FROM image_variants WHERE image_id = %s ORDER BY width",
        (poster["id"],),
    )
    assert [v[0] for v in variants] == [w for w in VARIANT_WIDTHS if w < 600] + [600]
    for width, height, file, size in variants:
        on_disk = data / file
        assert on_disk.stat().st_size == size
        with Image.open(on_disk) as img:
            assert (img.format, img.size) == ("WEBP", (width, height))
    # one folder per distinct content: alpha poster (shared with beta), fanart, the cover
    assert len([p for p in data.glob("*/*") if p.is_dir()]) == 3
    assert snapshot(media) == before  # nothing written beside the media
    alpha = await _item(db, lib, "movie:alpha:2001")
    async with db.connection() as conn:
        shown = await item_images(conn, [alpha])
    refs = shown[alpha]
    assert set(refs) == {"poster", "fanart"}
    assert refs["poster"].url == f"/api/v1/images/{poster['id']}?v={poster['hash'][:16]}"
    before_change = await browse_urls(db, lib, alpha)
    assert before_change == (refs["poster"].url, refs["poster"].url)

    # a changed sidecar is pending again after the rescan, and its new content replaces the old
    picture(media / "Alpha (2001)" / "poster.jpg", "500x750", "smptebars")
    queued.clear()
    await Scanner(db).scan(lib, on_images=on_images, full=True)
    assert queued == [poster["id"]]
    assert await process_image(db, data, poster["id"]) == "ok"
    again = (await image_rows(db, lib))[("movie:alpha:2001", "poster", "sidecar")]
    assert again["hash"] != poster["hash"] and again["width"] == 500
    # browse names the new content: a client caching the old URL for good never shows it again
    after_change = await browse_urls(db, lib, alpha)
    assert after_change == (f"/api/v1/images/{poster['id']}?v={again['hash'][:16]}",) * 2
    assert after_change[0] != before_change[0]
    # the old content is still named by beta's poster; nothing is unused yet
    used = {r["hash"] for r in (await image_rows(db, lib)).values() if r["hash"]}
    assert remove_unused_variants(data, used, min_age=0) == 0
    used.discard(poster["hash"])
    assert remove_unused_variants(data, used, min_age=0) == 1
    assert not (data / poster["hash"][:2] / poster["hash"]).exists()


async def browse_urls(db: Database, lib: int, item_id: int) -> tuple[str, str]:
    """The poster URL of ``item_id`` in the movies list and in its detail (an admin's view)."""
    async with db.connection() as conn:
        viewer = await load_viewer(conn, 0, admin=True)
        page = await list_items(
            conn, viewer, kind="movie", library_ids=[lib], sort="title", order="asc",
            filters=Filters(), cursor=None, limit=50,
        )  # fmt: skip
        detail = await item_detail(conn, viewer, item_id)
    [listed] = [i for i in map(json.loads, page.items) if i["id"] == item_id]
    assert detail is not None
    [shown] = [g for g in detail["images"] if g["kind"] == "poster"]
    assert detail["poster"]["url"] == listed["poster"]["url"]
    return listed["poster"]["url"], shown["url"]


async def _item(db: Database, lib: int, key: str) -> int:
    row = await db.fetch_one("SELECT id FROM items WHERE library_id = %s AND key = %s", (lib, key))
    assert row is not None
    return int(row[0])


async def test_bombs_vanished_and_gone_rows(db: Database, tmp_path: Path) -> None:
    media, data = tmp_path / "media", tmp_path / "data"
    folder = media / "Bomb (2005)"
    folder.mkdir(parents=True)
    (folder / "Bomb (2005).mkv").write_bytes(b"")
    # a PNG that says it is 12,000 x 12,000 (144 M pixels, under Pillow's own error limit)
    # with a few bytes of data: refused before decoding
    (folder / "poster.png").write_bytes(png_header(12000, 12000))
    picture(folder / "fanart.jpg", "320x180")
    lib = await new_library(db, media)
    await Scanner(db).scan(lib)
    rows = await image_rows(db, lib)
    bomb = rows[("movie:bomb:2005", "poster", "sidecar")]
    assert await process_image(db, data, bomb["id"]) == "failed"
    assert (
        "pixels" in (await image_rows(db, lib))[("movie:bomb:2005", "poster", "sidecar")]["reason"]
    )
    fanart = rows[("movie:bomb:2005", "fanart", "sidecar")]
    (folder / "fanart.jpg").unlink()
    assert await process_image(db, data, fanart["id"]) == "failed"
    assert (
        "cannot read"
        in (await image_rows(db, lib))[("movie:bomb:2005", "fanart", "sidecar")]["reason"]
    )
    assert await process_image(db, data, 2**62) is None
