"""Move the embedded PostgreSQL's data to another major version: dump with the old server,
restore into a new cluster, check, keep the old folder (``revenge postgres-upgrade``).

A data folder is readable only by the major version that made it. When the machine has
both the cluster's version and a newer one installed (Debian keeps ``postgresql-15``
beside ``postgresql-17`` until it is removed), this does what an operator would:

1. refuse while the cluster runs (``revenge serve``/``worker`` must be stopped);
2. start the cluster with its own binaries, count every table's rows, write a Revenge
   backup of it (``pg_dump``, manifest, checksums) next to the cluster, stop it;
3. move the cluster folder aside (``postgres.pg15.<time>``), create a new cluster with
   the new binaries, restore the backup into it (newer migrations applied), count again;
4. on any failure the new cluster is removed and the old folder put back, so the
   data folder is as it was; on success the old folder and the backup stay until the
   operator deletes them.

It runs only with the machine's PostgreSQL binaries (``system``), the backend every
root-run and packaged install uses; the same steps by hand are in
:func:`~revenge.infra.db.embedded.major_change_message`.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from revenge.infra.db import system_pg
from revenge.infra.db.backup import create_backup, restore_backup
from revenge.infra.db.embedded import (
    DATABASE_NAME,
    REQUIRED_EXTENSIONS,
    _existing_major,
    _provision,
    _with_database,
    cluster_path,
    major_change_message,
    record_major,
)
from revenge.infra.db.errors import EmbeddedDatabaseError
from revenge.infra.db.migrate import Migration


@dataclass(frozen=True, slots=True)
class ClusterUpgrade:
    old_major: int
    new_major: int
    old_cluster: Path  # the previous cluster folder, kept
    backup: Path  # the dump it was restored from, kept
    rows: dict[str, int]  # table -> rows, equal before and after


def upgrade_cluster(
    data_dir: Path,
    migrations: Sequence[Migration],
    *,
    revenge_version: str,
    to_major: int | None = None,
) -> ClusterUpgrade:
    """Dump the embedded cluster with its own binaries and restore it into a new cluster of
    ``to_major`` (default: the newest installed with the needed extensions). Blocking.

    The same major version is allowed (a rebuild by dump and restore); an older one is not.
    Raises :class:`EmbeddedDatabaseError` saying what to do; the data folder is then as it was.
    """
    pgdata = cluster_path(data_dir)
    existing = _existing_major(pgdata)
    if existing is None:
        raise EmbeddedDatabaseError(f"no embedded PostgreSQL cluster in {pgdata}")
    if system_pg.running_socket_dir(pgdata) is not None:
        raise EmbeddedDatabaseError(
            f"the embedded PostgreSQL in {pgdata} is running: stop revenge serve and revenge "
            "worker (and any backup) first"
        )
    found = system_pg.find_binaries()
    old = next((b for b in found if b.major == existing), None)
    if old is None:
        raise EmbeddedDatabaseError(
            major_change_message(pgdata, existing, [b.major for b in found])
        )
    usable = [b for b in found if all(b.has_extension(e) for e in REQUIRED_EXTENSIONS)]
    if to_major is not None:
        usable = [b for b in usable if b.major == to_major]
    if not usable:
        wanted = f"PostgreSQL {to_major}" if to_major is not None else "a PostgreSQL"
        raise EmbeddedDatabaseError(
            f"{wanted} server with the {', '.join(REQUIRED_EXTENSIONS)} extension is not "
            f"installed (Debian: apt install postgresql-{to_major or 'NN'} postgresql-contrib)"
        )
    new = max(usable, key=lambda b: b.major)
    if new.major < existing:
        raise EmbeddedDatabaseError(
            f"PostgreSQL {new.major} is older than the cluster's {existing}: not a way back"
        )

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    backup = pgdata.parent / f"postgres-pg{existing}-to-pg{new.major}-{stamp}.tar"
    try:
        server = _start(old, pgdata)
        rows = _row_counts(_with_database(server, DATABASE_NAME))
        create_backup(
            _with_database(server, DATABASE_NAME), backup, revenge_version=revenge_version
        )
    finally:
        system_pg.stop(old, pgdata)

    aside = pgdata.with_name(f"{pgdata.name}.pg{existing}.{stamp}")
    pgdata.rename(aside)
    try:
        try:
            server = _start(new, pgdata)
            database = _with_database(server, DATABASE_NAME)
            restore_backup(database, backup, migrations, keep_previous=False, workdir=pgdata.parent)
            after = _row_counts(database)
            lost = {t: (n, after.get(t)) for t, n in rows.items() if after.get(t) != n}
            if lost:
                raise EmbeddedDatabaseError(
                    f"the restored cluster's row counts differ (table: before, after): {lost}; "
                    f"the cluster in {pgdata} is as it was"
                )
            _provision(server, pgdata)  # the restored objects pass to the app's role
        finally:
            system_pg.stop(new, pgdata)
        record_major(pgdata, "system", new.bindir)
    except BaseException:
        shutil.rmtree(pgdata, ignore_errors=True)
        aside.rename(pgdata)
        raise
    return ClusterUpgrade(existing, new.major, aside, backup, rows)


def _start(binaries: system_pg.Binaries, pgdata: Path) -> str:
    """Start ``pgdata`` with ``binaries`` (made when missing, provisioned): the superuser's URL."""
    try:
        server, _ = system_pg.start(binaries, pgdata)
        _provision(server, pgdata)
    except (OSError, RuntimeError, psycopg.Error) as exc:
        raise EmbeddedDatabaseError(
            f"could not start PostgreSQL {binaries.major} in {pgdata}: {exc}"
        ) from exc
    return server


def _row_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        counts: dict[str, int] = {}
        for schema, name in tables:
            if name == "schema_migrations":
                continue  # newer migrations may add rows on restore
            query = sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(name)
            )
            counts[f"{schema}.{name}"] = int(conn.execute(query).fetchone()[0])  # type: ignore[index]
    return counts
