"""SQL for libraries, roots and grants (the admin side; the scanner has its own in ``store``).

Every function takes an open connection so a caller can put several in one transaction.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

__all__ = [
    "Library",
    "LibraryNameTaken",
    "Root",
    "all_roots",
    "delete_library",
    "get_library",
    "insert_library",
    "list_libraries",
    "lock_roots",
    "replace_roots",
    "request_scan",
    "update_library",
]

Conn = psycopg.AsyncConnection[Any]

_COLUMNS = (
    "l.id, l.name, l.kind, l.settings, l.created_at, l.updated_at, l.last_scan_started,"
    " l.last_scan_finished, l.last_scan_stats, l.scan_job_id,"
    " coalesce((SELECT array_agg(r.path ORDER BY r.path) FROM library_roots r"
    " WHERE r.library_id = l.id), '{}')"
)


class LibraryNameTaken(Exception):
    """Another library already has this name (names are unique regardless of case)."""


@dataclass(frozen=True, slots=True)
class Root:
    """A root folder: the exact bytes on disk and its form for display."""

    path: bytes

    @property
    def fs(self) -> str:
        """The str that ``open``/``scandir`` take (surrogate escapes for non-UTF-8 bytes)."""
        return os.fsdecode(self.path)

    @property
    def text(self) -> str:
        """For display only: undecodable bytes become U+FFFD."""
        return self.path.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Library:
    id: int
    name: str
    kind: str
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    last_scan_started: datetime | None
    last_scan_finished: datetime | None
    last_scan_stats: dict[str, Any] | None
    scan_job_id: int | None
    roots: tuple[Root, ...]


def _library(row: Sequence[Any]) -> Library:
    return Library(
        int(row[0]),
        row[1],
        row[2],
        dict(row[3]),
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        tuple(Root(bytes(p)) for p in row[10]),
    )


async def lock_roots(conn: Conn) -> None:
    """Serialise root changes for the rest of the transaction (overlap checks see each other)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('revenge.library_roots'))")


async def all_roots(conn: Conn, *, except_library: int | None = None) -> list[tuple[bytes, str]]:
    """Every stored root with its library's name, optionally leaving one library out."""
    cur = await conn.execute(
        "SELECT r.path, l.name FROM library_roots r JOIN libraries l ON l.id = r.library_id"
        " WHERE l.id IS DISTINCT FROM %s",
        (except_library,),
    )
    return [(bytes(p), n) for p, n in await cur.fetchall()]


async def insert_library(conn: Conn, name: str, kind: str, settings: dict[str, Any]) -> int:
    try:
        async with conn.transaction():  # a savepoint: the caller's transaction survives
            cur = await conn.execute(
                "INSERT INTO libraries (name, kind, settings) VALUES (%s, %s, %s) RETURNING id",
                (name, kind, Jsonb(settings)),
            )
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise LibraryNameTaken(name) from None
    assert row is not None
    return int(row[0])


async def update_library(
    conn: Conn, library_id: int, *, name: str | None, settings: dict[str, Any] | None
) -> bool:
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "UPDATE libraries SET name = coalesce(%s, name), settings = coalesce(%s, settings)"
                " WHERE id = %s",
                (name, None if settings is None else Jsonb(settings), library_id),
            )
    except psycopg.errors.UniqueViolation:
        raise LibraryNameTaken(name or "") from None
    return cur.rowcount == 1


async def replace_roots(conn: Conn, library_id: int, roots: Sequence[bytes]) -> None:
    """Make the library's roots exactly ``roots``; a kept root keeps its id (and its files)."""
    await conn.execute(
        "DELETE FROM library_roots WHERE library_id = %s AND NOT (path = ANY(%s))",
        (library_id, list(roots)),
    )
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, %s)"
            " ON CONFLICT (path) DO NOTHING",
            [(library_id, p, p.decode("utf-8", "replace")) for p in roots],
        )


async def get_library(conn: Conn, library_id: int) -> Library | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM libraries l WHERE l.id = %s", (library_id,))  # noqa: S608
    row = await cur.fetchone()
    return None if row is None else _library(row)


async def list_libraries(conn: Conn, *, user_id: int | None = None) -> list[Library]:
    """All libraries, or (``user_id``) only those granted to that user; by name."""
    if user_id is None:
        cur = await conn.execute(f"SELECT {_COLUMNS} FROM libraries l ORDER BY lower(l.name)")  # noqa: S608
    else:
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM libraries l JOIN library_grants g"  # noqa: S608
            " ON g.library_id = l.id AND g.user_id = %s ORDER BY lower(l.name)",
            (user_id,),
        )
    return [_library(row) for row in await cur.fetchall()]


async def delete_library(conn: Conn, library_id: int) -> bool:
    """Delete it and (by cascade) its roots, items, files, images, grants and users' state."""
    cur = await conn.execute("DELETE FROM libraries WHERE id = %s", (library_id,))
    return cur.rowcount == 1


async def request_scan(conn: Conn, library_id: int, job_id: int) -> bool | None:
    """Record ``job_id`` as the library's scan; False when it already was (a second request).

    ``None`` when the library does not exist.
    """
    # Two statements: after waiting for the lock, FOR UPDATE reads the row a concurrent
    # request just committed (a CTE in the UPDATE would see the statement's old snapshot).
    cur = await conn.execute(
        "SELECT scan_job_id FROM libraries WHERE id = %s FOR UPDATE", (library_id,)
    )
    row = await cur.fetchone()
    if row is None:
        return None
    if row[0] == job_id:
        return False
    await conn.execute(
        "UPDATE libraries SET scan_job_id = %s, scan_cancel = false WHERE id = %s",
        (job_id, library_id),
    )
    return True


async def cancel_scan(conn: Conn, library_id: int) -> int | None:
    """Ask the library's scan to stop; the job id asked, or None when no such library."""
    cur = await conn.execute(
        "UPDATE libraries SET scan_cancel = true WHERE id = %s RETURNING scan_job_id",
        (library_id,),
    )
    row = await cur.fetchone()
    return None if row is None else (row[0] if row[0] is not None else 0)
