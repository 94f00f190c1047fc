"""Versioned SQL migrations, each owned by a module, applied under a PostgreSQL advisory lock.

Every module keeps its files as ``<its folder>/migrations/NNNN_name.sql`` (see
``infra/db/migrations/README.md``); the platform's own (``core``) live in
``revenge/infra/db/migrations/``. A migration is identified by ``(module, version)``:
numbers are per module, so two modules never compete for the next free number.
:func:`migrate` applies the modules in the application's module order, each
module's files in version order. Each file runs in its own transaction and is
recorded in ``schema_migrations`` with the SHA-256 of its text; a file whose text
changed after it was applied stops the run with an error naming the file. A
session advisory lock serialises appliers, so any number of workers or hosts may
call :func:`migrate` at start-up: one applies, the others wait and then find
nothing left to do.

Migrations only move forward: there are no down files, and before anything is
applied the run is refused (:class:`DatabaseNewerThanCode`) when the database
records a file of a module this code ships that the code does not know (a newer
Revenge migrated it; running older code on it could write rows the newer schema
forbids), and (:class:`MigrationOutOfOrder`) when a pending file is numbered below
one its module already applied (an upgraded database would get it after the
later file, a fresh one before: two schemas from one release). A module this
code does not ship at all (a third-party module taken out of ``modules.extra``)
keeps its tables and is only logged.

Databases from before module ownership recorded versions only; on their first
run the table gains its ``module`` column and each old row is given to the
module that ships a file of the same name (``0002_auth.sql`` -> ``auth``), so
nothing is applied twice and no checksum changes.

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
from typing import Any

import psycopg
from psycopg import sql

from revenge import __version__
from revenge.infra.db.errors import (
    DatabaseNewerThanCode,
    DatabaseUnreachable,
    MigrationChecksumMismatch,
    MigrationError,
    MigrationOutOfOrder,
    redact_url,
)

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9][a-z0-9_]*)\.sql$")
NO_TRANSACTION = "-- revenge:no-transaction"
# pg_advisory_lock takes a bigint; this one is the first 8 bytes of sha256("revenge.migrations").
LOCK_KEY = int.from_bytes(hashlib.sha256(b"revenge.migrations").digest()[:8], "big", signed=True)
TABLE = "schema_migrations"
#: The module name of the platform's own migrations (``infra/db/migrations``).
CORE = "core"

AppliedKey = tuple[str, int]  # (module, version)
Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class Migration:
    module: str  # the owning module, e.g. "auth"
    version: int
    name: str  # the file name, e.g. "0002_auth.sql"
    sql: str
    checksum: str  # sha256 hex of the text with \r\n normalised to \n

    @property
    def ident(self) -> str:
        """``module/file``: how logs, errors and :func:`migrate`'s answer name it."""
        return f"{self.module}/{self.name}"

    @property
    def key(self) -> AppliedKey:
        return (self.module, self.version)

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


def core_migrations() -> list[Migration]:
    """The platform's own migrations (``set_updated_at()`` and the like), applied first."""
    return load_migrations(CORE, resources.files("revenge.infra.db") / "migrations")


def load_migrations(module: str, directory: Traversable | Path) -> list[Migration]:
    """All migrations of ``module`` in ``directory``, in version order.

    A ``.sql`` file whose name does not follow ``NNNN_name.sql``, or two files with
    the same number, is an error: either would otherwise be skipped or applied in a
    surprising order. A missing folder means no migrations.
    """
    folder = directory
    if not folder.is_dir():
        return []
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        parsed = parse_name(entry.name)
        if parsed is None:
            raise MigrationError(
                f"{module}/{entry.name}: migration files must be named NNNN_name.sql "
                "(four digits, lower-case name)"
            )
        version = parsed[0]
        if version in found:
            raise MigrationError(
                f"{module}: {entry.name} and {found[version].name} share version "
                f"{version:04d}; renumber one of them"
            )
        text = entry.read_text(encoding="utf-8")
        found[version] = Migration(module, version, entry.name, text, checksum(text))
    return [found[v] for v in sorted(found)]


async def migrate(
    url: str,
    migrations: Sequence[Migration],
    *,
    lock_timeout: float = 120.0,
) -> list[str]:
    """Apply the pending ``migrations`` in the order given; the idents applied by this call.

    The application's list comes from its modules (``revenge.wiring.migrations()``).

    Raises :class:`MigrationChecksumMismatch` when an applied file has changed,
    :class:`MigrationError` when a migration fails (its transaction is rolled
    back, the ones before it stay applied) or the lock is not granted within
    ``lock_timeout`` seconds, and :class:`DatabaseUnreachable` when the server
    cannot be reached.
    """
    wanted = list(migrations)
    seen: set[AppliedKey] = set()
    for migration in wanted:
        if migration.key in seen:
            raise MigrationError(f"{migration.ident}: version listed twice for {migration.module}")
        seen.add(migration.key)
    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise DatabaseUnreachable(url, str(exc).strip().replace(url, redact_url(url))) from None
    async with conn:
        await _lock(conn, lock_timeout)
        try:
            await _ensure_table(conn, wanted)
            applied = await _applied(conn)
            _verify(applied, wanted)
            _refuse_unknown(applied, wanted, redact_url(url))
            _refuse_out_of_order(applied, wanted)
            done: list[str] = []
            for migration in wanted:
                if migration.key not in applied:
                    await _apply(conn, migration)
                    done.append(migration.ident)
            return done
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


