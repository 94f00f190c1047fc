"""Library grants (``library_grants``): which user sees which library. Plain functions
over a connection; they never commit. The rule that reads them: :mod:`.visibility`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

__all__ = ["Grant", "delete_grant", "list_grants", "put_grant"]

Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class Grant:
    user_id: int
    username: str
    granted_at: datetime


async def put_grant(conn: Conn, library_id: int, user_id: int) -> str | None:
    """Grant the library to the user; ``"library"``/``"user"`` when that one does not exist."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM libraries WHERE id = %s),"
        " EXISTS (SELECT 1 FROM users WHERE id = %s)",
        (library_id, user_id),
    )
    row = await cur.fetchone()
    assert row is not None
    if not row[0]:
        return "library"
    if not row[1]:
        return "user"
    try:
        async with conn.transaction():  # a savepoint: one deleted in between is a miss
            await conn.execute(
                "INSERT INTO library_grants (user_id, library_id) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING",
                (user_id, library_id),
            )
    except psycopg.errors.ForeignKeyViolation:
        return "library"
    return None


async def delete_grant(conn: Conn, library_id: int, user_id: int) -> bool:
    """Revoke it; False when there was no such grant."""
    cur = await conn.execute(
        "DELETE FROM library_grants WHERE user_id = %s AND library_id = %s", (user_id, library_id)
    )
    return cur.rowcount == 1


async def list_grants(conn: Conn, library_id: int) -> list[Grant]:
    cur = await conn.execute(
        "SELECT g.user_id, u.username, g.granted_at FROM library_grants g"
        " JOIN users u ON u.id = g.user_id WHERE g.library_id = %s ORDER BY lower(u.username)",
        (library_id,),
    )
    return [Grant(int(r[0]), r[1], r[2]) for r in await cur.fetchall()]
