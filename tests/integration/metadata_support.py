"""Helpers of the metadata tests: small fake videos, a scanned library, an item's fields."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from revenge.infra.db import Database
from revenge.modules.library.scan import Scanner


def video(path: Path) -> None:
    """A tiny file with a video extension (the scan does not probe it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x1a\x45\xdf\xa3" + os.urandom(64))


async def scan_new_library(db: Database, root: Path, kind: str) -> dict[str, int]:
    """A new library of ``kind`` over ``root``, scanned once: ``{"kind:title": item id}``."""
    row = await db.fetch_one(
        "INSERT INTO libraries (name, kind) VALUES (%s, %s) RETURNING id",
        (f"meta-{os.urandom(4).hex()}", kind),
    )
    assert row is not None
    raw = os.fsencode(root)
    await db.execute(
        "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, %s)",
        (row[0], raw, raw.decode()),
    )
    await Scanner(db).scan(int(row[0]))
    rows = await db.fetch_all(
        "SELECT kind || ':' || title, id FROM items WHERE library_id = %s", (row[0],)
    )
    return {str(r[0]): int(r[1]) for r in rows}


_NAMES = ("overview", "tagline", "year", "genres", "ids", "sources", "rating", "people",
          "runtime", "premiered", "content_rating", "studios")  # fmt: skip


async def item_values(db: Database, item_id: int) -> dict[str, Any]:
    """The fields a provider may fill (``ids``: provider_ids, ``sources``: field_sources)."""
    row = await db.fetch_one(
        "SELECT overview, tagline, year, genres, provider_ids, field_sources, rating, people,"
        " runtime_seconds, premiered::text, content_rating, studios FROM items WHERE id = %s",
        (item_id,),
    )
    assert row is not None
    return dict(zip(_NAMES, row, strict=True))
