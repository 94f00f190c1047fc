"""The built-in body of the ``cleanup`` kind: trim finished jobs older than ``keep_finished``,
then run the cleanup steps modules added (expired sessions, ...).

Scheduled by every worker at ``jobs.cleanup_schedule``; the kind is unique and capped
at one running job, so several workers never clean at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import AsyncConnection

from revenge.infra.jobs.context import JobContext
from revenge.infra.jobs.kinds import REGISTRY, Payload

log = logging.getLogger(__name__)

CleanupStep = Callable[[AsyncConnection[Any]], Awaitable[int]]
"""Deletes what is stale on one connection; returns how many rows it removed."""

_STEPS: dict[str, CleanupStep] = {}


def add_cleanup_step(name: str, step: CleanupStep) -> None:
    """Run ``step`` with every cleanup job (modules call this at import)."""
    _STEPS[name] = step


@REGISTRY.handler("cleanup")
async def cleanup_finished_jobs(ctx: JobContext, payload: Payload) -> None:
    """Payload ``{"keep_finished": seconds}`` overrides the worker's ``keep_finished``."""
    keep = float(payload.get("keep_finished", ctx.config.keep_finished))
    report = await ctx.jobs.cleanup(keep)
    await ctx.progress(
        report.total,
        report.total,
        f"removed {report.log_rows} log rows, {report.statistics_rows} statistics rows, "
        f"{report.failed_jobs} failed jobs, {report.progress_rows} progress rows",
    )
    log.info("job cleanup: %s", report)
    failed = []
    for name, step in _STEPS.items():
        try:
            async with ctx.jobs.pool.connection() as conn:
                removed = await step(conn)
        except Exception:
            # One broken step must not starve the others; the job fails (and retries) at the end.
            log.exception("cleanup step %s failed", name)
            failed.append(name)
        else:
            log.info("cleanup step %s removed %d rows", name, removed)
    if failed:
        raise RuntimeError(f"cleanup steps failed: {', '.join(failed)}")
