"""SQL for users, sessions and API keys. Every function takes a connection; none commits.

Callers that write and announce a revocation do both in one transaction
(``Database.transaction()``), so the NOTIFY is delivered exactly when the row is gone.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import AsyncConnection

from revenge.runtime.errors import DomainError

Conn = AsyncConnection[Any]
Role = Literal["admin", "user"]

FAR_FUTURE = 253_402_300_799.0
"""9999-12-31T23:59:59Z: the expiry of an API key without one."""


class UsernameTaken(DomainError):
    """A user with this username (compared case-insensitively) already exists: 409."""

    def __init__(self, username: str = "") -> None:
        super().__init__("username_taken", "Username taken", kind="conflict")
        self.username = username


def as_role(value: str) -> Role:
    """The role column narrowed to its two values (the table's CHECK guarantees it)."""
    if value == "admin":
        return "admin"
    if value == "user":
        return "user"
    raise ValueError(f"unknown role {value!r}")


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    role: Role
    disabled: bool
    password_hash: str
    created_at: datetime
    last_login_at: datetime | None
    version: int = 1
    """Bumped by every administrative change (the ETag of the user resource)."""
    must_change_password: bool = False
    email: str | None = None
    """Optional, unique regardless of case (``email.normal_address`` form)."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: uuid.UUID
    token_hash: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    client: str
    ip: str | None


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Credential:
    """What a session token or API key hash resolves to: the user behind it and its expiry."""

    user_id: int
    username: str
    role: Role
    created_at: datetime
    expires_at: float
    """Unix seconds."""


# -- users ---------------------------------------------------------------------------


def _user(row: tuple[Any, ...]) -> UserRecord:
    return UserRecord(
        row[0], row[1], as_role(row[2]), row[3], row[4], row[5], row[6], row[7], row[8], row[9]
    )


# The columns _user() reads, in its order: one list for every statement that returns a user.
_USER_COLUMNS = (
    "id, username, role, disabled, password_hash, created_at, last_login_at, version, "
    "must_change_password, email"
)


async def count_users(conn: Conn) -> int:
    cur = await conn.execute("SELECT count(*) FROM users")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def insert_user(
    conn: Conn,
    username: str,
    username_key: str,
    password_hash: str,
    role: Role,
    must_change_password: bool = False,
) -> UserRecord:
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "INSERT INTO users "  # noqa: S608
                "(username, username_key, password_hash, role, must_change_password) "
                f"VALUES (%s, %s, %s, %s, %s) RETURNING {_USER_COLUMNS}",
                (username, username_key, password_hash, role, must_change_password),
            )
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise UsernameTaken(username) from None
    assert row is not None
    return _user(row)


async def fill_username_keys(conn: Conn, key_of: Callable[[str], str]) -> list[tuple[str, str]]:
    """Give rows from before ``username_key`` theirs (in a transaction, once across workers).

    The oldest of a set of look-alikes keeps the key; each later one gets
    ``"<key> #<id>"``, which no login can type. Returns ``(username, key)`` of those.
    """
    cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM users WHERE username_key IS NULL)")
    row = await cur.fetchone()
    if not row or not row[0]:
        return []
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('revenge.auth.username_key'))")
    cur = await conn.execute(
        "SELECT id, username FROM users WHERE username_key IS NULL ORDER BY created_at, id"
    )
    stepped_aside = []
    for user_id, username in await cur.fetchall():
        key = key_of(username)
        taken = await conn.execute("SELECT 1 FROM users WHERE username_key = %s", (key,))
        if await taken.fetchone() is not None:
            key = f"{key} #{user_id}"
            stepped_aside.append((username, key))
        await conn.execute("UPDATE users SET username_key = %s WHERE id = %s", (key, user_id))
    return stepped_aside


async def lock_users_table_for_bootstrap(conn: Conn) -> None:
    """Serialise first-start bootstrap across workers and hosts (inside a transaction)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('revenge.auth.bootstrap'))")


async def user_by_username(conn: Conn, username: str, username_key: str) -> UserRecord | None:
    """The user whose ``username_key`` is this (see ``usernames.comparable``).

    A row an older release wrote without a key (until the next start fills it) is
    found by ``lower(username)`` as before.
    """
    cur = await conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE username_key = %s "  # noqa: S608
        "OR (username_key IS NULL AND lower(username) = lower(%s))",
        (username_key, username),
    )
    row = await cur.fetchone()
    return _user(row) if row else None


