"""Single sign-on through a real server (granian revenge.app) over sockets, against a real OpenID provider.

One browser (an httpx client with a cookie jar) goes from Revenge to the provider and back;
then the cold service's life as ``/health`` and ``/metrics`` show it: cold after start,
ready after the first sign-in, offloaded after ``offload.idle_ttl``, spin-up recorded in
``revenge_lazy_init_seconds``. With the provider stopped: a clear 503 problem, ``/health``
degraded (never a 500), and password sign-in unaffected.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from revenge.wiring import migrate
from tests.cheap_settings import FAST_ARGON2
from tests.e2e.browser_support import ARGS, CHROMIUM
from tests.e2e.conftest import Server, free_port, granian_argv, run_server
from tests.oidc_support import Provider, install_provider, provider_env

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple 42"
DEADLINE = 60.0


def _oidc(server: Server) -> dict[str, Any]:
    services: dict[str, Any] = httpx.get(server.base_url + "/health", timeout=10).json()["services"]
    return dict(services["oidc"])


def _metrics(server: Server) -> str:
    reply = httpx.get(server.base_url + "/metrics", timeout=10)
    assert reply.status_code == 200, (reply.status_code, reply.headers, server.output()[-3000:])
    return reply.text


def _wait_for(server: Server, want: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while True:
        status = _oidc(server)
        if all(status.get(k) == v for k, v in want.items()):
            return status
        assert time.monotonic() < deadline, f"oidc never became {want}: {status}"
        time.sleep(0.2)


@pytest.fixture
def served(fresh_pg_url: str, tmp_path: Path) -> Iterator[tuple[Server, Provider]]:
    import asyncio

    asyncio.run(migrate(fresh_pg_url))
    subprocess.run(
        [sys.executable, "-m", "revenge.cli", "user", "create", "pat", "--password-stdin"],
        input=PASSWORD.encode(),
        check=True,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": ":".join(sys.path),
            "REVENGE_DATABASE__URL": fresh_pg_url,
            **FAST_ARGON2,
        },
        capture_output=True,
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    provider = Provider(
        install_provider(), tmp_path / "provider.log", [f"{base}/api/v1/oidc/test/callback"]
    )
    env = {
        "REVENGE_DATABASE__URL": fresh_pg_url,
        "REVENGE_SERVER__DATA_DIR": str(tmp_path / "data"),
        "REVENGE_HEALTH__PUBLIC": "true",
        "REVENGE_HEALTH__INTERVAL": "300ms",
        "REVENGE_METRICS__PUBLIC": "true",
        "REVENGE_OFFLOAD__IDLE_TTL": "2s",
        "REVENGE_OFFLOAD__SWEEP_INTERVAL": "300ms",
        **FAST_ARGON2,
        **provider_env(provider.issuer),
        "REVENGE_OIDC__PUBLIC_URL": base,
    }
    try:
        # granian itself: `revenge serve` answers /metrics with an empty body today (its parent
        # loads prometheus_client, migrating, before it sets the multiprocess folder)
        with run_server(granian_argv(port), port, tmp_path, env=env) as server:
            yield server, provider
    finally:
        provider.stop()


def _sign_in(server: Server) -> httpx.Client:
    browser = httpx.Client(timeout=30)
    url = server.base_url + "/api/v1/oidc/test/login?return_to=/web/"
    for _ in range(12):
        reply = browser.get(url)
        location = reply.headers.get("location")
        assert reply.status_code == 303 and location, (reply.status_code, reply.text)
        if location == "/web/":
            return browser
        url = str(reply.url.join(location))  # the provider signs in its first account: alice
    raise AssertionError("the sign-in never came back")


def test_sign_in_and_the_cold_service_life(served: tuple[Server, Provider]) -> None:
    server, provider = served
    assert _wait_for(server, {"initialized": False, "healthy": True})

    browser = _sign_in(server)
    try:
        me = browser.get(server.base_url + "/api/v1/me")  # the session cookie, as a browser
        assert me.status_code == 200 and me.json()["username"] == "alice"
    finally:
        browser.close()
    _wait_for(server, {"initialized": True, "healthy": True})
    metrics = _metrics(server)
    assert 'revenge_lazy_init_seconds_count{service="oidc"}' in metrics

    # Idle past offload.idle_ttl: offloaded (its client closed), healthy.
    _wait_for(server, {"initialized": False, "healthy": True})
    metrics = _metrics(server)
    assert 'revenge_offload_total{reason="idle",service="oidc"}' in metrics

    # The provider goes away: a clear problem, /health degraded, passwords still work.
    provider.stop()
    reply = httpx.get(server.base_url + "/api/v1/oidc/test/login", timeout=30)
    assert reply.status_code == 503, reply.text
    assert reply.json()["code"] == "oidc_provider_unavailable"
    status = _wait_for(server, {"initialized": True, "healthy": False})
    assert "test" in status["error"]
    health = httpx.get(server.base_url + "/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    login = httpx.post(
        server.base_url + "/api/v1/auth/login",
        json={"username": "pat", "password": PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200, login.text


def test_the_sign_in_page_offers_the_provider(served: tuple[Server, Provider]) -> None:
    """Debian's chromium: the sign-in page's "Sign in with Test ID" ends signed in, back home."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (scripts/test.sh installs it)")
    server, _ = served
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(server.base_url + "/#/signin?next=/admin/users")
            page.click("a:has-text('Sign in with Test ID')")
            page.wait_for_url(re.compile(r".*#/admin/users$"))
            me = page.evaluate("fetch('/api/v1/me').then((r) => r.json())")
            assert me["username"] == "alice" and me["role"] == "admin"
        finally:
            browser.close()
