"""What can go wrong with a backup or a restore; every message says what to do."""

from __future__ import annotations


class BackupError(Exception):
    """A backup or restore failed; nothing was replaced or changed."""


class BackupBusy(BackupError):
    """Another backup or restore of the same database holds the lock (one at a time)."""


class BackupInvalid(BackupError):
    """The file is not a whole, unaltered Revenge backup (truncated, tampered, or foreign)."""


class RestoreRefused(BackupError):
    """The restore would be unsafe: the database is in use, or the backup is too new."""