async def applied_migrations(url: str) -> dict[AppliedKey, tuple[str, str]]:
    """``(module, version) -> (name, checksum)`` of what the database has recorded."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,))
        row = await cur.fetchone()
        if not row or not row[0]:
            return {}
        if not await _has_module_column(conn):
            query = sql.SQL("SELECT version, name, checksum FROM {}").format(sql.Identifier(TABLE))
            rows = await (await conn.execute(query)).fetchall()
            return {("", int(str(v))): (str(n), str(c)) for v, n, c in rows}
        return await _applied(conn)


async def _lock(conn: Conn, lock_wait: float) -> None:
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


async def _ensure_table(conn: Conn, wanted: Sequence[Migration]) -> None:
    await conn.execute(
        sql.SQL(
            """
        CREATE TABLE IF NOT EXISTS {} (
            module      text NOT NULL,
            version     integer NOT NULL,
            name        text NOT NULL,
            checksum    text NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now(),
            duration_ms integer NOT NULL,
            PRIMARY KEY (module, version)
        )
        """
        ).format(sql.Identifier(TABLE))
    )
    if not await _has_module_column(conn):
        await _adopt_legacy_rows(conn, wanted)


async def _has_module_column(conn: Conn) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = 'module'"
        " AND NOT attisdropped",
        (TABLE,),
    )
    return await cur.fetchone() is not None


async def _adopt_legacy_rows(conn: Conn, wanted: Sequence[Migration]) -> None:
    """Upgrade a version-only table: each recorded file goes to the module that ships it.

    A row no module ships (a newer release's) keeps module ``''`` and is left alone,
    as unknown versions always were.
    """
    owners = {m.name: m.module for m in wanted}
    table = sql.Identifier(TABLE)
    async with conn.transaction():
        await conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN module text").format(table))
        rows = await (await conn.execute(sql.SQL("SELECT name FROM {}").format(table))).fetchall()
        for (name,) in rows:
            await conn.execute(
                sql.SQL("UPDATE {} SET module = %s WHERE name = %s").format(table),
                (owners.get(str(name), ""), name),
            )
        await conn.execute(
            sql.SQL(
                "ALTER TABLE {} ALTER COLUMN module SET NOT NULL, DROP CONSTRAINT {}, "
                "ADD PRIMARY KEY (module, version)"
            ).format(table, sql.Identifier(f"{TABLE}_pkey"))
        )
    log.info("schema_migrations upgraded: rows now keyed by (module, version)")


async def _applied(conn: Conn) -> dict[AppliedKey, tuple[str, str]]:
    cur = await conn.execute(
        sql.SQL("SELECT module, version, name, checksum FROM {} ORDER BY module, version").format(
            sql.Identifier(TABLE)
        )
    )
    rows = await cur.fetchall()
    return {(str(m), int(str(v))): (str(n), str(c)) for m, v, n, c in rows}


def _verify(applied: dict[AppliedKey, tuple[str, str]], wanted: Iterable[Migration]) -> None:
    for migration in wanted:
        recorded = applied.get(migration.key)
        if recorded is None:
            continue
        name, recorded_sum = recorded
        if recorded_sum != migration.checksum:
            raise MigrationChecksumMismatch(
                f"{migration.ident} was changed after it was applied "
                f"(applied as {name} with sha256 {recorded_sum[:12]}..., file now "
                f"{migration.checksum[:12]}...); add a new migration instead of editing it"
            )


def _refuse_unknown(
    applied: dict[AppliedKey, tuple[str, str]], wanted: Sequence[Migration], where: str
) -> None:
    known = {m.key for m in wanted}
    shipped_modules = {m.module for m in wanted}
    newer: list[str] = []
    foreign: set[str] = set()
    for (module, version), (name, _sum) in sorted(applied.items()):
        if (module, version) in known:
            continue
        if module in shipped_modules or not module:  # '' = a version-only row no module ships
            newer.append(f"{module or '?'}/{name}")
        else:
            foreign.add(module)
    if newer:
        raise DatabaseNewerThanCode(
            f"the database at {where} is newer than this Revenge ({__version__}): it has "
            f"{', '.join(newer)} applied, which this version does not ship. Nothing was "
            "changed. Run the Revenge version that upgraded it (or a newer one), or restore "
            "a backup taken before that upgrade: revenge restore FILE"
        )
    for module in sorted(foreign):
        log.warning(
            "the database has migrations of module %r, which is not installed; its tables "
            "are left as they are",
            module,
        )


def _refuse_out_of_order(
    applied: dict[AppliedKey, tuple[str, str]], wanted: Sequence[Migration]
) -> None:
    highest: dict[str, int] = {}
    for module, version in applied:
        highest[module] = max(version, highest.get(module, 0))
    for migration in wanted:
        top = highest.get(migration.module, 0)
        if migration.key not in applied and migration.version < top:
            raise MigrationOutOfOrder(
                f"{migration.ident} is new but numbered below {migration.module}'s applied "
                f"{top:04d}; migrations only move forward: renumber it after {top:04d}. "
                "Nothing was changed."
            )


async def _apply(conn: Conn, migration: Migration) -> None:
    started = time.perf_counter()
    log.info("applying migration %s", migration.ident)
    record = sql.SQL(
        "INSERT INTO {} (module, version, name, checksum, duration_ms) VALUES (%s, %s, %s, %s, %s)"
    ).format(sql.Identifier(TABLE))
    row = (migration.module, migration.version, migration.name, migration.checksum)
    try:
        if migration.in_transaction:
            async with conn.transaction():
                await conn.execute(migration.sql.encode("utf-8"))
                took = int((time.perf_counter() - started) * 1000)
                await conn.execute(record, (*row, took))
        else:
            await conn.execute(migration.sql.encode("utf-8"))
            took = int((time.perf_counter() - started) * 1000)
            await conn.execute(record, (*row, took))
    except psycopg.Error as exc:
        raise MigrationError(f"{migration.ident} failed: {str(exc).strip()}") from exc
