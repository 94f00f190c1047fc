"""`granian revenge.app` over real sockets, RSGI and ASGI, and the CLI's config check."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from revenge.infra.db.embedded import cluster_path
from tests.e2e.conftest import free_port, granian_argv, run_server

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("interface", ["rsgi", "asgi"])
def test_granian_serves_health_and_problems(interface: str, tmp_path: Path, pg_url: str) -> None:
    port = free_port()
    argv = granian_argv(port, "--interface", interface)
    with run_server(argv, port, tmp_path, env={"REVENGE_DATABASE__URL": pg_url}) as server:
        live = httpx.get(server.base_url + "/health/live")
        assert live.status_code == 200
        assert live.headers["content-type"] == "application/json"
        assert live.json()["status"] == "alive"

        missing = httpx.get(server.base_url + "/no/such/route")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["code"] == "not_found"

        wrong_method = httpx.delete(server.base_url + "/health/live")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["code"] == "method_not_allowed"
        assert "GET" in wrong_method.headers["allow"]

        # Bodies are read through the same face: a malformed one is a 400, an oversized
        # one a 413 whether or not it declares its length.
        login = server.base_url + "/api/v1/auth/login"
        json_type = {"content-type": "application/json"}
        malformed = httpx.post(login, content=b"{oops", headers=json_type)
        assert (malformed.status_code, malformed.json()["code"]) == (400, "malformed_json")
        huge = b'{"username": "' + b"x" * (2 << 20) + b'"}'
        assert httpx.post(login, content=huge, headers=json_type).status_code == 413
        chunked = httpx.post(login, content=iter([huge[:1000], huge[1000:]]), headers=json_type)
        assert (chunked.status_code, chunked.json()["code"]) == (413, "payload_too_large")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "revenge.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_config_check_prints_redacted_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    env = {**os.environ, "REVENGE_DATABASE__URL": "postgresql://u:hunter2@db/x"}
    result = run_cli("config", "check", env=env)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["database"]["min_conns"] == 2
    assert "hunter2" not in result.stdout


def test_config_check_names_bad_key() -> None:
    import os

    env = {**os.environ, "REVENGE_DATABASE__MIN_CONNS": "abc"}
    result = run_cli("config", "check", env=env)
    assert result.returncode == 1
    assert "database.min_conns" in result.stderr and "abc" in result.stderr
    assert "Traceback" not in result.stderr


def test_version() -> None:
    from revenge import __version__

    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"revenge {__version__}"


def test_revenge_serve_on_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No database URL: `revenge serve` runs PostgreSQL in its data folder and comes up ready."""
    monkeypatch.delenv("REVENGE_DATABASE__URL", raising=False)
    port = free_port()
    env = {
        "REVENGE_SERVER__DATA_DIR": str(tmp_path / "data"),
        "REVENGE_SERVER__PORT": str(port),
        "REVENGE_METRICS__SCRAPE_TOKEN": "scrape-token",
    }
    argv = [sys.executable, "-m", "revenge.cli", "serve"]
    with run_server(argv, port, tmp_path, env=env, ready_path="/health/ready", timeout=120) as srv:
        operator = {"authorization": "Bearer scrape-token"}
        report = httpx.get(srv.base_url + "/health", headers=operator).json()
        services = report["services"]
        assert services["database"]["healthy"] and services["database"]["tier"] == "warm"
        assert services["session_cache"]["tier"] == "hot"
        assert services["transcoder"] == {
            **services["transcoder"],
            "tier": "cold",
            "initialized": False,
        }
        assert httpx.get(srv.base_url + "/api/v1/me").status_code == 401
    cluster = cluster_path(tmp_path / "data")  # as root: where the postgres user can reach it
    assert cluster.is_dir()
    if not cluster.is_relative_to(tmp_path):
        shutil.rmtree(cluster.parent, ignore_errors=True)
    assert "applied migration" in srv.output()
