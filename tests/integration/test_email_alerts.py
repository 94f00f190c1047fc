"""The administrators hear of a job kind that keeps failing, once per streak: real jobs run by a
real worker on PostgreSQL fail after their retries, ``email_watch``'s pass reads the queue's log
and stores the alert e-mail in the outbox (sending it is ``test_email_delivery``'s part)."""

from __future__ import annotations

import asyncio

import pytest

from revenge.config import load_settings
from revenge.contract import JobContext, JobKind, Payload, RetryPolicy
from revenge.infra.db import Database
from revenge.infra.jobs import Jobs, KindRegistry
from revenge.modules.auth import repository as repo
from revenge.modules.email import EMAIL_SEND
from revenge.modules.email.watch import watch_failures
from revenge.wiring import migrate
from tests.integration.jobs_support import config, running_worker, wait_for

pytestmark = pytest.mark.integration

FLAKY = JobKind("flaky_scan", retry=RetryPolicy(max_attempts=1))


async def _admins(db: Database) -> None:
    async with db.transaction() as conn:
        boss = await repo.insert_user(conn, "boss", "boss", "x", "admin")
        await repo.set_email(conn, boss.id, "boss@example.org")
        other = await repo.insert_user(conn, "deputy", "deputy", "x", "admin")
        await repo.set_email(conn, other.id, "deputy@example.org")
        await repo.insert_user(conn, "nomail", "nomail", "x", "admin")  # no address: not told
        viewer = await repo.insert_user(conn, "viewer", "viewer", "x", "user")
        await repo.set_email(conn, viewer.id, "viewer@example.org")  # not an admin


async def _scenario(url: str) -> None:
    await migrate(url)
    settings = load_settings(
        env={"REVENGE_EMAIL__HOST": "127.0.0.1", "REVENGE_EMAIL__ALERT_AFTER": "3"}
    )
    outcomes: list[bool] = []

    async def flaky(ctx: JobContext, payload: Payload) -> None:
        if not payload["ok"]:
            raise RuntimeError("the library root is gone")
        outcomes.append(True)

    registry = KindRegistry((FLAKY, EMAIL_SEND))
    registry.handler(FLAKY.name)(flaky)
    async with Database(url) as db, Jobs.open(url, registry=registry) as jobs:
        await _admins(db)
        await watch_failures(db, jobs, settings)  # the first pass starts at the log's end

        async def run(*oks: bool) -> None:
            async with running_worker(config(url), registry):
                ids = [await jobs.enqueue(FLAKY.name, {"ok": ok}) for ok in oks]
                for job_id in ids:
                    await wait_for(
                        lambda job_id=job_id: jobs.status(job_id),
                        lambda s: s is not None and s.state in ("succeeded", "failed"),
                        f"job {job_id} finished",
                    )

        async def alerts() -> list[tuple[str, str]]:
            rows = await db.fetch_all(
                "SELECT recipient, subject FROM email_outbox WHERE key LIKE 'job-alert:%%'"
                " ORDER BY created_at, recipient"
            )
            return [(str(r[0]), str(r[1])) for r in rows]

        async def settle_and_watch() -> list[str]:
            await asyncio.sleep(3.5)  # the watch reads log rows a few seconds old
            return await wait_for(
                lambda: watch_failures(db, jobs, settings),
                lambda _keys: True,
                "a watch pass",
            )

        await run(False, False)
        assert await settle_and_watch() == []  # two in a row: not yet
        await run(False)
        told = await settle_and_watch()
        assert len(told) == 2, told  # the third: both administrators with an address
        assert await alerts() == [
            ("boss@example.org", "Revenge: flaky_scan jobs keep failing (3 in a row)"),
            ("deputy@example.org", "Revenge: flaky_scan jobs keep failing (3 in a row)"),
        ]
        body = await db.fetch_one("SELECT body FROM email_outbox WHERE key = %s", (told[0],))
        assert body is not None and "RuntimeError: the library root is gone" in str(body[0])
        await run(False, False)
        assert await settle_and_watch() == []  # the same streak: no second alert
        streak = await db.fetch_one(
            "SELECT streak, alerted FROM job_failure_streaks WHERE kind = %s", (FLAKY.name,)
        )
        assert streak == (5, True)
        await run(True)
        assert await settle_and_watch() == []
        assert (
            await db.fetch_one("SELECT 1 FROM job_failure_streaks WHERE kind = %s", (FLAKY.name,))
            is None
        )  # a success ends the streak
        await run(False, False, False)
        assert len(await settle_and_watch()) == 2  # a new streak: told again
        assert len(await alerts()) == 4

    assert outcomes == [True]


def test_a_kind_failing_again_and_again_is_reported_once_per_streak(fresh_pg_url: str) -> None:
    asyncio.run(_scenario(fresh_pg_url))
