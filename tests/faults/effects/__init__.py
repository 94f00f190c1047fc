"""A module for the fault tests: one job kind whose effect is recorded.

Wired as an operator would a third-party module:
``REVENGE_MODULES__EXTRA='["tests.faults.effects"]'`` for ``revenge worker`` (and
``revenge serve``, so its migration applies wherever the list is read).

A run of ``faults_effect`` records itself in ``faults_attempts``, sleeps
(``first_sleep`` on its first run, ``sleep`` on later ones), then writes its effect to
``faults_effects`` keyed by the job id: a job that runs twice has one effect, the way a
real job body makes its writes idempotent. :func:`effects` reads the tally.
"""

from __future__ import annotations

import asyncio
import os
from importlib import resources

import psycopg

from revenge.contract import (
    DATABASE,
    JobContext,
    JobKind,
    Module,
    ModuleContext,
    Payload,
    RetryPolicy,
)

KIND = JobKind(
    "faults_effect", retry=RetryPolicy(max_attempts=20, initial_delay=0.2, max_delay=1.0)
)
EXTRA = '["tests.faults.effects"]'


async def effect(ctx: JobContext, payload: Payload) -> None:
    db = ctx.services.get(DATABASE)
    pid = os.getpid()
    await db.execute("INSERT INTO faults_attempts (job_id, pid) VALUES (%s, %s)", (ctx.job_id, pid))
    row = await db.fetch_one(
        "SELECT count(*) FROM faults_attempts WHERE job_id = %s", (ctx.job_id,)
    )
    runs = int(row[0]) if row else 0
    await ctx.progress(1, 2, f"run {runs} in pid {pid}")
    await asyncio.sleep(float(payload.get("first_sleep" if runs == 1 else "sleep", 0)))
    await db.execute(
        "INSERT INTO faults_effects (job_id, pid) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (ctx.job_id, pid),
    )


def install(ctx: ModuleContext) -> None:
    ctx.job(KIND, effect)
    ctx.migrations(resources.files(__name__) / "migrations")


def effects(url: str) -> dict[int, tuple[int, int]]:
    """``job id: (runs, effects)`` for every job that started a run."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT a.job_id, count(*), (SELECT count(*) FROM faults_effects e"
            " WHERE e.job_id = a.job_id) FROM faults_attempts a GROUP BY a.job_id"
        ).fetchall()
    return {int(job): (int(runs), int(done)) for job, runs, done in rows}


MODULE = Module("faults_effects", install)
