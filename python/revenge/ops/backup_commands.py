"""``revenge backup [--to FILE] [--keep N]`` and ``revenge restore FILE``.

The database is the configured one, or the embedded PostgreSQL in the data folder
(joined when ``revenge serve`` runs it, else started for the command and stopped after).
Backups go to the scheduled backups' folder (``backup.folder``, else
``<server.data_dir>/backups/``) unless ``--to`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from revenge import __version__

if TYPE_CHECKING:
    from revenge.config import Settings


class _Failed(Exception):
    pass


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _fail(message: str) -> int:
    print(f"revenge: {message}", file=sys.stderr)
    return 1


@contextmanager
def _database(settings: Settings) -> Iterator[str]:
    """The database URL (without migrating); an embedded server started here stops after."""
    from revenge.infra.db import DatabaseUnreachable, EmbeddedDatabaseError, resolve_url_sync

    try:
        url, stop = resolve_url_sync(settings)
    except (DatabaseUnreachable, EmbeddedDatabaseError) as exc:
        raise _Failed(str(exc)) from None
    try:
        yield url
    finally:
        if stop is not None:
            stop()


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """Write a backup while the server runs; with ``--keep N`` delete all but the newest N."""
    from revenge.infra.db import DatabaseUnreachable
    from revenge.infra.db.backup import BackupError, backup_name, create_backup, prune_backups
    from revenge.modules.backup import backup_folder

    if args.keep is not None and args.keep < 1:
        return _fail("--keep must be at least 1")
    dest = Path(args.to) if args.to else backup_folder(settings) / backup_name()
    try:
        with _database(settings) as url:
            result = create_backup(url, dest, revenge_version=__version__)
    except (_Failed, BackupError, DatabaseUnreachable) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(_os_error(exc))
    print(
        f"revenge: backup written to {result.path} ({result.bytes / 1e6:.1f} MB, "
        f"schema version {result.manifest.schema_version}, {result.seconds:.1f}s)"
    )
    if args.keep is not None:
        for old in prune_backups(result.path.parent, args.keep):
            print(f"revenge: removed old backup {old}")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    """Check a backup and restore it into a fresh database swapped in for the current one."""
    from revenge import wiring
    from revenge.infra.db import DatabaseUnreachable
    from revenge.infra.db.backup import BackupError, restore_backup, verify_backup

    path = Path(args.file)
    # The dump is unpacked beside the backup when that folder is writable (it has room
    # for the backup), else in the system's temporary folder.
    workdir = path.parent if os.access(path.parent, os.W_OK) else None
    try:
        if args.check:
            manifest = verify_backup(path, workdir=workdir)
            print(
                f"revenge: {path} is a whole backup of {manifest.database!r} made "
                f"{manifest.created_at} by Revenge {manifest.revenge_version} "
                f"(schema version {manifest.schema_version})"
            )
            return 0
        with _database(settings) as url:
            result = restore_backup(
                url,
                path,
                wiring.migrations(settings),
                keep_previous=not args.drop_previous,
                workdir=workdir,
            )
    except (_Failed, BackupError, DatabaseUnreachable) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(_os_error(exc))
    print(
        f"revenge: restored {path} (made {result.manifest.created_at}) into "
        f"{result.database!r}; applied {len(result.applied)} newer migration(s)"
    )
    if result.previous:
        print(
            f"revenge: the previous database was kept as {result.previous!r}; drop it "
            f'once satisfied (DROP DATABASE "{result.previous}")'
        )
    return 0


def cmd_postgres_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    """Move the embedded PostgreSQL to another major version by dump and restore."""
    from revenge import wiring
    from revenge.infra.db import EmbeddedDatabaseError
    from revenge.infra.db.backup import BackupError
    from revenge.infra.db.cluster_upgrade import upgrade_cluster

    if settings.database.url.get_secret_value():
        return _fail(
            "database.url is set: that PostgreSQL is not Revenge's to upgrade; use its own "
            "tools (pg_upgrade, or pg_dump and pg_restore)"
        )
    try:
        done = upgrade_cluster(
            settings.server.data_path,
            wiring.migrations(settings),
            revenge_version=__version__,
            to_major=args.to,
        )
    except (EmbeddedDatabaseError, BackupError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(_os_error(exc))
    print(
        f"revenge: the embedded PostgreSQL moved from {done.old_major} to {done.new_major} "
        f"({len(done.rows)} tables, {sum(done.rows.values())} rows, counts equal)"
    )
    print(
        f"revenge: kept the old cluster in {done.old_cluster} and the dump in {done.backup}; "
        "delete both once Revenge serves from the new one"
    )
    return 0


def add_parsers(commands: Any) -> None:
    """Add ``backup``, ``restore`` and ``postgres-upgrade`` to the ``revenge`` command."""
    backup = commands.add_parser("backup", help="write a backup of the database")
    backup.add_argument(
        "--to",
        metavar="FILE",
        help="the backup file (default: backup.folder/revenge-backup-<time>.tar)",
    )
    backup.add_argument(
        "--keep", type=int, metavar="N", help="then delete all but the newest N in that folder"
    )
    backup.set_defaults(run=cmd_backup)

    restore = commands.add_parser("restore", help="restore a backup (the server must be stopped)")
    restore.add_argument("file", metavar="FILE")
    restore.add_argument(
        "--check", action="store_true", help="only check the file (manifest and checksums)"
    )
    restore.add_argument(
        "--drop-previous",
        action="store_true",
        help="drop the replaced database instead of keeping it",
    )
    restore.set_defaults(run=cmd_restore)

    upgrade = commands.add_parser(
        "postgres-upgrade",
        help="move the embedded PostgreSQL to a newer major version (dump and restore)",
    )
    upgrade.add_argument(
        "--to", type=int, metavar="MAJOR", help="the major version (default: the newest installed)"
    )
    upgrade.set_defaults(run=cmd_postgres_upgrade)