async def user_by_id(conn: Conn, user_id: int) -> UserRecord | None:
    cur = await conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s",  # noqa: S608
        (user_id,),
    )
    row = await cur.fetchone()
    return _user(row) if row else None


async def list_users(conn: Conn) -> list[UserRecord]:
    cur = await conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users ORDER BY id"  # noqa: S608
    )
    return [_user(row) for row in await cur.fetchall()]


async def lock_user(conn: Conn, user_id: int) -> UserRecord | None:
    """The row, locked until the transaction ends (``SELECT ... FOR UPDATE``)."""
    cur = await conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s FOR UPDATE",  # noqa: S608
        (user_id,),
    )
    row = await cur.fetchone()
    return _user(row) if row else None


async def lock_active_admins(conn: Conn) -> list[int]:
    """Ids of the enabled administrators, every row locked (in id order: no deadlock).

    Two transactions that each would remove one of the last two administrators
    both take these locks first, so the second sees the first one's change.
    """
    cur = await conn.execute(
        "SELECT id FROM users WHERE role = 'admin' AND NOT disabled ORDER BY id FOR UPDATE"
    )
    return [int(row[0]) for row in await cur.fetchall()]


async def update_user(
    conn: Conn,
    user_id: int,
    *,
    role: Role | None = None,
    disabled: bool | None = None,
    password_hash: str | None = None,
    must_change_password: bool | None = None,
) -> UserRecord | None:
    """Change the given columns and bump ``version``; ``None`` leaves a column as it is."""
    cur = await conn.execute(
        "UPDATE users SET role = coalesce(%s, role), disabled = coalesce(%s, disabled), "  # noqa: S608
        "password_hash = coalesce(%s, password_hash), "
        "must_change_password = coalesce(%s, must_change_password), version = version + 1 "
        f"WHERE id = %s RETURNING {_USER_COLUMNS}",
        (role, disabled, password_hash, must_change_password, user_id),
    )
    row = await cur.fetchone()
    return _user(row) if row else None


@dataclass(frozen=True, slots=True)
class Parental:
    """A user's content limit (0008_parental.sql); administrators are never limited."""

    max_rating: str | None
    """The label the administrator gave (``PG-13``); ``None``: no limit."""
    max_rating_age: int | None
    blocks_unrated: bool
    version: int


async def parental_of(conn: Conn, user_id: int) -> Parental | None:
    cur = await conn.execute(
        "SELECT max_rating, max_rating_age, blocks_unrated, version FROM users WHERE id = %s",
        (user_id,),
    )
    row = await cur.fetchone()
    return Parental(row[0], row[1], row[2], row[3]) if row else None


async def set_parental(
    conn: Conn, user_id: int, label: str | None, age: int | None, blocks_unrated: bool
) -> Parental | None:
    """Replace the limit and bump ``version`` (the row is the user's: one ETag for both)."""
    cur = await conn.execute(
        "UPDATE users SET max_rating = %s, max_rating_age = %s, blocks_unrated = %s, "
        "version = version + 1 WHERE id = %s "
        "RETURNING max_rating, max_rating_age, blocks_unrated, version",
        (label, age, blocks_unrated, user_id),
    )
    row = await cur.fetchone()
    return Parental(row[0], row[1], row[2], row[3]) if row else None


async def delete_user(conn: Conn, user_id: int) -> bool:
    """Delete the user; sessions, API keys and every table referencing it cascade."""
    cur = await conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
    return cur.rowcount == 1


async def delete_user_api_keys(conn: Conn, user_id: int) -> int:
    cur = await conn.execute("DELETE FROM api_keys WHERE user_id = %s", (user_id,))
    return cur.rowcount


async def delete_other_sessions(conn: Conn, user_id: int, keep_hash: str | None) -> int:
    """Every session of the user but the one with ``keep_hash``."""
    cur = await conn.execute(
        "DELETE FROM sessions WHERE user_id = %s AND token_hash IS DISTINCT FROM %s",
        (user_id, keep_hash),
    )
    return cur.rowcount


async def record_login(conn: Conn, user_id: int, new_password_hash: str | None) -> None:
    """Stamp ``last_login_at``; store a re-hash (new parameters, or a chosen new password).

    A new hash also ends a pending ``must_change_password``.
    """
    await conn.execute(
        "UPDATE users SET last_login_at = now(), "
        "password_hash = coalesce(%s, password_hash), "
        "must_change_password = must_change_password AND %s::text IS NULL WHERE id = %s",
        (new_password_hash, new_password_hash, user_id),
    )


