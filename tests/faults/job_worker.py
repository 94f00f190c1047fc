"""``revenge worker`` with one more job kind, for the fault tests.

    python -m tests.faults.job_worker [revenge worker options]

Runs the real command (:func:`revenge.cli.main`) after registering ``faults_effect``
in the process-wide registry. A run records itself in ``faults_attempts``, sleeps
(``first_sleep`` on the first run, ``sleep`` on later ones), then writes its effect
to ``faults_effects`` keyed by the job id: a job that runs twice has one effect, the
way a real job body makes its writes idempotent. :data:`SCHEMA` creates the tables.
"""

from __future__ import annotations

import asyncio
import os
import sys

import psycopg

from revenge.infra.jobs import REGISTRY, JobContext, JobKind, Payload, RetryPolicy

KIND = "faults_effect"

SCHEMA = """
CREATE TABLE IF NOT EXISTS faults_attempts (
    job_id bigint NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS faults_effects (
    job_id bigint PRIMARY KEY, pid int NOT NULL, at timestamptz NOT NULL DEFAULT now()
);
"""

SPEC = JobKind(KIND, retry=RetryPolicy(max_attempts=20, initial_delay=0.2, max_delay=1.0))


async def effect(ctx: JobContext, payload: Payload) -> None:
    url = os.environ["REVENGE_DATABASE__URL"]
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO faults_attempts (job_id, pid) VALUES (%s, %s)", (ctx.job_id, os.getpid())
        )
        cur = await conn.execute(
            "SELECT count(*) FROM faults_attempts WHERE job_id = %s", (ctx.job_id,)
        )
        runs = (await cur.fetchone() or (0,))[0]
    await ctx.progress(1, 2, f"run {runs} in pid {os.getpid()}")
    await asyncio.sleep(float(payload.get("first_sleep" if runs == 1 else "sleep", 0)))
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO faults_effects (job_id, pid) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (ctx.job_id, os.getpid()),
        )


def effects(url: str) -> dict[int, tuple[int, int]]:
    """``job id: (runs, effects)`` for every job that ran."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT a.job_id, count(*), (SELECT count(*) FROM faults_effects e"
            " WHERE e.job_id = a.job_id) FROM faults_attempts a GROUP BY a.job_id"
        ).fetchall()
    return {int(job): (int(runs), int(done)) for job, runs, done in rows}


if __name__ == "__main__":
    from revenge.cli import main

    REGISTRY.define(SPEC)
    REGISTRY.handler(KIND)(effect)
    sys.exit(main(["worker", *sys.argv[1:]]))
