"""The library walk on real temporary trees: sidecars, skips, loops, unreadable and read-only trees."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from revenge.modules.library.walk import Folder, MediaFile, WalkStats, walk
from tests.read_only_support import run_read_only, snapshot

PYTHON_SRC = str(Path(__file__).resolve().parents[2] / "python")


def _touch(root: Path, rel: str, data: bytes = b"") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _files(records: list[Folder | MediaFile]) -> list[str]:
    return [r.relpath for r in records if isinstance(r, MediaFile)]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    for rel in [
        "The Matrix (1999)/The Matrix (1999).mkv",
        "The Matrix (1999)/The Matrix (1999).nfo",
        "The Matrix (1999)/The Matrix (1999).en.srt",
        "The Matrix (1999)/The Matrix (1999).de.forced.ass",
        "The Matrix (1999)/The Matrix (1999)-poster.jpg",
        "The Matrix (1999)/The Matrix (1999)-fanart.jpg",
        "The Matrix (1999)/poster.jpg",
        "The Matrix (1999)/fanart.jpg",
        "The Matrix (1999)/movie.nfo",
        "The Matrix (1999)/Trailers/Official Trailer.mp4",
        "Show/tvshow.nfo",
        "Show/folder.jpg",
        "Show/banner.jpg",
        "Show/season01-poster.jpg",
        "Show/season-specials-poster.jpg",
        "Show/Season 1/Show - S01E01.mkv",
        "Show/Season 1/Show - S01E01.nfo",
        "Show/Season 1/Show - S01E01-thumb.jpg",
        "Show/Season 1/Show - S01E02.mp4",
        "Show/Season 1/Show - S01E02.jpg",
        "Show/Season 1/notes.txt",
    ]:
        _touch(tmp_path, rel, b"x" * 7)
    return tmp_path


def test_videos_folders_and_sidecars(library: Path) -> None:
    stats = WalkStats()
    records = list(walk(library, stats))
    assert _files(records) == [
        "Show/Season 1/Show - S01E01.mkv",
        "Show/Season 1/Show - S01E02.mp4",
        "The Matrix (1999)/The Matrix (1999).mkv",
        "The Matrix (1999)/Trailers/Official Trailer.mp4",
    ]
    by_rel = {r.relpath: r for r in records}
    movie = by_rel["The Matrix (1999)/The Matrix (1999).mkv"]
    assert isinstance(movie, MediaFile)
    st = os.stat(library / movie.relpath)
    assert (movie.size, movie.mtime_ns, movie.inode, movie.device) == (
        7,
        st.st_mtime_ns,
        st.st_ino,
        st.st_dev,
    )
    assert movie.path == str(library / movie.relpath)
    cars = {(c.kind, c.role, c.language, c.forced) for c in movie.sidecars}
    assert cars == {
        ("nfo", "file", None, False),
        ("subtitle", "subtitle", "en", False),
        ("subtitle", "subtitle", "de", True),
        ("image", "poster", None, False),
        ("image", "fanart", None, False),
    }
    movie_folder = by_rel["The Matrix (1999)"]
    assert isinstance(movie_folder, Folder)
    assert {(c.kind, c.role) for c in movie_folder.sidecars} == {
        ("image", "poster"),
        ("image", "fanart"),
        ("nfo", "movie"),
    }
    show = by_rel["Show"]
    assert isinstance(show, Folder)
    assert {(c.kind, c.role, c.season) for c in show.sidecars} == {
        ("nfo", "tvshow", None),
        ("image", "poster", None),
        ("image", "banner", None),
        ("image", "season-poster", 1),
        ("image", "season-poster", 0),
    }
    ep1 = by_rel["Show/Season 1/Show - S01E01.mkv"]
    ep2 = by_rel["Show/Season 1/Show - S01E02.mp4"]
    assert isinstance(ep1, MediaFile) and isinstance(ep2, MediaFile)
    assert {(c.kind, c.role) for c in ep1.sidecars} == {("nfo", "file"), ("image", "thumb")}
    assert {(c.kind, c.role) for c in ep2.sidecars} == {("image", "primary")}
    # A folder's own record comes before its videos, so the metadata chain has it first.
    order = [r.relpath for r in records]
    assert order.index("The Matrix (1999)") < order.index("The Matrix (1999)/The Matrix (1999).mkv")
    assert stats.files == 4 and stats.errors == 0


def test_skips_hidden_nas_and_sample(tmp_path: Path) -> None:
    keep = "Movie (2010)/Movie (2010).mkv"
    for rel in [
        keep,
        ".hidden/Movie.mkv",
        "Movie (2010)/.Movie (2010).mkv",
        "@eaDir/Movie (2010).mkv/SYNOVIDEO_VIDEO_SCREENSHOT.mkv",
        "Movie (2010)/@eaDir/thumb.mkv",
        ".AppleDouble/Movie.mkv",
        "#recycle/Old.mkv",
        "$RECYCLE.BIN/Old.mkv",
        "lost+found/0001.mkv",
        "Movie (2010)/Sample/movie-sample.mkv",
        "Movie (2010)/movie-sample.mkv",
        "Movie (2010)/sample.mkv",
        "Movie (2010)/Movie (2010).iso",
        "Movie (2010)/Movie (2010).txt",
        "Ignored/.nomedia",
        "Ignored/Movie.mkv",
    ]:
        _touch(tmp_path, rel)
    stats = WalkStats()
    assert _files(list(walk(tmp_path, stats))) == [keep]
    assert stats.errors == 0
    assert stats.skipped >= 10


def test_symlink_loop_is_walked_once(tmp_path: Path) -> None:
    _touch(tmp_path, "A/Movie (2010).mkv")
    _touch(tmp_path, "A/B/Other (2011).mkv")
    os.symlink(tmp_path / "A", tmp_path / "A" / "B" / "back-to-A")
    os.symlink(tmp_path, tmp_path / "A" / "root-again")
    outside = Path(tempfile.mkdtemp())
    try:
        _touch(outside, "Linked (2012).mkv")
        os.symlink(outside, tmp_path / "linked")
        stats = WalkStats()
        files = _files(list(walk(tmp_path, stats)))
    finally:
        shutil.rmtree(outside)
    assert sorted(files) == [
        "A/B/Other (2011).mkv",
        "A/Movie (2010).mkv",
        "linked/Linked (2012).mkv",
    ]
    assert stats.errors == 2
    assert all("symlink loop" in p for p in stats.problems)


def test_broken_link_and_vanished_folder(tmp_path: Path) -> None:
    _touch(tmp_path, "A/First (2001).mkv")
    _touch(tmp_path, "B/Second (2002).mkv")
    os.symlink(tmp_path / "nowhere.mkv", tmp_path / "A" / "Broken (2003).mkv")
    stats = WalkStats()
    seen = []
    for record in walk(tmp_path, stats):
        seen.append(record.relpath)
        if record.relpath == "A/First (2001).mkv":
            shutil.rmtree(tmp_path / "B")  # vanishes after the root was listed
    assert seen == ["A/First (2001).mkv"]
    assert stats.errors == 2
    assert any(p.startswith("vanished") and "Broken" in p for p in stats.problems)
    assert any(
        p.startswith("vanished") and p.endswith("No such file or directory") for p in stats.problems
    )


def test_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(walk(tmp_path / "absent"))


def test_non_utf8_names_round_trip(tmp_path: Path) -> None:
    raw_dir = os.fsencode(tmp_path) + b"/Am\xe9lie (2001)"
    os.mkdir(raw_dir)
    raw_file = raw_dir + b"/Am\xe9lie (2001) \xff.mkv"
    with open(raw_file, "wb") as fh:
        fh.write(b"payload")
    for root in (str(tmp_path), os.fsencode(tmp_path)):
        (record,) = [r for r in walk(root) if isinstance(r, MediaFile)]
        assert os.fsencode(record.path) == raw_file
        with open(record.path, "rb") as fh:  # still playable: the path opens the very file
            assert fh.read() == b"payload"
        assert record.relpath == os.fsdecode(b"Am\xe9lie (2001)/Am\xe9lie (2001) \xff.mkv")


def test_streams_with_flat_memory(tmp_path: Path) -> None:
    for d in range(40):
        folder = tmp_path / f"Movie {d:03d} (2001)"
        folder.mkdir()
        for f in range(50):
            (folder / f"Movie {d:03d} (2001) - part{f}.mkv").touch()
    it = walk(tmp_path)
    assert isinstance(it, Iterator)
    tracemalloc.start()
    count = 0
    try:
        for _ in it:
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 2000
    # One folder's listing at a time: far below what 2,000 records held at once would take.
    assert peak < 400_000, peak


_CHILD = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {src!r})
    from revenge.modules.library.walk import MediaFile, WalkStats, walk
    {drop}
    stats = WalkStats()
    files = [r.relpath for r in walk({root!r}, stats) if isinstance(r, MediaFile)]
    {probe}
    print(json.dumps({{"files": files, "problems": stats.problems, "extra": extra}}))
    """
)


