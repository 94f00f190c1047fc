"""The scheduled cleanup runs the steps modules add: expired sessions go, live ones stay."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

from revenge.config import load_settings
from revenge.infra.jobs import Jobs
from revenge.wiring import build, migrate
from tests.integration.jobs_support import config, running_worker, wait_for

pytestmark = pytest.mark.integration


async def _seed_sessions(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO users (username, password_hash) VALUES ('ann', 'x') RETURNING id"
        )
        await conn.execute(
            "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES "
            "(repeat('a', 64), 1, now() - interval '1 hour'),"
            "(repeat('b', 64), 1, now() + interval '1 hour')"
        )


async def _live_sessions(url: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT left(token_hash, 1) FROM sessions ORDER BY 1")
        return [row[0] for row in await cur.fetchall()]


async def test_cleanup_job_runs_every_step_and_fails_if_one_did(fresh_pg_url: str) -> None:
    url = fresh_pg_url
    await migrate(url)
    await _seed_sessions(url)
    # The module list's registry: auth added its step there through ctx.cleanup_step.
    shipped = build(load_settings(env={"REVENGE_DATABASE__URL": url}), role="migrate").kinds
    assert "auth.expired_sessions" in shipped.cleanup_steps()

    async def broken(conn: AsyncConnection[Any]) -> int:
        raise RuntimeError("disk on fire")

    registry = type(shipped)(tuple(shipped.kinds().values()))
    registry.handler("cleanup")(shipped.body("cleanup"))  # type: ignore[arg-type]
    registry.add_cleanup_step("broken", broken)  # runs first, and fails
    for name, step in shipped.cleanup_steps().items():
        registry.add_cleanup_step(name, step)
    async with Jobs.open(url, registry=registry) as jobs:
        job_id = await jobs.enqueue("cleanup")
        async with running_worker(config(url), registry):
            status = await wait_for(
                lambda: jobs.status(job_id),
                lambda s: s is not None and s.attempts >= 1 and s.state != "running",
                "the cleanup job to run once",
            )
    # The broken step ran first and failed, yet the sessions step still did its work.
    assert await _live_sessions(url) == ["b"]
    assert status is not None and status.state != "succeeded"
    assert "broken" in (status.error or "")
