"""``/health`` of a real server for the remote metadata providers (TMDb), over real sockets
against the local TMDb-like server (``tests/integration/_tmdb_server.py``; this machine
reaches no internet, so the real TMDb is never called): disabled without an API key;
ready when TMDb answers; degraded, never a 500, when it is unreachable, with the rest of
the server answering; the API key in no log line either way.

``lazy_init.metadata_providers: false`` builds the service at start-up, so its health shows
without a library to look up (the cold path is covered by the integration tests).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from revenge.wiring import migrate
from tests.e2e.conftest import free_port, granian_argv, run_server
from tests.integration._tmdb_server import API_KEY, TmdbServer

pytestmark = pytest.mark.e2e


def health(fresh_pg_url: str, tmp_path: Path, **metadata: str) -> tuple[dict[str, object], str]:
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": fresh_pg_url,
        "REVENGE_HEALTH__PUBLIC": "true",
        "REVENGE_JOBS__IN_PROCESS_WORKER": "false",
        "REVENGE_SERVER__DATA_DIR": str(tmp_path / "data"),
        "REVENGE_LAZY_INIT__METADATA_PROVIDERS": "false",
        **{f"REVENGE_METADATA__{k.upper()}": v for k, v in metadata.items()},
    }
    with (
        run_server(granian_argv(port), port, tmp_path, env) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        reply = client.get("/health")
        assert reply.status_code == 200, reply.text
        assert client.get("/health/ready").status_code == 200
        assert client.get("/health/live").status_code == 200
        body = reply.json()
    return body, server.output()


def test_disabled_ready_and_degraded(fresh_pg_url: str, tmp_path: Path) -> None:
    asyncio.run(migrate(fresh_pg_url))
    body, _ = health(fresh_pg_url, tmp_path)
    status = body["services"]["metadata_providers"]  # type: ignore[index]
    assert status["initialized"] is False and status["healthy"] is True
    assert "tmdb_api_key" in status["disabled"]

    with TmdbServer() as tmdb:
        body, log = health(fresh_pg_url, tmp_path, tmdb_api_key=API_KEY, tmdb_url=tmdb.url)
        assert tmdb.api_requests("/configuration")  # spun up through a real socket
    status = body["services"]["metadata_providers"]  # type: ignore[index]
    assert status["initialized"] is True and status["healthy"] is True, body
    assert "disabled" not in status and API_KEY not in log

    down = f"http://127.0.0.1:{free_port()}/3"  # nothing listens there
    body, log = health(
        fresh_pg_url, tmp_path, tmdb_api_key=API_KEY, tmdb_url=down, tmdb_timeout="1s"
    )
    status = body["services"]["metadata_providers"]  # type: ignore[index]
    assert body["status"] == "degraded" and status["healthy"] is False, body
    assert body["services"]["database"]["healthy"] is True  # type: ignore[index]
    assert API_KEY not in log and API_KEY not in str(body)
