"""What a stranger learns from the operator routes: live and ready, tersely; nothing more.

The detailed ``/health`` (dependency errors) and ``/metrics`` (worker PIDs, cache
counters) answer an administrator (session or API key) or a scraper holding
``metrics.scrape_token``; everyone else gets 401 (403 for a non-admin), unless the
operator opens them (``health.public``, ``metrics.public``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from revenge.wiring import migrate
from tests.cheap_settings import FAST_ARGON2
from tests.e2e.conftest import free_port, granian_argv, run_server

pytestmark = pytest.mark.e2e

PASSWORD = "e2e admin password"
SCRAPE_TOKEN = "scrape-token-0123456789abcdef"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_details_need_an_admin_or_the_scrape_token(fresh_pg_url: str, tmp_path: Path) -> None:
    asyncio.run(migrate(fresh_pg_url))  # an empty users table: the bootstrap admin is created
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": fresh_pg_url,
        "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        "REVENGE_METRICS__SCRAPE_TOKEN": SCRAPE_TOKEN,
        **FAST_ARGON2,
    }
    with (
        run_server(granian_argv(port), port, tmp_path, env) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        live = client.get("/health/live")
        assert (live.status_code, live.json()) == (200, {"status": "alive"})
        ready = client.get("/health/ready")
        assert set(ready.json()) == {"status"}  # no service names, no errors

        for path in ("/health", "/metrics"):
            for headers in ({}, bearer("not-the-token"), bearer(SCRAPE_TOKEN[:-1])):
                reply = client.get(path, headers=headers)
                assert reply.status_code == 401, (path, headers, reply.text)
                assert reply.json()["code"] == "unauthenticated"
                assert "services" not in reply.text and "pid=" not in reply.text

        # `revenge health` sends the configured token.
        cli_env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_TEST_")}
        cli = subprocess.run(
            [sys.executable, "-m", "revenge.cli", "health", "--url", server.base_url + "/health"],
            env={**cli_env, "REVENGE_METRICS__SCRAPE_TOKEN": SCRAPE_TOKEN},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert '"services"' in cli.stdout, cli.stdout + cli.stderr

        scraped = client.get("/metrics", headers=bearer(SCRAPE_TOKEN))
        assert scraped.status_code == 200 and "revenge_worker_up" in scraped.text
        assert client.get("/health", headers=bearer(SCRAPE_TOKEN)).status_code == 200

        login = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
        admin = login.json()["token"]
        report = client.get("/health", headers=bearer(admin))
        assert report.status_code == 200 and "database" in report.json()["services"]
        assert client.get("/metrics", headers=bearer(admin)).status_code == 200
        key = client.post("/api/v1/auth/api-keys", json={"name": "ops"}, headers=bearer(admin))
        assert client.get("/metrics", headers={"x-api-key": key.json()["key"]}).status_code == 200

        created = client.post(
            "/api/v1/users",
            json={"username": "viewer", "password": PASSWORD},
            headers=bearer(admin),
        )
        assert created.status_code == 201, created.text
        viewer = client.post(
            "/api/v1/auth/login", json={"username": "viewer", "password": PASSWORD}
        ).json()["token"]
        for path in ("/health", "/metrics"):
            refused = client.get(path, headers=bearer(viewer))
            assert (refused.status_code, refused.json()["code"]) == (403, "admin_required")


def test_the_operator_may_open_them(migrated_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": migrated_url,
        "REVENGE_METRICS__PUBLIC": "true",
        "REVENGE_HEALTH__PUBLIC": "true",
    }
    with run_server(granian_argv(port), port, tmp_path, env) as server:
        assert httpx.get(server.base_url + "/metrics").status_code == 200
        assert "services" in httpx.get(server.base_url + "/health").json()
