"""PostgreSQL restarted under load: the server bends, nothing breaks, nothing is lost.

A private cluster (the machine's binaries, started and stopped by Revenge's own
embedded-database code: the shared server on 5432 is never touched) serves one
Granian worker and one ``revenge worker``. Client threads call ``/api/v1/me`` on a
session the worker has cached (a hot route) and the session list and job status
(database routes) while the cluster is stopped for a few seconds and started again
(``pg_ctl stop -m fast`` / ``pg_ctl start``). Jobs are queued before the outage and
after it. Checked:

* the hot route (``/me`` on a cached session) answers 200, or 503 with ``Retry-After``
  while the worker cannot hear revocations: since finding 4 of issue 14 a worker whose
  revocation listener is cut treats its cache hits as misses, so during an outage the
  hot route depends on PostgreSQL too. The issue's "hot routes answer throughout"
  and finding 4 pull apart here; the count of such 503s is printed, and the test
  holds the line both agree on (never a 500, never a broken connection);
* a database route answers 200 or, during the outage, 503 with ``Retry-After``;
  never another status, never a broken connection;
* database routes answer 200 again once PostgreSQL is back (the time it took is
  printed, against the issue's 5 s target; only a 30 s hang guard is asserted);
* every job queued before or after the outage ran to success, its effect once.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from revenge.infra.jobs import Jobs, KindRegistry
from tests.e2e.conftest import free_port, granian_argv, run_server
from tests.faults import effects
from tests.faults.support import (
    Load,
    app_env,
    bearer,
    login,
    private_postgres,
    summary,
    wait_until,
)

pytestmark = pytest.mark.e2e

OUTAGE = 3.0  # seconds PostgreSQL stays down
RECOVERY = 5.0  # the target for database routes to answer again: reported
HANG_GUARD = 30.0  # what is asserted: a loaded machine must not fail a healthy server


def test_postgres_restart_under_load(tmp_path: Path) -> None:
    with private_postgres() as pg:
        port = free_port()
        env = app_env(
            pg.url,
            REVENGE_JOBS__IN_PROCESS_WORKER="false",  # the job worker below runs them
            REVENGE_JOBS__STALLED_AFTER="2s",
            REVENGE_DATABASE__MAX_WAIT="0.5s",
            REVENGE_MODULES__EXTRA=effects.EXTRA,
        )
        with run_server(granian_argv(port, "--workers", "1"), port, tmp_path, env) as server:
            worker = _start_job_worker(env, tmp_path)
            try:
                # Four quick jobs show the worker is up; four long ones are mid-run at the stop.
                before = enqueue(pg.url, [{"first_sleep": 0.1}] * 4 + [{"first_sleep": 3}] * 4)
                wait_until(
                    lambda: sum(d for _, d in effects.effects(pg.url).values()) >= 4,
                    "the job worker to finish the quick jobs",
                    60,
                )
                auth = bearer(login(server.base_url))
                routes = {
                    "me": lambda c: c.get("/api/v1/me", headers=auth),
                    "sessions": lambda c: c.get("/api/v1/auth/sessions", headers=auth),
                    "job": lambda c: c.get(f"/api/v1/jobs/{before[0]}", headers=auth),
                }
                with Load(server.base_url, routes, threads=3, limit=60, pause=0.02) as load:
                    time.sleep(1.5)
                    down = load.elapsed()
                    pg.stop()
                    time.sleep(OUTAGE)
                    pg.start()
                    up = load.elapsed()
                    wait_until(
                        lambda: (
                            {a.route for a in load.snapshot() if a.at > up and a.status == 200}
                            >= set(routes)
                        ),
                        "every route to answer 200 again",
                        timeout=HANG_GUARD,
                    )
                    time.sleep(1.0)
                answers = load.snapshot()
                after = enqueue(pg.url, [{}] * 4)
                deadline = time.monotonic() + HANG_GUARD * 2
                while True:
                    states = _job_states(pg.url, [*before, *after])
                    if all(state == "succeeded" for state, _, _ in states):
                        break
                    assert time.monotonic() < deadline, (
                        f"jobs not all done: {states}\n{_history(pg.url)}"
                    )
                    time.sleep(0.2)
            finally:
                worker.terminate()
                worker.wait(30)
            print(f"\nPostgreSQL down at {down:.2f}s, back at {up:.2f}s\n{summary(answers)}")

            # The hot route: answered from the cache, or refused cleanly while deaf.
            me = [a for a in answers if a.route == "me"]
            refused_me = [a for a in me if a.status != 200]
            print(f"hot route: {len(me) - len(refused_me)} x 200, {len(refused_me)} x 503")
            assert me and all(
                a.status == 503 and a.retry_after and down <= a.at <= up + HANG_GUARD
                for a in refused_me
            ), refused_me[:5]
            # Database routes: 200, or 503 with Retry-After; nothing else, ever.
            db_routes = [a for a in answers if a.route != "me"]
            odd = [a for a in db_routes if a.status not in (200, 503)]
            assert not odd, odd[:5]
            refused = [a for a in db_routes if a.status == 503]
            assert refused, "no 503 during the outage: was PostgreSQL really down?"
            assert all(a.retry_after and int(a.retry_after) >= 1 for a in refused), refused[:5]
            last_refused = max(a.at + a.latency for a in refused)
            recovered = last_refused - up
            print(f"database routes answered 200 again {max(recovered, 0):.2f}s after PostgreSQL")
            if recovered >= RECOVERY:
                print(f"(over the {RECOVERY:g} s target: judge on an idle machine)")
            assert recovered < HANG_GUARD, f"503 until {recovered:.2f}s after PostgreSQL was back"
            assert any(a.status == 200 and a.at > last_refused for a in db_routes)
            # No job lost, none done twice.
            print(f"jobs (state, attempts): {states}")
            done = effects.effects(pg.url)
            assert {j: done[j][1] for j in (*before, *after)} == dict.fromkeys((*before, *after), 1)
            assert httpx.get(server.base_url + "/health/ready").status_code == 200


def enqueue(url: str, payloads: list[dict[str, object]]) -> list[int]:
    async def run() -> list[int]:
        async with Jobs.open(url, registry=KindRegistry((effects.KIND,))) as jobs:
            return await jobs.enqueue_many(effects.KIND.name, payloads)

    return asyncio.run(run())


def _job_states(url: str, job_ids: list[int]) -> list[tuple[str | None, int, str | None]]:
    """(state, attempts, error) of each job."""

    async def run() -> list[tuple[str | None, int, str | None]]:
        async with Jobs.open(url, registry=KindRegistry((effects.KIND,)), install=False) as jobs:
            found = [await jobs.status(j) for j in job_ids]
        return [(None, 0, None) if s is None else (s.state, s.attempts, s.error) for s in found]

    return asyncio.run(run())


def _history(url: str) -> str:
    """The queue's log and the recorded runs, for a failure message."""
    with psycopg.connect(url) as conn:
        log = conn.execute(
            "SELECT job_id, status, created, traceback::text FROM pgqueuer_log ORDER BY id"
        ).fetchall()
        queue = conn.execute("SELECT id, status, attempts, updated FROM pgqueuer").fetchall()
    return "\n".join(map(str, [*log, "queue:", *queue, "runs:", effects.effects(url)]))


def _start_job_worker(env: dict[str, str], tmp_path: Path) -> subprocess.Popen[bytes]:
    import os

    log = (tmp_path / "job-worker.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "revenge.cli", "worker", "--concurrency", "4"],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