async def set_disabled(conn: Conn, user_id: int, disabled: bool) -> bool:
    cur = await conn.execute(
        "UPDATE users SET disabled = %s, version = version + 1 WHERE id = %s", (disabled, user_id)
    )
    return cur.rowcount == 1


# -- sessions --------------------------------------------------------------------------


def _session(row: tuple[Any, ...]) -> SessionRecord:
    return SessionRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def _inet_or_none(ip: str) -> str | None:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


async def insert_session(
    conn: Conn, user_id: int, token_hash: str, lifetime: float, client: str, ip: str
) -> SessionRecord:
    cur = await conn.execute(
        "INSERT INTO sessions (token_hash, user_id, expires_at, client, ip) "
        "VALUES (%s, %s, now() + make_interval(secs => %s), %s, %s) "
        "RETURNING id, token_hash, created_at, expires_at, last_seen_at, client, host(ip)",
        (token_hash, user_id, lifetime, client[:256], _inet_or_none(ip)),
    )
    row = await cur.fetchone()
    assert row is not None
    return _session(row)


async def resolve_session(conn: Conn, token_hash: str, idle_timeout: float) -> Credential | None:
    """The live session for ``token_hash`` (touching ``last_seen_at``), or ``None``.

    Live means: not expired, seen within ``idle_timeout``, and its user not disabled.
    """
    cur = await conn.execute(
        "UPDATE sessions s SET last_seen_at = now() FROM users u "
        "WHERE s.token_hash = %s AND u.id = s.user_id AND NOT u.disabled "
        "AND s.expires_at > now() AND s.last_seen_at > now() - make_interval(secs => %s) "
        "RETURNING u.id, u.username, u.role, u.created_at, "
        "extract(epoch FROM s.expires_at)::float8",
        (token_hash, idle_timeout),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return Credential(row[0], row[1], as_role(row[2]), row[3], row[4])


async def list_sessions(conn: Conn, user_id: int) -> list[SessionRecord]:
    cur = await conn.execute(
        "SELECT id, token_hash, created_at, expires_at, last_seen_at, client, host(ip) FROM sessions WHERE user_id = %s AND expires_at > now() "
        "ORDER BY last_seen_at DESC",
        (user_id,),
    )
    return [_session(row) for row in await cur.fetchall()]


async def delete_session(conn: Conn, user_id: int, session_id: uuid.UUID) -> str | None:
    """Delete one of ``user_id``'s sessions; its token hash, or ``None`` if not theirs."""
    cur = await conn.execute(
        "DELETE FROM sessions WHERE id = %s AND user_id = %s RETURNING token_hash",
        (session_id, user_id),
    )
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def delete_session_by_hash(conn: Conn, token_hash: str) -> bool:
    cur = await conn.execute("DELETE FROM sessions WHERE token_hash = %s", (token_hash,))
    return cur.rowcount == 1


async def delete_user_sessions(conn: Conn, user_id: int) -> int:
    cur = await conn.execute("DELETE FROM sessions WHERE user_id = %s", (user_id,))
    return cur.rowcount


async def delete_expired_sessions(conn: Conn, user_id: int | None = None) -> int:
    """Drop expired sessions (of one user, or all: a cleanup job may call it)."""
    if user_id is None:
        cur = await conn.execute("DELETE FROM sessions WHERE expires_at <= now()")
    else:
        cur = await conn.execute(
            "DELETE FROM sessions WHERE user_id = %s AND expires_at <= now()", (user_id,)
        )
    return cur.rowcount


# -- API keys --------------------------------------------------------------------------


def _key(row: tuple[Any, ...]) -> ApiKeyRecord:
    return ApiKeyRecord(row[0], row[1], row[2], row[3], row[4])


async def insert_api_key(
    conn: Conn, user_id: int, key_id: str, name: str, key_hash: str
) -> ApiKeyRecord:
    cur = await conn.execute(
        "INSERT INTO api_keys (id, user_id, name, key_hash) VALUES (%s, %s, %s, %s) "
        "RETURNING id, name, created_at, last_used_at, expires_at",
        (key_id, user_id, name, key_hash),
    )
    row = await cur.fetchone()
    assert row is not None
    return _key(row)


async def list_api_keys(conn: Conn, user_id: int) -> list[ApiKeyRecord]:
    cur = await conn.execute(
        "SELECT id, name, created_at, last_used_at, expires_at FROM api_keys WHERE user_id = %s ORDER BY created_at",
        (user_id,),
    )
    return [_key(row) for row in await cur.fetchall()]


async def delete_api_key(conn: Conn, user_id: int, key_id: str) -> str | None:
    """Delete one of ``user_id``'s keys; its hash, or ``None`` if not theirs."""
    cur = await conn.execute(
        "DELETE FROM api_keys WHERE id = %s AND user_id = %s RETURNING key_hash",
        (key_id, user_id),
    )
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def resolve_api_key(conn: Conn, key_hash: str) -> Credential | None:
    """The user behind a live API key (touching ``last_used_at``), or ``None``."""
    cur = await conn.execute(
        "UPDATE api_keys k SET last_used_at = now() FROM users u "
        "WHERE k.key_hash = %s AND u.id = k.user_id AND NOT u.disabled "
        "AND (k.expires_at IS NULL OR k.expires_at > now()) "
        "RETURNING u.id, u.username, u.role, u.created_at, "
        "extract(epoch FROM k.expires_at)::float8",
        (key_hash,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    expires = FAR_FUTURE if row[4] is None else row[4]
    return Credential(row[0], row[1], as_role(row[2]), row[3], expires)


async def notify(conn: Conn, channel: str, payload: str) -> None:
    """``pg_notify``: delivered to listeners when the surrounding transaction commits."""
    await conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


# -- login throttle (0004_login_throttle.sql) -----------------------------------------


@dataclass(frozen=True, slots=True)
class ThrottlePolicies:
    window: float
    ip: tuple[int, float, float]
    pair: tuple[int, float, float]
    account: tuple[int, float, float]
    """Each ``(free, base, cap)``."""


async def reserve_login_attempt(
    conn: Conn, network: str, account: str, policies: ThrottlePolicies
) -> float:
    """Count one attempt on every counter (0.0), or the seconds to wait (nothing counted)."""
    cur = await conn.execute(
        "SELECT login_reserve(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (network, account, policies.window, *policies.ip, *policies.pair, *policies.account),
    )
    row = await cur.fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


async def refund_login_attempt(conn: Conn, network: str, account: str, succeeded: bool) -> None:
    await conn.execute("SELECT login_refund(%s, %s, %s)", (network, account, succeeded))


async def delete_stale_login_counters(conn: Conn) -> int:
    """Counters past their window, and networks not logged in from for 180 days."""
    cur = await conn.execute("DELETE FROM login_throttle WHERE expires_at < now()")
    removed = cur.rowcount
    cur = await conn.execute(
        "DELETE FROM login_known_networks WHERE seen_at < now() - interval '180 days'"
    )
    return removed + cur.rowcount


# -- first-run setup code ----------------------------------------------------------------


async def claim_setup_code(conn: Conn, code_hash: str) -> bool:
    """Store ``code_hash`` unless a code is stored already; whether this call stored it."""
    cur = await conn.execute(
        "INSERT INTO setup_code (code_hash) VALUES (%s) ON CONFLICT DO NOTHING RETURNING 1",
        (code_hash,),
    )
    return await cur.fetchone() is not None


async def setup_code_hash(conn: Conn) -> str | None:
    cur = await conn.execute("SELECT code_hash FROM setup_code")
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def delete_setup_code(conn: Conn) -> None:
    await conn.execute("DELETE FROM setup_code")


# -- e-mail addresses ------------------------------------------------------------------


class EmailTaken(DomainError):
    """Another user has this address (compared regardless of case): 409."""

    def __init__(self) -> None:
        super().__init__(
            "email_taken",
            "E-mail address taken",
            kind="conflict",
            detail="another user has this address",
        )


async def set_email(conn: Conn, user_id: int, email: str | None) -> UserRecord | None:
    """Set (or clear, with ``None``) the user's address and bump ``version``."""
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "UPDATE users SET email = %s, version = version + 1 WHERE id = %s "  # noqa: S608
                f"RETURNING {_USER_COLUMNS}",
                (email, user_id),
            )
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise EmailTaken() from None
    return _user(row) if row else None


async def user_by_email(conn: Conn, email: str) -> UserRecord | None:
    cur = await conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users "  # noqa: S608
        "WHERE lower(email) = lower(%s) AND email IS NOT NULL",
        (email,),
    )
    row = await cur.fetchone()
    return _user(row) if row else None


async def admin_addresses(conn: Conn) -> list[tuple[int, str]]:
    """``(id, address)`` of every enabled administrator that has an address."""
    cur = await conn.execute(
        "SELECT id, email FROM users WHERE role = 'admin' AND NOT disabled "
        "AND email IS NOT NULL ORDER BY id"
    )
    return [(int(row[0]), str(row[1])) for row in await cur.fetchall()]
