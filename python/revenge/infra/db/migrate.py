"""Versioned SQL migrations, applied under a PostgreSQL advisory lock.

Files are ``NNNN_name.sql`` in ``revenge/infra/migrations/`` (see the README
there). Each runs in its own transaction and is recorded in
``schema_migrations`` with the SHA-256 of its text; a file whose text changed
after it was applied stops the run with an error naming the file. A session
advisory lock serialises appliers, so any number of workers or hosts may call
:func:`migrate` at start-up: one applies, the others wait and then find nothing
left to do.

>>> parse_name("0001_init.sql")
(1, 'init')
>>> parse_name("1_init.sql") is None
True
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

import psycopg
from psycopg import sql

from revenge.infra.db.errors import (
    DatabaseUnreachable,
    MigrationChecksumMismatch,
    MigrationError,
    redact_url,
)

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9][a-z0-9_]*)\.sql$")
NO_TRANSACTION = "-- revenge:no-transaction"
# pg_advisory_lock takes a bigint; this one is the first 8 bytes of sha256("revenge.migrations").
LOCK_KEY = int.from_bytes(hashlib.sha256(b"revenge.migrations").digest()[:8], "big", signed=True)
TABLE = "schema_migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str  # the file name, e.g. "0001_init.sql"
    sql: str
    checksum: str  # sha256 hex of the text with \r\n normalised to \n

    @property
    def in_transaction(self) -> bool:
        """False for files whose first line is ``-- revenge:no-transaction`` (e.g. CREATE INDEX CONCURRENTLY)."""
        first_line = self.sql.lstrip().split("\n", 1)[0].strip().lower()
        return first_line != NO_TRANSACTION


def parse_name(filename: str) -> tuple[int, str] | None:
    match = _NAME.match(filename)
    return (int(match[1]), match[2]) if match else None


def checksum(text: str) -> str:
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def load_migrations(directory: Traversable | Path | None = None) -> list[Migration]:
    """All migrations in ``directory`` (default: the packaged folder), in version order.

    A ``.sql`` file whose name does not follow ``NNNN_name.sql``, or two files with
    the same number, is an error: either would otherwise be skipped or applied in a
    surprising order.
    """
    folder = directory if directory is not None else resources.files("revenge.infra") / "migrations"
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        parsed = parse_name(entry.name)
        if parsed is None:
            raise MigrationError(
                f"{entry.name}: migration files must be named NNNN_name.sql "
                "(four digits, lower-case name)"
            )
        version = parsed[0]
        if version in found:
            raise MigrationError(
                f"{entry.name} and {found[version].name} share version {version:04d}; "
                "renumber one of them"
            )
        text = entry.read_text(encoding="utf-8")
        found[version] = Migration(version, entry.name, text, checksum(text))
    return [found[v] for v in sorted(found)]


async def migrate(
    url: str,
    migrations: Sequence[Migration] | None = None,
    *,
    lock_timeout: float = 120.0,
) -> list[str]:
    """Apply the pending migrations; the names of those applied by this call.

    Raises :class:`MigrationChecksumMismatch` when an applied file has changed,
    :class:`MigrationError` when a migration fails (its transaction is rolled
    back, the ones before it stay applied) or the lock is not granted within
    ``lock_timeout`` seconds, and :class:`DatabaseUnreachable` when the server
    cannot be reached.
    """
    wanted = list(load_migrations() if migrations is None else migrations)
    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise DatabaseUnreachable(url, str(exc).strip().replace(url, redact_url(url))) from None
    async with conn:
        await _lock(conn, lock_timeout)
        try:
            await _ensure_table(conn)
            applied = await _applied(conn)
            _verify(applied, wanted)
            done: list[str] = []
            for migration in wanted:
                if migration.version not in applied:
                    await _apply(conn, migration)
                    done.append(migration.name)
            return done
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


async def applied_migrations(url: str) -> dict[int, tuple[str, str]]:
    """``version -> (name, checksum)`` of what the database has recorded (empty if none)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,))
        row = await cur.fetchone()
        if not row or not row[0]:
            return {}
        return await _applied(conn)


async def _lock(conn: psycopg.AsyncConnection[tuple[object, ...]], lock_wait: float) -> None:
    # lock_timeout bounds the wait for the advisory lock, so a stuck applier
    # elsewhere turns into an error instead of a start-up that never ends.
    await conn.execute(
        sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{int(lock_wait * 1000)}ms"))
    )
    try:
        await conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    except psycopg.errors.LockNotAvailable:
        raise MigrationError(
            f"another process held the migration lock for more than {lock_wait:g}s"
        ) from None
    await conn.execute("RESET lock_timeout")


async def _ensure_table(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    await conn.execute(
        sql.SQL(
            """
        CREATE TABLE IF NOT EXISTS {} (
            version     integer PRIMARY KEY,
            name        text NOT NULL,
            checksum    text NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now(),
            duration_ms integer NOT NULL
        )
        """
        ).format(sql.Identifier(TABLE))
    )


async def _applied(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> dict[int, tuple[str, str]]:
    cur = await conn.execute(
        sql.SQL("SELECT version, name, checksum FROM {} ORDER BY version").format(
            sql.Identifier(TABLE)
        )
    )
    rows = await cur.fetchall()
    return {int(str(v)): (str(n), str(c)) for v, n, c in rows}


def _verify(applied: dict[int, tuple[str, str]], wanted: Iterable[Migration]) -> None:
    for migration in wanted:
        recorded = applied.get(migration.version)
        if recorded is None:
            continue
        name, recorded_sum = recorded
        if recorded_sum != migration.checksum:
            raise MigrationChecksumMismatch(
                f"{migration.name} was changed after it was applied "
                f"(applied as {name} with sha256 {recorded_sum[:12]}..., file now "
                f"{migration.checksum[:12]}...); add a new migration instead of editing it"
            )


async def _apply(conn: psycopg.AsyncConnection[tuple[object, ...]], migration: Migration) -> None:
    started = time.perf_counter()
    log.info("applying migration %s", migration.name)
    record = sql.SQL(
        "INSERT INTO {} (version, name, checksum, duration_ms) VALUES (%s, %s, %s, %s)"
    ).format(sql.Identifier(TABLE))
    try:
        if migration.in_transaction:
            async with conn.transaction():
                await conn.execute(migration.sql.encode("utf-8"))
                took = int((time.perf_counter() - started) * 1000)
                await conn.execute(
                    record, (migration.version, migration.name, migration.checksum, took)
                )
        else:
            await conn.execute(migration.sql.encode("utf-8"))
            took = int((time.perf_counter() - started) * 1000)
            await conn.execute(
                record, (migration.version, migration.name, migration.checksum, took)
            )
    except psycopg.Error as exc:
        raise MigrationError(f"{migration.name} failed: {str(exc).strip()}") from exc
