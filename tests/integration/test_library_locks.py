"""Locked fields (issue 10 item 3, the top rung of "user > NFO > tags > filename"), over real
files, a real scan and the real PostgreSQL: an administrator's edit (``edit_item``, what
``PATCH /api/v1/items/{id}/metadata`` runs) survives a rescan with a different NFO, and
unlocking lets the next scan's NFO value win; Kodi's ``<lockdata>`` and Jellyfin's
``<lockedfields>`` in an NFO are stored as locks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from revenge.infra.db import Database
from revenge.modules.library.edit import edit_item
from revenge.modules.library.scan import Scanner
from tests.integration.metadata_support import scan_new_library, video

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def nfo(title: str, extra: str = "") -> bytes:
    return (
        f"<movie><title>{title}</title><plot>Plot of {title}.</plot>"
        f"<genre>Drama</genre>{extra}</movie>"
    ).encode()


async def row(db: Database, item_id: int) -> dict[str, Any]:
    found = await db.fetch_one(
        "SELECT title, sort_title, overview, genres, locked_fields, field_sources, library_id"
        " FROM items WHERE id = %s",
        (item_id,),
    )
    assert found is not None
    names = ("title", "sort_title", "overview", "genres", "locks", "sources", "library")
    return dict(zip(names, found, strict=True))


async def edit(db: Database, item_id: int, values: dict[str, Any], **kw: Any) -> dict[str, Any]:
    async with db.transaction() as conn:
        out = await edit_item(conn, item_id, values, kw.get("locked_fields"), kw.get("lock", True))
    assert out is not None
    return out


async def rewrite_nfo(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    # a rescan re-reads a folder's NFO when its video changed: bump the video's mtime
    video_path = next(path.parent.glob("*.mkv"))
    st = video_path.stat()
    os.utime(video_path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


async def test_an_edited_locked_title_survives_a_rescan_and_unlocking_lets_the_nfo_win(
    db: Database, tmp_path: Path
) -> None:
    root = tmp_path / "movies"
    video(root / "Heat (1995)" / "Heat (1995).mkv")
    movie_nfo = root / "Heat (1995)" / "movie.nfo"
    movie_nfo.write_bytes(nfo("Heat"))
    heat = (await scan_new_library(db, root, "movies"))["movie:Heat"]
    before = await row(db, heat)
    assert before["sources"]["title"] == "nfo" and before["locks"] == []

    out = await edit(db, heat, {"title": "The Heat (Director's Cut)", "overview": "Mine."})
    assert out["title"] == "The Heat (Director's Cut)" and out["sort_title"].startswith("heat")
    assert out["locked_fields"] == ["overview", "title"]
    assert out["field_sources"]["title"] == "user"

    # the NFO changes its title and plot; a full rescan reads it: the locked fields stay,
    # an unlocked one (genres) follows the NFO
    await rewrite_nfo(movie_nfo, nfo("Heat 2", "<genre>Crime</genre>"))
    report = await Scanner(db).scan(before["library"], full=True)
    assert report.changed == 1
    after = await row(db, heat)
    assert (after["title"], after["overview"]) == ("The Heat (Director's Cut)", "Mine.")
    assert after["sort_title"] == out["sort_title"]
    assert after["genres"] == ["Drama", "Crime"] and after["locks"] == ["overview", "title"]

    # unlock the title only: the next scan's NFO title wins, the overview stays locked
    out = await edit(db, heat, {}, locked_fields=["overview"])
    assert out["locked_fields"] == ["overview"] and "title" not in out["field_sources"]
    await Scanner(db).scan(before["library"], full=True)
    after = await row(db, heat)
    assert (after["title"], after["overview"]) == ("Heat 2", "Mine.")
    assert after["sources"]["title"] == "nfo" and after["sort_title"] == "heat 000002"

    # an edit with lock false is written but not locked; unlocking all clears every lock
    out = await edit(db, heat, {"genres": ["Thriller"]}, lock=False)
    assert out["genres"] == ["Thriller"] and out["locked_fields"] == ["overview"]
    out = await edit(db, heat, {}, locked_fields=[])
    assert out["locked_fields"] == [] and out["field_sources"]["genres"] == "user"
    await Scanner(db).scan(before["library"], full=True)
    after = await row(db, heat)
    assert after["overview"] == "Plot of Heat 2."
    # an unlocked edit still ranks above the NFO (source user); unlocking it hands it back
    assert after["genres"] == ["Thriller"]


async def test_an_unknown_item_is_none(db: Database) -> None:
    async with db.transaction() as conn:
        assert await edit_item(conn, 2**62, {"title": "x"}, None, True) is None


async def test_nfo_lock_markers_are_stored_and_hold(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "movies"
    video(root / "Alien (1979)" / "Alien (1979).mkv")
    alien_nfo = root / "Alien (1979)" / "movie.nfo"
    alien_nfo.write_bytes(nfo("Alien", "<lockdata>true</lockdata>"))
    video(root / "Ronin (1998)" / "Ronin (1998).mkv")
    ronin_nfo = root / "Ronin (1998)" / "movie.nfo"
    ronin_nfo.write_bytes(nfo("Ronin", "<lockedfields>Name|Cast|Tags</lockedfields>"))
    ids = await scan_new_library(db, root, "movies")
    alien, ronin = await row(db, ids["movie:Alien"]), await row(db, ids["movie:Ronin"])
    # lockdata: every field the NFO gave; lockedfields: the named ones we keep
    assert alien["locks"] == ["genres", "overview", "title"]
    assert ronin["locks"] == ["people", "title"]
    assert alien["sources"]["title"] == "nfo" and ronin["title"] == "Ronin"

    await rewrite_nfo(alien_nfo, nfo("Alien 2"))
    await rewrite_nfo(ronin_nfo, nfo("Ronin 2"))
    await Scanner(db).scan(alien["library"], full=True)
    alien, ronin = await row(db, ids["movie:Alien"]), await row(db, ids["movie:Ronin"])
    assert (alien["title"], alien["overview"]) == ("Alien", "Plot of Alien.")
    # Ronin's title is locked, its plot is not
    assert (ronin["title"], ronin["overview"]) == ("Ronin", "Plot of Ronin 2.")
    # the NFO no longer declares locks: the stored ones stay (removed by an edit only)
    assert ronin["locks"] == ["people", "title"]
