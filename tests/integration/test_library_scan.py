"""The scanner on real files and the real PostgreSQL: incremental scans, moves, missing files,
hostile names, a read-only tree, cancel and delete mid-scan, probes with the real ffprobe."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from revenge.infra.db import Database
from revenge.modules.library import remove_missing
from revenge.modules.library.fingerprint import WINDOW, record_fingerprint
from revenge.modules.library.probe import probe_file
from revenge.modules.library.scan import Scanner
from revenge.modules.playback import Transcoder
from tests.read_only_support import run_read_only, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

MOVIES = [
    "The Matrix (1999)/The Matrix (1999).mkv",
    "The Matrix (1999)/The Matrix (1999)-trailer.mkv",
    "The Matrix (1999)/extras/Making Of.mkv",
    "Avatar (2009)/Avatar (2009) - 4K.mkv",
    "Avatar (2009)/Avatar (2009) - 1080p.mkv",
    "Inception.2010.1080p.BluRay.x264-GRP.mkv",
    "Kill Bill (2003)/Kill Bill (2003) cd1.avi",
    "Kill Bill (2003)/Kill Bill (2003) cd2.avi",
]
SHOWS = [
    "Lost/Season 1/Lost - S01E01 - Pilot.mkv",
    "Lost/Season 1/Lost - S01E02-E03.mkv",
    "Lost/Specials/Lost - S00E01.mkv",
    "Daily Show/Daily Show 2024-04-23.mkv",
]


def touch(root: Path, rel: str | bytes, data: bytes = b"") -> Path:
    path = Path(os.fsdecode(os.path.join(os.fsencode(root), os.fsencode(rel))))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


async def new_library(db: Database, root: Path | bytes, kind: str = "movies") -> int:
    row = await db.fetch_one(
        "INSERT INTO libraries (name, kind) VALUES (%s, %s) RETURNING id",
        (f"lib-{os.urandom(4).hex()}", kind),
    )
    assert row is not None
    raw = os.fsencode(root)
    await db.execute(
        "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, %s)",
        (row[0], raw, raw.decode("utf-8", "replace")),
    )
    return int(row[0])


async def items(db: Database, library: int) -> dict[str, dict[str, Any]]:
    rows = await db.fetch_all(
        "SELECT key, id, kind, title, year, parent_id, series_id, season_number, episode_number,"
        " episode_number_end, missing_since IS NOT NULL FROM items WHERE library_id = %s",
        (library,),
    )
    names = ("id", "kind", "title", "year", "parent", "series", "season", "ep", "ep_end", "missing")
    return {r[0]: dict(zip(names, r[1:], strict=True)) for r in rows}


async def test_movies_first_scan_then_unchanged_rescan(db: Database, tmp_path: Path) -> None:
    for rel in MOVIES:
        touch(tmp_path, rel)
    touch(tmp_path, "The Matrix (1999)/movie.nfo", b"<movie><title>The Matrix</title>"
          b"<genre>Action</genre><uniqueid type='imdb'>tt0133093</uniqueid></movie>")  # fmt: skip
    lib = await new_library(db, tmp_path)
    scanner = Scanner(db, batch_size=3)
    first = await scanner.scan(lib)
    assert (first.outcome, first.files, first.new) == ("done", len(MOVIES), len(MOVIES))
    found = await items(db, lib)
    movies = {k: v for k, v in found.items() if v["kind"] == "movie"}
    assert sorted((v["title"], v["year"]) for v in movies.values()) == [
        ("Avatar", 2009), ("Inception", 2010), ("Kill Bill", 2003), ("The Matrix", 1999)
    ]  # fmt: skip
    matrix = movies["movie:the matrix:1999"]["id"]
    extras = [v for v in found.values() if v["kind"] == "extra"]
    assert len(extras) == 2 and all(e["parent"] == matrix for e in extras)
    row = await db.fetch_one("SELECT genres, provider_ids FROM items WHERE id = %s", (matrix,))
    assert row == (["Action"], {"imdb": "tt0133093"})
    files = await db.fetch_all(
        "SELECT i.key, f.version_label, f.part FROM media_files f JOIN items i ON i.id = f.item_id"
        " WHERE f.library_id = %s AND i.kind = 'movie' ORDER BY 1, 2, 3",
        (lib,),
    )
    assert files == [
        ("movie:avatar:2009", "1080p", None), ("movie:avatar:2009", "4K", None),
        ("movie:inception:2010", None, None),
        ("movie:kill bill:2003", None, 1), ("movie:kill bill:2003", None, 2),
        ("movie:the matrix:1999", None, None),
    ]  # fmt: skip
    counts = await db.fetch_all(
        "SELECT kind, n FROM item_counts WHERE library_id = %s AND n > 0 ORDER BY 1", (lib,)
    )
    assert counts == [("extra", 2), ("movie", 4)]
    again = await scanner.scan(lib)
    assert (again.unchanged, again.new, again.changed, again.items) == (len(MOVIES), 0, 0, 0)


async def test_tv_hierarchy_multi_episode_specials_and_dates(db: Database, tmp_path: Path) -> None:
    for rel in SHOWS:
        touch(tmp_path, rel)
    lib = await new_library(db, tmp_path, "tv")
    report = await Scanner(db).scan(lib)
    assert report.new == len(SHOWS)
    found = await items(db, lib)
    lost = found["series:lost"]
    s1, s0 = found["series:lost:s1"], found["series:lost:s0"]
    assert s1["parent"] == lost["id"] and s1["series"] == lost["id"] and s0["title"] == "Specials"
    pilot = found["series:lost:s1:e1"]
    assert (pilot["title"], pilot["parent"], pilot["season"], pilot["ep"]) == (
        "Pilot",
        s1["id"],
        1,
        1,
    )
    double = found["series:lost:s1:e2-3"]
    assert (double["ep"], double["ep_end"]) == (2, 3)
    assert found["series:daily show:s-:d2024-04-23"]["series"] == found["series:daily show"]["id"]


async def test_a_rename_keeps_the_item_and_watch_state(db: Database, tmp_path: Path) -> None:
    old = touch(tmp_path, "Heat (1995)/Heat (1995).mkv", b"x" * 100)
    lib = await new_library(db, tmp_path)
    scanner = Scanner(db)
    await scanner.scan(lib)
    item = (await items(db, lib))["movie:heat:1995"]["id"]
    user = await db.fetch_one(
        "INSERT INTO users (username, password_hash) VALUES (%s, 'x') RETURNING id",
        (f"u{os.urandom(4).hex()}",),
    )
    assert user is not None
    await db.execute(
        "INSERT INTO user_item_state (user_id, item_id, position_ms, played) VALUES (%s, %s, 5000, false)",
        (user[0], item),
    )
    (tmp_path / "Crime").mkdir()
    old.rename(tmp_path / "Crime" / "Heat.1995.1080p.mkv")
    report = await scanner.scan(lib)
    assert (report.moved, report.new, report.missing) == (1, 0, 0)
    row = await db.fetch_one(
        "SELECT f.item_id, f.path FROM media_files f WHERE f.library_id = %s", (lib,)
    )
    assert row is not None and row[0] == item
    assert bytes(row[1]) == os.fsencode(tmp_path / "Crime" / "Heat.1995.1080p.mkv")
    state = await db.fetch_one(
        "SELECT position_ms FROM user_item_state WHERE item_id = %s", (item,)
    )
    assert state == (5000,)


async def test_a_copy_to_another_filesystem_keeps_the_item_and_watch_state(
    db: Database, tmp_path: Path
) -> None:
    """A move to another disk is a copy and a delete: a new inode (and device). The content
    fingerprint the probe job records finds it, under a name that parses to another title;
    a different content of the same size is a new item."""
    shm = Path("/dev/shm")
    other = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else tmp_path))
    try:
        size = 3 * WINDOW + 17
        heat = touch(tmp_path, "Heat (1995)/Heat (1995).mkv", os.urandom(size))
        ronin = touch(tmp_path, "Ronin (1998)/Ronin (1998).mkv", os.urandom(size))
        lib = await new_library(db, tmp_path)
        await db.execute(
            "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, %s)",
            (lib, os.fsencode(other), str(other)),
        )
        written: list[int] = []

        async def on_files(ids: Any) -> None:
            written.extend(ids)

        scanner = Scanner(db)
        await scanner.scan(lib, on_files=on_files)
        for file_id in written:  # what the media_probe job does first
            assert await record_fingerprint(db, file_id) is not None
        before = await items(db, lib)
        heat_item, ronin_item = before["movie:heat:1995"]["id"], before["movie:ronin:1998"]["id"]
        user = await db.fetch_one(
            "INSERT INTO users (username, password_hash) VALUES (%s, 'x') RETURNING id",
            (f"u{os.urandom(4).hex()}",),
        )
        assert user is not None
        await db.execute(
            "INSERT INTO user_item_state (user_id, item_id, position_ms, played)"
            " VALUES (%s, %s, 5000, false), (%s, %s, 0, true)",
            (user[0], heat_item, user[0], ronin_item),
        )
        old_row = await db.fetch_one(
            "SELECT id, inode, fingerprint FROM media_files WHERE item_id = %s", (heat_item,)
        )
        assert old_row is not None
        # copied (not renamed) to the other root under another name, then deleted
        moved = other / "Heat Director's Cut" / "Heat Director's Cut.mkv"
        moved.parent.mkdir()
        shutil.copyfile(heat, moved)
        heat.unlink()
        # ronin replaced by another file of the same size: not the same content
        touch(other, "Ronin Remake/Ronin Remake.mkv", os.urandom(size))
        ronin.unlink()
        report = await scanner.scan(lib)
        assert (report.moved, report.new, report.missing) == (1, 1, 1)
        row = await db.fetch_one(
            "SELECT id, item_id, path, inode, fingerprint, missing_since FROM media_files"
            " WHERE path = %s",
            (os.fsencode(moved),),
        )
        assert row is not None
        assert (row[0], row[1], row[4], row[5]) == (old_row[0], heat_item, old_row[2], None)
        assert row[3] != old_row[1]  # a new inode: only the content said it was the same
        after = await items(db, lib)
        assert after["movie:heat:1995"]["missing"] is False
        assert "movie:heat director's cut" not in str(after)
        assert after["movie:ronin:1998"]["missing"] is True  # kept for its grace period
        states = await db.fetch_all(
            "SELECT item_id, position_ms, played FROM user_item_state WHERE user_id = %s"
            " ORDER BY item_id",
            (user[0],),
        )
        assert states == sorted([(heat_item, 5000, False), (ronin_item, 0, True)])
        again = await scanner.scan(lib)
        assert (again.moved, again.new, again.unchanged) == (0, 0, 2)
    finally:
        shutil.rmtree(other, ignore_errors=True)


async def test_vanished_files_are_kept_missing_then_cleaned_up(
    db: Database, tmp_path: Path
) -> None:
    keep = touch(tmp_path, "Alien (1979)/Alien (1979).mkv")
    gone = touch(tmp_path, "Aliens (1986)/Aliens (1986).mkv")
    lib = await new_library(db, tmp_path)
    scanner = Scanner(db)
    await scanner.scan(lib)
    gone.unlink()
    report = await scanner.scan(lib)
    assert report.missing == 1
    found = await items(db, lib)
    assert found["movie:aliens:1986"]["missing"] and not found["movie:alien:1979"]["missing"]
    # within the grace period the cleanup keeps it; past it, it goes
    async with db.connection() as conn:
        await remove_missing(conn)
    assert "movie:aliens:1986" in await items(db, lib)
    await db.execute(
        "UPDATE media_files SET missing_since = now() - interval '8 days' WHERE library_id = %s"
        " AND missing_since IS NOT NULL",
        (lib,),
    )
    await db.execute(
        "UPDATE items SET missing_since = now() - interval '8 days' WHERE library_id = %s"
        " AND missing_since IS NOT NULL",
        (lib,),
    )
    async with db.connection() as conn:
        assert await remove_missing(conn) >= 2
    assert set(await items(db, lib)) == {"movie:alien:1979"}
    assert keep.exists()
    # a file that comes back is found again
    gone.parent.mkdir(exist_ok=True)
    gone.write_bytes(b"")
    assert (await scanner.scan(lib)).new == 1


async def test_an_unlistable_root_marks_nothing_missing(db: Database, tmp_path: Path) -> None:
    touch(tmp_path / "nas", "Up (2009)/Up (2009).mkv")
    lib = await new_library(db, tmp_path / "nas")
    scanner = Scanner(db)
    await scanner.scan(lib)
    (tmp_path / "nas").rename(tmp_path / "unmounted")
    report = await scanner.scan(lib)
    assert report.roots_failed and report.missing == 0
    assert not (await items(db, lib))["movie:up:2009"]["missing"]


async def test_hostile_names_are_kept_byte_for_byte(db: Database, tmp_path: Path) -> None:
    names = [
        b"Am\xe9lie (2001)/Am\xe9lie (2001).mkv",  # Latin-1, not UTF-8
        b"Bell\x07 (2000)/Bell\x07 (2000).mkv",  # a control character
        b"\xff\xfe/\x80.mkv",
        # ~3.9 KB: with the temporary folder in front it stays under PATH_MAX (4096)
        ("L" * 200 + "/").encode() * 19 + b"Long (2020).mkv",
    ]
    for name in names:
        touch(tmp_path, name)
    lib = await new_library(db, tmp_path)
    report = await Scanner(db).scan(lib)
    assert (report.new, report.errors) == (len(names), 0)
    stored = await db.fetch_all("SELECT path FROM media_files WHERE library_id = %s", (lib,))
    want = {os.path.join(os.fsencode(tmp_path), n) for n in names}
    assert {bytes(p[0]) for p in stored} == want
    for (path,) in stored:
        assert os.path.exists(os.fsdecode(bytes(path)))  # reopens from what was stored
    titles = {
        r[0] for r in await db.fetch_all("SELECT title FROM items WHERE library_id = %s", (lib,))
    }
    assert "Amélie" in titles and all("\x07" not in t for t in titles)


async def test_delete_and_cancel_while_scanning(db: Database, tmp_path: Path) -> None:
    for n in range(60):
        touch(tmp_path, f"Film {n} ({1950 + n})/Film {n} ({1950 + n}).mkv")
    lib = await new_library(db, tmp_path)
    scanner = Scanner(db, batch_size=10)

    async def cancel(done: int, message: str) -> None:
        await db.execute("UPDATE libraries SET scan_cancel = true WHERE id = %s", (lib,))

    report = await scanner.scan(lib, progress=cancel)
    assert report.outcome == "cancelled" and 0 < report.files < 60
    assert report.missing == 0  # a stopped scan marks nothing missing

    async def delete(done: int, message: str) -> None:
        await db.execute("DELETE FROM libraries WHERE id = %s", (lib,))

    report = await scanner.scan(lib, progress=delete, full=True)
    assert report.outcome == "library_deleted"
    assert await db.fetch_one("SELECT count(*) FROM items WHERE library_id = %s", (lib,)) == (0,)
    assert await db.fetch_one("SELECT count(*) FROM media_files WHERE library_id = %s", (lib,)) == (
        0,
    )


async def test_probe_records_streams_and_corrupt_files(db: Database, tmp_path: Path) -> None:
    good = tmp_path / "Clip (2020)" / "Clip (2020).mkv"
    good.parent.mkdir()
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
         "-f", "lavfi", "-i", "sine=duration=2", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", "-metadata:s:a:0", "language=eng", "-shortest", str(good)],
        check=True,
    )  # fmt: skip
    touch(tmp_path, "Broken (2021)/Broken (2021).mkv", b"\x1aE\xdf\xa3 not really matroska")
    touch(tmp_path, "Empty (2022)/Empty (2022).mkv")
    lib = await new_library(db, tmp_path)
    ids: list[int] = []

    async def collect(files: Any) -> None:
        ids.extend(files)

    await Scanner(db).scan(lib, on_files=collect)
    transcoder = await Transcoder.discover()
    assert sorted(await asyncio.gather(*(probe_file(db, transcoder, i) for i in ids))) == [
        "failed", "failed", "ok"
    ]  # fmt: skip
    rows = await db.fetch_all(
        "SELECT i.key, f.probe_status, f.probe_reason, f.height, f.container, i.video_height,"
        " i.runtime_seconds FROM media_files f JOIN items i ON i.id = f.item_id"
        " WHERE f.library_id = %s ORDER BY 1",
        (lib,),
    )
    by_key = {r[0]: r[1:] for r in rows}
    status, reason, height, container, item_height, runtime = by_key["movie:clip:2020"]
    assert (status, reason, height, item_height, runtime) == ("ok", None, 240, 240, 2)
    assert "matroska" in container
    for key in ("movie:broken:2021", "movie:empty:2022"):
        assert by_key[key][0] == "failed" and by_key[key][1]
    streams = await db.fetch_all(
        "SELECT s.kind, s.codec, s.language FROM media_streams s JOIN media_files f"
        " ON f.id = s.file_id WHERE f.library_id = %s ORDER BY s.index",
        (lib,),
    )
    assert streams == [("video", "h264", None), ("audio", "aac", "eng")]
    # the keyframe index is made at probe time, for the file as it is, so that a first
    # playback finds it (playback_media, valid while size and mtime match)
    kept = await db.fetch_all(
        "SELECT m.size, m.mtime_ns, m.packets FROM playback_media m JOIN media_files f"
        " ON f.id = m.file_id WHERE f.library_id = %s",
        (lib,),
    )
    assert len(kept) == 1
    size, mtime_ns, packets = kept[0]
    assert (size, mtime_ns) == (good.stat().st_size, good.stat().st_mtime_ns)
    assert 0.0 <= packets["keyframes"][0] < 0.1
    assert sum(packets["chunk_bytes"]) > 0 and packets["video_end"] > 1.9


_CHILD = """
import asyncio, json, os, sys
sys.path.insert(0, {src!r})
from revenge.infra.db import Database, PoolConfig
from revenge.modules.library.scan import Scanner
from revenge.modules.library.probe import probe_file
from revenge.modules.playback import Transcoder

