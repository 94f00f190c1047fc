"""SQL for sign-ins in flight and linked identities. Every function takes a connection; none commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

Conn = AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class Flow:
    """A started sign-in, as its callback finds it."""

    provider: str
    binding_hash: str
    nonce: str
    code_verifier: str
    return_to: str
    expired: bool


async def insert_flow(
    conn: Conn,
    state_hash: str,
    binding_hash: str,
    provider: str,
    nonce: str,
    code_verifier: str,
    return_to: str,
    ttl: float,
) -> None:
    await conn.execute(
        "INSERT INTO oidc_flows (state_hash, binding_hash, provider, nonce, code_verifier, "
        "return_to, expires_at) VALUES (%s, %s, %s, %s, %s, %s, "
        "now() + make_interval(secs => %s))",
        (state_hash, binding_hash, provider, nonce, code_verifier, return_to, ttl),
    )


async def take_flow(conn: Conn, state_hash: str) -> Flow | None:
    """Remove and return the flow of this state: whatever happens next, it is used up."""
    cur = await conn.execute(
        "DELETE FROM oidc_flows WHERE state_hash = %s RETURNING provider, binding_hash, nonce, "
        "code_verifier, return_to, expires_at <= now()",
        (state_hash,),
    )
    row = await cur.fetchone()
    return Flow(*row) if row else None


async def identity_user(conn: Conn, issuer: str, subject: str) -> int | None:
    """The account linked to (issuer, subject), stamping the identity's last sign-in."""
    cur = await conn.execute(
        "UPDATE oidc_identities SET last_login_at = now() WHERE issuer = %s AND subject = %s "
        "RETURNING user_id",
        (issuer, subject),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else None


async def user_with_verified_email(conn: Conn, email: str) -> int | None:
    """The account of another linked identity whose provider verified this address."""
    cur = await conn.execute(
        "SELECT DISTINCT user_id FROM oidc_identities WHERE lower(email) = lower(%s) LIMIT 2",
        (email,),
    )
    rows = await cur.fetchall()
    return int(rows[0][0]) if len(rows) == 1 else None  # two accounts claim it: link neither


async def link_identity(
    conn: Conn, issuer: str, subject: str, user_id: int, provider: str, email: str | None
) -> None:
    await conn.execute(
        "INSERT INTO oidc_identities (issuer, subject, user_id, provider, email) "
        "VALUES (%s, %s, %s, %s, %s)",
        (issuer, subject, user_id, provider, email),
    )


async def delete_expired_flows(conn: Conn) -> int:
    cur = await conn.execute("DELETE FROM oidc_flows WHERE expires_at < now() - interval '1 hour'")
    return cur.rowcount
