"""The runtime view under two Granian workers: it says which worker answered, which
workers are live, and in how many of them each cold service is built.

``revenge serve --workers 2`` on a free port against a fresh database; the view is read
over fresh connections until both workers have answered (the kernel spreads connections).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest

from revenge.wiring import migrate
from tests.e2e.conftest import free_port, run_server

pytestmark = pytest.mark.e2e

PASSWORD = "e2e admin password"


def test_the_runtime_view_names_the_answering_worker_among_the_live_ones(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    asyncio.run(migrate(fresh_pg_url))
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": fresh_pg_url,
        "REVENGE_SERVER__DATA_DIR": str(tmp_path / "data"),
        "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        "REVENGE_AUTH__ARGON2_MEMORY_KIB": "8192",
        "REVENGE_AUTH__ARGON2_TIME_COST": "1",
    }
    argv = [sys.executable, "-m", "revenge.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "2"]  # fmt: skip
    with run_server(argv, port, tmp_path, env) as server:
        token = httpx.post(
            server.base_url + "/api/v1/auth/login",
            json={"username": "admin", "password": PASSWORD},
            timeout=30,
        ).json()["token"]
        answered: dict[int, dict] = {}
        for _ in range(400):
            with httpx.Client(base_url=server.base_url, timeout=10) as client:
                reply = client.get(
                    "/api/v1/admin/runtime", headers={"authorization": f"Bearer {token}"}
                )
            assert reply.status_code == 200, reply.text
            view = reply.json()
            workers = view["workers"]
            assert workers["answered_by"] == view["pid"]
            if len(workers["live"]) == 2:  # the second worker may still be starting
                answered[view["pid"]] = workers
            if len(answered) == 2:
                break
        else:
            pytest.fail(f"two workers never both answered: {answered}")
        pids = set(answered)
        for workers in answered.values():
            assert workers["shared"] is True
            assert set(workers["live"]) == pids  # both see both
            assert workers["services_built"], workers  # the cold services, each 0..2
            assert all(0 <= n <= 2 for n in workers["services_built"].values()), workers