async def main():
    db = Database({url!r}, PoolConfig(min_conns=1, max_conns=2))
    await db.start()
    row = await db.fetch_one(
        "INSERT INTO libraries (name, kind) VALUES (%s, 'movies') RETURNING id", ({name!r},))
    await db.execute("INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, 'ro')",
                     (row[0], os.fsencode({mount!r})))
    ids = []
    async def files(f): ids.extend(f)
    report = await Scanner(db).scan(row[0], on_files=files)
    transcoder = await Transcoder.discover()
    statuses = [await probe_file(db, transcoder, i) for i in ids]
    try:
        open(os.path.join({mount!r}, "probe.txt"), "w")
        erofs = None
    except OSError as err:
        erofs = err.errno
    await db.close()
    print(json.dumps({{"new": report.new, "errors": report.errors, "statuses": statuses,
                      "erofs": erofs}}))

asyncio.run(main())
"""


async def test_a_read_only_tree_is_scanned_and_never_written(
    migrated_url: str, tmp_path: Path
) -> None:
    """Scan and probe through a read-only bind mount: everything found, nothing on disk changes."""
    for rel in MOVIES[:3]:
        touch(tmp_path, rel, b"not a video")
    before = snapshot(tmp_path)
    src = str(Path(__file__).resolve().parents[2] / "python")
    name = f"ro-{os.urandom(4).hex()}"

    def child(mount: Path) -> list[str]:
        code = _CHILD.format(src=src, url=migrated_url, name=name, mount=str(mount))
        return [sys.executable, "-c", code]

    out = await asyncio.to_thread(run_read_only, tmp_path, child)
    import errno

    result = json.loads(out.stdout)
    assert result["erofs"] == errno.EROFS  # the tree really was read-only
    assert (result["new"], result["errors"]) == (3, 0)
    assert result["statuses"] == ["failed"] * 3  # probed (not videos), recorded, nothing written
    assert snapshot(tmp_path) == before


async def test_a_folder_scan_walks_only_the_changed_folders(db: Database, tmp_path: Path) -> None:
    """The watcher's scan (``only``): the top folders holding the changes are walked, and
    only there can files go missing; a folder that vanished marks its own files."""
    for name in MOVIES:
        touch(tmp_path, name)
    for name in SHOWS:
        touch(tmp_path / "tv", name)
    lib = await new_library(db, tmp_path)
    first = await Scanner(db).scan(lib)
    assert first.files == len(MOVIES) + len(SHOWS)
    new = touch(tmp_path, "The Matrix (1999)/The Matrix (1999) - 4K.mkv")
    (tmp_path / "Inception.2010.1080p.BluRay.x264-GRP.mkv").unlink()  # a loose file: the root
    shutil.rmtree(tmp_path / "Kill Bill (2003)")
    report = await Scanner(db).scan(lib, only=[os.fsencode(new)])
    # only the Matrix folder: its 3 old files and the new one
    assert (report.files, report.new, report.unchanged, report.missing) == (4, 1, 3, 0)
    report = await Scanner(db).scan(lib, only=[os.fsencode(tmp_path / "Kill Bill (2003)")])
    assert (report.files, report.missing) == (0, 2)
    found = await items(db, lib)
    assert found["movie:kill bill:2003"]["missing"] is True
    assert found["movie:inception:2010"]["missing"] is False  # not this scan's to say
    report = await Scanner(db).scan(
        lib, only=[os.fsencode(tmp_path / "Inception.2010.1080p.BluRay.x264-GRP.mkv")]
    )
    assert report.files == len(MOVIES) + len(SHOWS) - 3 + 1 and report.missing == 1
    assert (await items(db, lib))["movie:inception:2010"]["missing"] is True


FFMETADATA = """;FFMETADATA1
title={title}
date=2019-03-01

