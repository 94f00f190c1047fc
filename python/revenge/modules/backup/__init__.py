"""Scheduled backups: the ``backup`` job kind writes a backup and keeps the newest N.

``backup.schedule`` (cron; empty: off) enqueues it; the body runs in whichever process
runs jobs, dumps the database the worker uses (``pg_dump`` in a thread, off the event
loop) into ``backup.folder`` (default ``<server.data_dir>/backups``) and deletes all but
the newest ``backup.keep`` there. The kind is unique and capped at one running job, and
the backup itself takes the database's backup lock, so a manual ``revenge backup`` and a
scheduled one never run at once.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from revenge import __version__
from revenge.config import Settings
from revenge.contract import Module, ModuleContext
from revenge.infra.db.backup import backup_name, create_backup, prune_backups
from revenge.infra.jobs import JobBody, JobContext, JobKind, Payload, RetryPolicy

log = logging.getLogger(__name__)

BACKUP = "backup"


def backup_folder(settings: Settings) -> Path:
    """Where scheduled backups go: ``backup.folder``, else ``<server.data_dir>/backups``."""
    configured = settings.backup.folder
    return Path(configured).expanduser() if configured else settings.server.data_path / "backups"


def backup_kind(settings: Settings) -> JobKind:
    return JobKind(
        BACKUP,
        queue="maintenance",
        unique=True,
        max_running=1,
        # A failed backup is retried once a little later (a busy lock, a brief outage);
        # a full disk fails the same way twice and is then reported as failed.
        retry=RetryPolicy(max_attempts=2, initial_delay=300.0),
        schedule=settings.backup.schedule or None,
    )


def make_body(settings: Settings) -> JobBody:
    async def run_backup(ctx: JobContext, payload: Payload) -> None:
        folder = backup_folder(settings)
        keep = int(payload.get("keep", settings.backup.keep))
        dest = folder / backup_name()
        result = await asyncio.to_thread(
            create_backup, ctx.config.url, dest, revenge_version=__version__
        )
        removed = await asyncio.to_thread(prune_backups, folder, keep)
        message = (
            f"{result.path.name}: {result.bytes} bytes in {result.seconds:.1f}s; "
            f"removed {len(removed)} old backup(s)"
        )
        log.info("backup job %d: %s", ctx.job_id, message)
        await ctx.progress(1, 1, message)

    return run_backup


def install(ctx: ModuleContext) -> None:
    ctx.job(backup_kind(ctx.settings), make_body(ctx.settings))


MODULE = Module(BACKUP, install)
