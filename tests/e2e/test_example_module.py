"""The module contract end to end: ``tests/example_module`` through real ``revenge migrate``,
``revenge serve`` and ``revenge worker`` processes, wired by one line (``modules.extra``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.cheap_settings import FAST_ARGON2
from tests.e2e.conftest import free_port, run_server

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "example admin password"
DEADLINE = 60.0  # generous: the proof is that the job runs, not how fast


def env_for(url: str, tmp_path: Path) -> dict[str, str]:
    python_path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "PYTHONPATH": python_path,  # so the processes can import tests.example_module
        "REVENGE_MODULES__EXTRA": '["tests.example_module"]',  # the one line of wiring
        "REVENGE_DATABASE__URL": url,
        "REVENGE_SERVER__DATA_DIR": str(tmp_path),
        "REVENGE_JOBS__IN_PROCESS_WORKER": "false",  # jobs run in `revenge worker` only
        "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        **FAST_ARGON2,
    }


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "revenge.cli", *args]


def call(
    base: str, method: str, path: str, body: object = None, token: str = ""
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def notes(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [
            (str(text), str(by))
            for text, by in conn.execute("SELECT text, written_by FROM example_notes ORDER BY id")
        ]


def test_the_example_module_is_migrated_served_and_run(fresh_pg_url: str, tmp_path: Path) -> None:
    env = env_for(fresh_pg_url, tmp_path)

    migrated = subprocess.run(
        cli("migrate"), env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "applied migration example/0001_example.sql" in migrated.stderr
    with psycopg.connect(fresh_pg_url) as conn:
        row = conn.execute(
            "SELECT name FROM schema_migrations WHERE module = 'example' AND version = 1"
        ).fetchone()
    assert row == ("0001_example.sql",) and notes(fresh_pg_url) == []

    port = free_port()
    with run_server(cli("serve", "--port", str(port)), port, tmp_path, env) as server:
        base = server.base_url
        status, login = call(
            base, "POST", "/api/v1/auth/login", {"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert status == 200, login
        token = login["token"]

        status, shown = call(base, "GET", "/api/v1/example", token=token)
        assert status == 200, shown
        assert shown == {"hello": "admin", "notes": 0, "scribe_built": False}
        assert call(base, "GET", "/api/v1/example")[0] == 401  # a module's route needs a caller
        status, health = call(base, "GET", "/health", token=token)  # for operators
        assert health["services"]["example.greeter"]["healthy"] is True
        assert health["services"]["example.scribe"]["tier"] == "cold"
        assert health["services"]["example.scribe"]["initialized"] is False

        status, queued = call(base, "POST", "/api/v1/example/notes", {"text": "hi"}, token)
        assert status == 202, queued
        assert call(base, "POST", "/api/v1/example/notes", {"text": ""}, token)[0] == 422

        log = (tmp_path / "worker.log").open("wb")
        worker = subprocess.Popen(cli("worker"), env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + DEADLINE
            while not notes(fresh_pg_url):
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                time.sleep(0.1)
            # Written by the worker process, whose runtime built the cold service.
            assert notes(fresh_pg_url) == [("hi", f"scribe@{worker.pid}")]
            status, job = call(base, "GET", f"/api/v1/jobs/{queued['job_id']}", token=token)
            while job["state"] != "succeeded" and time.monotonic() < deadline:
                time.sleep(0.1)
                status, job = call(base, "GET", f"/api/v1/jobs/{queued['job_id']}", token=token)
            assert job["kind"] == "example_note" and job["state"] == "succeeded", job
        finally:
            worker.send_signal(signal.SIGINT)
            assert worker.wait(30) == 0, (tmp_path / "worker.log").read_text()
            log.close()

        status, shown = call(base, "GET", "/api/v1/example", token=token)
        # The server's own cold service was never used, so never built.
        assert shown == {"hello": "admin", "notes": 1, "scribe_built": False}


def test_without_the_line_the_module_is_not_there(migrated_url: str, tmp_path: Path) -> None:
    """The shipped list does not include the example: its route is a 404 there."""
    env = env_for(migrated_url, tmp_path)
    del env["REVENGE_MODULES__EXTRA"], env["REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD"]
    port = free_port()
    with run_server(cli("serve", "--port", str(port)), port, tmp_path, env) as server:
        assert call(server.base_url, "GET", "/api/v1/example")[0] == 404
