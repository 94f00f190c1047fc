"""Processes SIGKILLed: a job worker in the middle of a job, a serving worker under load.

``revenge worker`` killed mid-job: tests/integration/test_jobs_recovery.py shows the
library's side (another worker re-runs a stalled job); here it is the real command,
twice over, with a job whose effect is recorded: the job runs again on the second
worker, its effect lands once.

A serving worker killed: ``revenge serve`` (Granian, two workers) brings a new worker
up in its place, the server answers meanwhile, and a session issued before the kill
still works on every worker after it (sessions live in PostgreSQL, not in a worker).
No ffmpeg is left behind: pending until the playback module serves transcodes (a
worker running none has no child to leave).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from revenge.config import load_settings
from revenge.infra.jobs import Jobs, KindRegistry
from revenge.wiring import migrate
from tests.e2e.conftest import free_port, run_server
from tests.faults import effects
from tests.faults.support import (
    Load,
    app_env,
    bearer,
    kill,
    login,
    summary,
    wait_until,
    workers_of,
)

pytestmark = pytest.mark.e2e


def _job_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "revenge.cli", "worker", "--concurrency", "2"],
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def _status(url: str, job_id: int) -> tuple[str, int] | None:
    async def run() -> tuple[str, int] | None:
        registry = KindRegistry((effects.KIND,))
        async with Jobs.open(url, registry=registry, install=False) as jobs:
            status = await jobs.status(job_id)
        return None if status is None else (status.state, status.attempts)

    return asyncio.run(run())


def _enqueue(url: str, payload: dict[str, object]) -> int:
    async def run() -> int:
        async with Jobs.open(url, registry=KindRegistry((effects.KIND,))) as jobs:
            return await jobs.enqueue(effects.KIND.name, payload)

    return asyncio.run(run())


def test_revenge_worker_sigkilled_mid_job_runs_it_again_once(
    tmp_path: Path, fresh_pg_url: str
) -> None:
    env = app_env(
        fresh_pg_url, REVENGE_JOBS__STALLED_AFTER="1s", REVENGE_MODULES__EXTRA=effects.EXTRA
    )
    asyncio.run(migrate(fresh_pg_url, load_settings(env=env)))
    log = tmp_path / "job-workers.log"
    # The first run sleeps for a minute: it is certainly mid-job when killed.
    job_id = _enqueue(fresh_pg_url, {"first_sleep": 60})
    first = _job_worker(env, log)
    second = None
    try:
        wait_until(lambda: effects.effects(fresh_pg_url), "the first run to start", 60)
        assert effects.effects(fresh_pg_url) == {job_id: (1, 0)}
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        killed = time.monotonic()
        second = _job_worker(env, log)
        wait_until(
            lambda: _status(fresh_pg_url, job_id) == ("succeeded", 2),
            "the second worker to run the job again",
            60,
        )
        print(f"\nre-run and done {time.monotonic() - killed:.2f}s after SIGKILL")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(30)
    runs, done = effects.effects(fresh_pg_url)[job_id]
    assert (runs, done) == (2, 1), log.read_text()
    with psycopg.connect(fresh_pg_url) as conn:
        pids = {
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM faults_attempts WHERE job_id = %s", (job_id,)
            )
        }
    assert pids == {first.pid, second.pid}


def test_serving_worker_sigkilled_comes_back_and_sessions_survive(
    tmp_path: Path, fresh_pg_url: str
) -> None:
    port = free_port()
    env = app_env(
        fresh_pg_url,
        REVENGE_SERVER__PORT=str(port),
        REVENGE_SERVER__WORKERS="2",
        REVENGE_SERVER__DATA_DIR=str(tmp_path / "data"),
    )
    argv = [sys.executable, "-m", "revenge.cli", "serve"]
    with run_server(argv, port, tmp_path, env, ready_path="/health/ready") as server:
        token = login(server.base_url)
        auth = bearer(token)
        before = wait_until(
            lambda: len(workers_of(server.process.pid)) == 2 and workers_of(server.process.pid),
            "two serving workers",
        )
        assert isinstance(before, list)
        victim = before[0].pid
        # A connection per request, so the kernel spreads them over both workers.
        once = {**auth, "connection": "close"}
        routes = {"me": lambda c: c.get("/api/v1/me", headers=once)}
        with Load(server.base_url, routes, threads=3, limit=60, pause=0.01) as load:
            time.sleep(1.0)
            killed_at = load.elapsed()
            kill(victim)
            wait_until(
                lambda: (
                    len(pids := {w.pid for w in workers_of(server.process.pid)}) == 2
                    and victim not in pids
                ),
                "Granian to start a worker in place of the killed one",
            )
            back_at = load.elapsed()
            time.sleep(1.0)
        answers = load.snapshot()
        print(f"\nworker {victim} killed at {killed_at:.2f}s, replaced at {back_at:.2f}s")
        print(summary(answers))
        assert server.process.poll() is None, server.output()
        # Only requests the victim held may fail; the server went on answering, and
        # everything sent once the new worker is up is a 200.
        lost = [a for a in answers if a.status != 200]
        assert all(a.status == 0 and a.at <= back_at for a in lost), lost
        assert len(lost) <= 3, lost
        assert any(a.status == 200 and a.at > killed_at for a in answers)
        assert {a.status for a in answers if a.at > back_at} == {200}
        # The session issued before the kill works on whichever worker answers.
        with httpx.Client(base_url=server.base_url, headers=once, timeout=10) as client:
            statuses = {client.get("/api/v1/me").status_code for _ in range(40)}
        assert statuses == {200}
        assert "Traceback" not in server.output()
