"""The built-in body of the ``cleanup`` kind: trim finished jobs older than ``keep_finished``.

Scheduled by every worker at ``jobs.cleanup_schedule``; the kind is unique and capped
at one running job, so several workers never clean at once.
"""

from __future__ import annotations

import logging

from revenge.infra.jobs.context import JobContext
from revenge.infra.jobs.kinds import REGISTRY, Payload

log = logging.getLogger(__name__)


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