def _child(root: Path, *, drop: str = "", probe: str = "extra = None") -> list[str]:
    """The command of a child that walks ``root`` and prints what it found as JSON."""
    code = _CHILD.format(src=PYTHON_SRC, root=str(root), drop=drop, probe=probe)
    return [sys.executable, "-c", code]


def _run_child(root: Path, *, drop: str = "") -> dict[str, object]:
    out = subprocess.run(_child(root, drop=drop), capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_unreadable_folder_is_skipped_not_fatal() -> None:
    # Root reads through chmod 000, so the walk runs in a child that gives up root first (after
    # its imports: the interpreter lives under /root, which another user may not read).
    base = Path(tempfile.mkdtemp())
    try:
        base.chmod(0o755)
        _touch(base, "Open/Open (2001).mkv")
        _touch(base, "Locked/Hidden (2002).mkv")
        for p in base.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        (base / "Locked").chmod(0o000)
        root = os.geteuid() == 0
        drop = "os.setgroups([]); os.setgid(65534); os.setuid(65534)" if root else ""
        result = _run_child(base, drop=drop)
    finally:
        (base / "Locked").chmod(0o755)
        shutil.rmtree(base)
    assert result["files"] == ["Open/Open (2001).mkv"]
    problems = result["problems"]
    assert isinstance(problems, list) and len(problems) == 1
    assert problems[0].startswith("unreadable folder") and "Permission denied" in problems[0]


def test_read_only_tree_is_walked_and_never_written(library: Path, tmp_path: Path) -> None:
    """The walk on a read-only bind mount: it finds everything, and nothing on disk changes."""
    before = snapshot(library)

    def child(mount: Path) -> list[str]:
        probe = (
            "extra = None\n"
            "try:\n"
            f"    open({str(mount / 'probe.txt')!r}, 'w')\n"
            "except OSError as err:\n"
            "    extra = err.errno"
        )
        return _child(mount, probe=probe)

    result = json.loads(run_read_only(library, child).stdout)
    import errno

    assert result["extra"] == errno.EROFS  # the tree really was read-only
    assert result["files"] == [
        "Show/Season 1/Show - S01E01.mkv",
        "Show/Season 1/Show - S01E02.mp4",
        "The Matrix (1999)/The Matrix (1999).mkv",
        "The Matrix (1999)/Trailers/Official Trailer.mp4",
    ]
    assert result["problems"] == []
    assert snapshot(library) == before
