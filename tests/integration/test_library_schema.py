"""The library module's schema on the real PostgreSQL: counts, paths, keys, cascades."""

from __future__ import annotations

import os

import psycopg
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def conn(migrated_url: str):  # type: ignore[no-untyped-def]
    with psycopg.connect(migrated_url) as c:
        yield c
        c.rollback()  # each test's rows vanish with its transaction


def _library(conn: psycopg.Connection, kind: str = "movies") -> int:
    row = conn.execute(
        "INSERT INTO libraries (name, kind) VALUES (%s, %s) RETURNING id",
        (f"lib-{os.urandom(4).hex()}", kind),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _counts(conn: psycopg.Connection, library: int) -> dict[str, int]:
    rows = conn.execute(
        "SELECT kind, n FROM item_counts WHERE library_id = %s", (library,)
    ).fetchall()
    return {k: int(n) for k, n in rows}


def test_item_counts_follow_inserts_and_deletes(conn: psycopg.Connection) -> None:
    lib = _library(conn)
    assert _counts(conn, lib) == dict.fromkeys(("movie", "series", "season", "episode", "extra"), 0)
    conn.execute(
        "INSERT INTO items (library_id, kind, key, title, sort_title)"
        " SELECT %s, 'movie', 'm' || g, 'T' || g, 't' || g FROM generate_series(1, 500) g",
        (lib,),
    )
    assert _counts(conn, lib)["movie"] == 500
    conn.execute("DELETE FROM items WHERE library_id = %s AND key LIKE 'm1%%'", (lib,))
    left = conn.execute("SELECT count(*) FROM items WHERE library_id = %s", (lib,)).fetchone()
    assert left is not None and _counts(conn, lib)["movie"] == left[0] < 500
    conn.execute("DELETE FROM libraries WHERE id = %s", (lib,))
    assert _counts(conn, lib) == {}


def test_a_non_utf8_path_round_trips_exactly(conn: psycopg.Connection) -> None:
    lib = _library(conn)
    name = os.fsdecode(b"/media/movies/Am\xe9lie (2001)/Am\xe9lie.mkv")  # Latin-1 on disk
    assert "\udce9" in name
    conn.execute(
        "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, %s)",
        (lib, os.fsencode("/media/movies"), "/media/movies"),
    )
    row = conn.execute("SELECT path FROM library_roots WHERE library_id = %s", (lib,)).fetchone()
    assert row is not None and os.fsdecode(bytes(row[0])) == "/media/movies"
    with pytest.raises(psycopg.errors.CheckViolation):  # relative paths are refused
        conn.execute(
            "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, 'media', 'x')",
            (lib,),
        )


def test_the_natural_key_keeps_items_single(conn: psycopg.Connection) -> None:
    lib = _library(conn, "tv")
    series = conn.execute(
        "INSERT INTO items (library_id, kind, key, title, sort_title)"
        " VALUES (%s, 'series', 's:show', 'Show', 'show') RETURNING id",
        (lib,),
    ).fetchone()
    assert series is not None
    with pytest.raises(psycopg.errors.CheckViolation):  # an episode names its series
        conn.execute(
            "INSERT INTO items (library_id, kind, key, title, sort_title)"
            " VALUES (%s, 'episode', 'e', 'E', 'e')",
            (lib,),
        )
    conn.rollback()
    lib = _library(conn, "tv")
    sql = (
        "INSERT INTO items (library_id, kind, key, title, sort_title)"
        " VALUES (%s, 'series', 's:show', 'Show', 'show')"
        " ON CONFLICT (library_id, key) DO NOTHING RETURNING id"
    )
    assert conn.execute(sql, (lib,)).fetchone() is not None
    assert conn.execute(sql, (lib,)).fetchone() is None
    assert _counts(conn, lib)["series"] == 1
