"""Restore a backup into a fresh database, then swap it in by renaming.

Order, so that every failure leaves the old database as it was: check the file
(layout, size, checksum) and that this code knows its schema; refuse when anything is
connected to the target database (a running ``revenge serve`` or worker, a backup);
create ``<name>_restore_<time>``, ``pg_restore`` into it, apply the newer migrations;
only then rename the old database away (kept as ``<name>_before_restore_<time>``
unless asked to drop it) and the new one into its place. PostgreSQL refuses to
rename a database while anyone is connected, so a server that starts in between is
caught there too.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

from revenge.infra.db.backup.archive import DUMP, Manifest, read_archive
from revenge.infra.db.backup.create import LOCK_KEY, _connect, libpq_args
from revenge.infra.db.backup.errors import BackupBusy, BackupError, RestoreRefused
from revenge.infra.db.backup.pgtools import find_tool
from revenge.infra.db.errors import redact_url
from revenge.infra.db.migrate import Migration, migrate

_MAX_NAME = 63  # PostgreSQL truncates identifiers past NAMEDATALEN - 1


@dataclass(frozen=True, slots=True)
class RestoreResult:
    database: str
    previous: str | None  # the old database's new name, if it was kept
    applied: list[str]  # migrations applied on top of the backup
    manifest: Manifest


def verify_backup(path: Path, workdir: Path | None = None) -> Manifest:
    """Check a backup file completely (layout, size, checksum) without restoring it."""
    with tempfile.TemporaryDirectory(prefix=".revenge-verify-", dir=workdir) as tmp:
        return read_archive(path, Path(tmp))


def check_schema(manifest: Manifest, migrations: Sequence[Migration]) -> None:
    """Refuse a backup whose schema this code does not know (newer, or edited migrations)."""
    known = {m.key: m for m in migrations}
    by_name = {m.name: m for m in migrations}  # rows recorded before migrations had owners
    for record in manifest.schema:
        if record.module:
            migration = known.get((record.module, record.version))
        else:
            migration = by_name.get(record.name)
        if migration is None:
            raise RestoreRefused(
                f"the backup's schema is newer than this Revenge ({record.module}/{record.name} "
                "is unknown "
                f"here; backup made by Revenge {manifest.revenge_version}): upgrade first"
            )
        if migration.checksum != record.checksum:
            raise RestoreRefused(
                f"the backup's {record.name} differs from this Revenge's "
                f"(sha256 {record.checksum[:12]}... vs {migration.checksum[:12]}...)"
            )


def _database_url(url: str, dbname: str) -> str:
    return conninfo.make_conninfo(url, dbname=dbname)


def _in_use(conn: psycopg.Connection[tuple[object, ...]], name: str) -> list[str]:
    rows = conn.execute(
        "SELECT coalesce(nullif(application_name, ''), usename::text, 'unknown') || ' (pid ' "
        "|| pid || ', ' || coalesce(client_addr::text, 'local') || ')' "
        "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    ).fetchall()
    return [str(row[0]) for row in rows]


def _refuse_in_use(who: list[str], name: str) -> RestoreRefused:
    return RestoreRefused(
        f"database {name!r} is in use by {len(who)} connection(s): {', '.join(who[:5])}; "
        "stop revenge serve and revenge worker (and any backup) first"
    )


def restore_backup(
    url: str,
    path: Path,
    migrations: Sequence[Migration],
    *,
    keep_previous: bool = True,
    workdir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> RestoreResult:
    """Restore the backup at ``path`` as the database ``url`` names, then apply the
    application's ``migrations`` (``revenge.wiring.migrations(settings)``). Blocking.

    Raises :class:`BackupInvalid` (bad file), :class:`RestoreRefused` (in use, schema
    too new), :class:`BackupBusy`, or :class:`BackupError`; in every case the existing
    database is unchanged.
    """
    wanted = list(migrations)
    target = str(conninfo.conninfo_to_dict(url).get("dbname") or "")
    if not target:
        raise BackupError(f"{redact_url(url)} names no database to restore into")
    with tempfile.TemporaryDirectory(prefix=".revenge-restore-", dir=workdir) as tmp:
        manifest = read_archive(path, Path(tmp))
        check_schema(manifest, wanted)
        with _connect(_database_url(url, "postgres")) as conn:
            if not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
                raise BackupBusy("another restore is running; try again when it ends")
            who = _in_use(conn, target)
            if who:
                raise _refuse_in_use(who, target)
            # To the microsecond: two restores within one second keep two previous databases.
            stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
            fresh = f"{target[: _MAX_NAME - 29]}_restore_{stamp}"
            server_major = conn.info.server_version // 10000
            pg_restore, _ = find_tool("pg_restore", max(server_major, manifest.pg_dump_major))
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(fresh))
            )
            try:
                fresh_url = _database_url(url, fresh)
                _run_pg_restore(pg_restore, fresh_url, Path(tmp) / DUMP, env)
                applied = asyncio.run(migrate(fresh_url, wanted))
                previous = _swap(conn, target, fresh, stamp)
            except BaseException:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(fresh))
                )
                raise
            if previous is not None and not keep_previous:
                conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(previous)))
                previous = None
    return RestoreResult(target, previous, applied, manifest)


def _swap(
    conn: psycopg.Connection[tuple[object, ...]], target: str, fresh: str, stamp: str
) -> str | None:
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target,)).fetchone()
    previous = f"{target[: _MAX_NAME - 36]}_before_restore_{stamp}" if exists else None
    rename = "ALTER DATABASE {} RENAME TO {}"
    if previous is not None:
        try:
            conn.execute(sql.SQL(rename).format(sql.Identifier(target), sql.Identifier(previous)))
        except psycopg.errors.ObjectInUse:
            raise _refuse_in_use(_in_use(conn, target) or ["a new connection"], target) from None
    try:
        conn.execute(sql.SQL(rename).format(sql.Identifier(fresh), sql.Identifier(target)))
    except BaseException:
        if previous is not None:
            conn.execute(sql.SQL(rename).format(sql.Identifier(previous), sql.Identifier(target)))
        raise
    return previous


def _run_pg_restore(pg_restore: Path, url: str, dump: Path, env: Mapping[str, str] | None) -> None:
    info, secret = libpq_args(url)
    argv = [
        str(pg_restore),
        "--no-owner",  # objects belong to the restoring role (the one Revenge connects as)
        "--no-acl",
        "--exit-on-error",
        "--single-transaction",
        f"--dbname={info}",
        str(dump),
    ]
    result = subprocess.run(
        argv, capture_output=True, text=True, env={**(os.environ if env is None else env), **secret}
    )
    if result.returncode != 0:
        message = result.stderr.strip().replace(url, redact_url(url))
        raise BackupError(f"pg_restore ({pg_restore}) failed: {message}")