[CHAPTER]
TIMEBASE=1/1000
START=0
END=1000
title=Opening

[CHAPTER]
TIMEBASE=1/1000
START=1000
END=2000
title=The End
"""


async def test_probe_records_chapters_and_embedded_tags_below_nfo(
    db: Database, tmp_path: Path
) -> None:
    """Chapters land in media_chapters; the container's title and date fill title and year
    over the file name's, never over an NFO's or a user's locked field."""
    meta = tmp_path / "meta.txt"
    clips = {"Tagged (2020)": "A Proper Title", "Nfo Said (2021)": "Ignored Tag Title"}
    for folder, title in clips.items():
        meta.write_text(FFMETADATA.format(title=title))
        out = tmp_path / "media" / folder / f"{folder}.mkv"
        out.parent.mkdir(parents=True)
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=2",
             "-i", str(meta), "-map", "0:v", "-map_metadata", "1", "-map_chapters", "1",
             "-c:v", "libx264", "-preset", "ultrafast", str(out)],
            check=True,
        )  # fmt: skip
    (tmp_path / "media" / "Nfo Said (2021)" / "movie.nfo").write_text(
        "<movie><title>From The NFO</title></movie>"
    )
    lib = await new_library(db, tmp_path / "media")
    ids: list[int] = []

    async def collect(files: Any) -> None:
        ids.extend(files)

    await Scanner(db).scan(lib, on_files=collect)
    transcoder = await Transcoder.discover()
    assert [await probe_file(db, transcoder, i) for i in ids] == ["ok", "ok"]
    rows = await db.fetch_all(
        "SELECT key, title, sort_title, year, field_sources FROM items WHERE library_id = %s",
        (lib,),
    )
    by_key = {r[0]: r[1:] for r in rows}
    title, sort, year, sources = by_key["movie:tagged:2020"]
    assert (title, sort, year) == ("A Proper Title", "proper title", 2019)
    assert sources["title"] == sources["year"] == "embedded"
    title, _, year, sources = by_key["movie:nfo said:2021"]
    assert (title, sources["title"], year) == ("From The NFO", "nfo", 2019)
    chapters = await db.fetch_all(
        'SELECT c.index, c.start, c."end", c.title FROM media_chapters c'
        " JOIN media_files f ON f.id = c.file_id JOIN items i ON i.id = f.item_id"
        " WHERE i.key = 'movie:tagged:2020' ORDER BY c.index"
    )
    assert chapters == [(0, 0.0, 1.0, "Opening"), (1, 1.0, 2.0, "The End")]
    # a user's edit is locked: a re-probe leaves it
    await db.execute(
        "UPDATE items SET title = 'Mine', locked_fields = array['title'] WHERE library_id = %s"
        " AND key = 'movie:tagged:2020'",
        (lib,),
    )
    assert [await probe_file(db, transcoder, i) for i in ids] == ["ok", "ok"]
    row = await db.fetch_one(
        "SELECT title FROM items WHERE library_id = %s AND key = 'movie:tagged:2020'", (lib,)
    )
    assert row == ("Mine",)
