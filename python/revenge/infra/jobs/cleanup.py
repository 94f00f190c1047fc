"""The built-in body of the ``cleanup`` kind: trim finished jobs older than ``keep_finished``,
then run the cleanup steps modules added (``ctx.cleanup_step``: expired sessions, ...).

Scheduled by every worker at ``jobs.cleanup_schedule``; the kind is unique and capped
at one running job, so several workers never clean at once.
"""

from __future__ import annotations

import logging
from typing import cast

from revenge.infra.jobs.context import JobContext
from revenge.infra.jobs.kinds import CLEANUP, Payload
from revenge.infra.jobs.queue import Jobs
from revenge.infra.jobs.registry import KindRegistry

log = logging.getLogger(__name__)


def builtin_registry() -> KindRegistry:
    """A registry holding the platform's own kind (``cleanup``) and its body."""
    registry = KindRegistry((CLEANUP,))
    registry.handler(CLEANUP.name)(cleanup_finished_jobs)
    return registry


async def cleanup_finished_jobs(ctx: JobContext, payload: Payload) -> None:
    """Payload ``{"keep_finished": seconds}`` overrides the worker's ``keep_finished``."""
    keep = float(payload.get("keep_finished", ctx.config.keep_finished))
    jobs = cast(Jobs, ctx.jobs)  # the worker hands every body its Jobs
    report = await jobs.cleanup(keep)
    await ctx.progress(
        report.total,
        report.total,
        f"removed {report.log_rows} log rows, {report.statistics_rows} statistics rows, "
        f"{report.failed_jobs} failed jobs, {report.progress_rows} progress rows",
    )
    log.info("job cleanup: %s", report)
    failed = []
    for name, step in jobs.registry.cleanup_steps().items():
        try:
            async with jobs.pool.connection() as conn:
                removed = await step(conn)
        except Exception:
            # One broken step must not starve the others; the job fails (and retries) at the end.
            log.exception("cleanup step %s failed", name)
            failed.append(name)
        else:
            log.info("cleanup step %s removed %d rows", name, removed)
    if failed:
        raise RuntimeError(f"cleanup steps failed: {', '.join(failed)}")
