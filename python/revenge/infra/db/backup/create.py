"""Take a backup of a running database: one snapshot, one file, one backup at a time.

The schema records are read and ``pg_dump`` runs in the same exported snapshot, so the
manifest describes exactly the data in the dump while the server keeps serving.
A session advisory lock on the database makes a second backup (or a restore) wait
its turn: it is refused at once with :class:`BackupBusy`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import conninfo

from revenge.infra.db.backup.archive import (
    DUMP,
    Manifest,
    SchemaRecord,
    no_space_message,
    sha256_file,
    write_archive,
)
from revenge.infra.db.backup.errors import BackupBusy, BackupError
from revenge.infra.db.backup.pgtools import find_tool
from revenge.infra.db.errors import DatabaseUnreachable, redact_url

# A bigint for pg_advisory_lock: the first 8 bytes of sha256("revenge.backup").
LOCK_KEY = int.from_bytes(hashlib.sha256(b"revenge.backup").digest()[:8], "big", signed=True)
PREFIX = "revenge-backup-"
SUFFIX = ".tar"
_NAME = re.compile(rf"^{PREFIX}\d{{8}}T\d{{6}}(?:\.\d+)?Z{re.escape(SUFFIX)}$")


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    manifest: Manifest
    bytes: int
    seconds: float


def backup_name(now: datetime | None = None) -> str:
    """``revenge-backup-<UTC time>.tar``: names sort in time order.

    >>> backup_name(datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC))
    'revenge-backup-20260102T030405.006Z.tar'
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{PREFIX}{moment:%Y%m%dT%H%M%S}.{moment.microsecond // 1000:03d}Z{SUFFIX}"


def libpq_args(url: str) -> tuple[str, dict[str, str]]:
    """A conninfo for a client tool's ``--dbname`` without the password, and the environment
    carrying it (``PGPASSWORD``), so it never shows in the process list.

    >>> info, env = libpq_args("postgresql://app:s3cret@db:5432/revenge")
    >>> "s3cret" in info, env["PGPASSWORD"]
    (False, 's3cret')
    """
    params = conninfo.conninfo_to_dict(url)
    password = params.pop("password", None)
    env = {"PGPASSWORD": str(password)} if password is not None else {}
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items()}), env


def _connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DatabaseUnreachable(url, str(exc).strip().replace(url, redact_url(url))) from None


def _schema(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[SchemaRecord, ...]:
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return ()
    owned = conn.execute(
        "SELECT 1 FROM pg_attribute WHERE attrelid = 'schema_migrations'::regclass "
        "AND attname = 'module' AND NOT attisdropped"
    ).fetchone()
    module = "module" if owned else "''"  # recorded before migrations had owners
    rows = conn.execute(
        f"SELECT {module}, version, name, checksum FROM schema_migrations "  # noqa: S608
        "ORDER BY 1, 2"
    ).fetchall()
    return tuple(SchemaRecord(str(m), int(str(v)), str(n), str(c)) for m, v, n, c in rows)


def create_backup(
    url: str, dest: Path, *, revenge_version: str, env: Mapping[str, str] | None = None
) -> BackupResult:
    """Back the database at ``url`` up into the file ``dest``. Blocking.

    Raises :class:`BackupBusy` when another backup or restore runs,
    :class:`BackupError` (a full disk, a missing or failing ``pg_dump``) with nothing
    written under ``dest``, and ``DatabaseUnreachable``.
    """
    started = time.perf_counter()
    dest = dest.expanduser().resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _connect(url) as conn:
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
            raise BackupBusy(
                "another backup or restore of this database is running; try again when it ends"
            )
        try:
            server_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            server_major = conn.info.server_version // 10000
            pg_dump, dump_major = find_tool("pg_dump", server_major)
            # One snapshot for the manifest's schema and for pg_dump's data.
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
            schema = _schema(conn)
            work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
            try:
                dump = work / DUMP
                _run_pg_dump(pg_dump, url, snapshot, dump, env)
                conn.execute("COMMIT")
                digest, size = sha256_file(dump)
                manifest = Manifest(
                    revenge_version=revenge_version,
                    created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    server_version=server_version.split()[0],
                    server_major=server_major,
                    pg_dump_major=dump_major,
                    database=conn.info.dbname,
                    schema=schema,
                    dump_sha256=digest,
                    dump_bytes=size,
                )
                write_archive(dest, manifest, dump)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        finally:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return BackupResult(dest, manifest, dest.stat().st_size, time.perf_counter() - started)


def _run_pg_dump(
    pg_dump: Path, url: str, snapshot: str, dump: Path, env: Mapping[str, str] | None
) -> None:
    info, secret = libpq_args(url)
    argv = [
        str(pg_dump),
        "--format=custom",
        "--compress=6",
        f"--snapshot={snapshot}",
        f"--file={dump}",
        f"--dbname={info}",
    ]
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**(os.environ if env is None else env), **secret},
    )
    if result.returncode == 0:
        return
    message = result.stderr.strip().replace(url, redact_url(url))
    if "No space left" in message or "Disk quota" in message or "File too large" in message:
        raise BackupError(
            no_space_message(dump.parent, OSError(errno.ENOSPC, "No space left on device"))
        )
    raise BackupError(f"pg_dump ({pg_dump}) failed: {message}")


def list_backups(folder: Path) -> list[Path]:
    """The backups this module named in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name) and p.is_file())


def prune_backups(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups in ``folder``; the deleted paths."""
    if keep < 1:
        raise ValueError("keep at least one backup")
    old = list_backups(folder)[:-keep]
    for path in old:
        path.unlink(missing_ok=True)
    return old
