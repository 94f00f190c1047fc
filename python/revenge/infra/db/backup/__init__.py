"""Backups of Revenge's database and their restore (``revenge backup`` / ``revenge restore``).

A backup is one file: ``pg_dump`` of the database plus a manifest (Revenge version,
schema, checksums, time). Media files and regenerable caches are not in it.
"""

from revenge.infra.db.backup.archive import Manifest, SchemaRecord
from revenge.infra.db.backup.create import (
    BackupResult,
    backup_name,
    create_backup,
    list_backups,
    prune_backups,
)
from revenge.infra.db.backup.errors import BackupBusy, BackupError, BackupInvalid, RestoreRefused
from revenge.infra.db.backup.pgtools import ToolNotFound, find_tool
from revenge.infra.db.backup.restore import RestoreResult, restore_backup, verify_backup

__all__ = [
    "BackupBusy",
    "BackupError",
    "BackupInvalid",
    "BackupResult",
    "Manifest",
    "RestoreRefused",
    "RestoreResult",
    "SchemaRecord",
    "ToolNotFound",
    "backup_name",
    "create_backup",
    "find_tool",
    "list_backups",
    "prune_backups",
    "restore_backup",
    "verify_backup",
]
