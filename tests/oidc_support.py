"""A real OpenID provider for the tests: panva's oidc-provider on the machine's Node.js.

:func:`install_provider` runs ``npm ci`` into ``tests/oidc_provider/node_modules``
(git-ignored; versions pinned by its package-lock.json) when that folder is missing
or older than the lock file. :class:`Provider` runs ``provider.mjs`` on a free port
with a fresh RSA signing key, one client and a few accounts; ``mode(...)`` sets what
it does wrong next (see provider.mjs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.e2e.conftest import free_port

HERE = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID = "revenge-test"
CLIENT_SECRET = "a-client-secret-of-the-tests-0123456789"
REVENGE = "http://testserver"
CALLBACK = f"{REVENGE}/api/v1/oidc/test/callback"

ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {
        "email": "alice@example.org",
        "email_verified": True,
        "preferred_username": "alice",
        "name": "Alice",
        "groups": ["revenge-admins", "staff"],
    },
    "bob": {
        "email": "bob@example.org",
        "email_verified": True,
        "preferred_username": "bob",
        "groups": ["staff"],
    },
    # The same verified address as alice under another subject (linking cases).
    "alice-again": {
        "email": "alice@example.org",
        "email_verified": True,
        "preferred_username": "alice-again",
    },
    # Claims alice's address without the provider having verified it.
    "eve": {
        "email": "alice@example.org",
        "email_verified": False,
        "preferred_username": "eve",
    },
}


def install_provider() -> Path:
    """``npm ci`` the pinned provider once; the folder holding ``provider.mjs``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("Node.js and npm are needed for the OpenID provider of the tests (apt: nodejs)")
    modules = HERE / "node_modules"
    lock = HERE / "package-lock.json"
    stamp = modules / ".revenge-installed"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci of the test OpenID provider failed:\n{result.stderr[-2000:]}")
        stamp.touch()
    return HERE


class Provider:
    """The provider process; ``issuer`` is its base URL."""

    def __init__(self, folder: Path, log: Path, redirect_uris: list[str]) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = RSAKey.generate_key(
            2048, parameters={"kid": "test-1", "alg": "RS256", "use": "sig"}
        )
        config = {
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": redirect_uris,
                    "response_types": ["code"],
                    "grant_types": ["authorization_code"],
                    "token_endpoint_auth_method": "client_secret_basic",
                }
            ],
            "accounts": ACCOUNTS,
            "jwk": self.key.as_dict(private=True),
        }
        env = {**os.environ, "PORT": str(self.port), "OIDC_TEST_CONFIG": json.dumps(config)}
        self.log = log
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                ["node", "provider.mjs"], cwd=folder, env=env, stdout=sink, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"the OpenID provider exited:\n{log.read_text(errors='replace')}")
            try:
                httpx.get(f"{self.issuer}/jwks", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("the OpenID provider did not start in 60 s")
                time.sleep(0.05)

    def mode(self, **mode: Any) -> None:
        reply = httpx.post(f"{self.issuer}/__test/mode", json=mode, timeout=10)
        reply.raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def provider_env(issuer: str, name: str = "test", **extra: Any) -> dict[str, str]:
    """``REVENGE_OIDC__*`` for one provider entry (and any extra fields of it)."""
    entry = {
        "name": name,
        "display_name": "Test ID",
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": ["openid", "email", "profile", "groups"],
        "admin_claim": "groups",
        "admin_value": "revenge-admins",
        **extra,
    }
    return {"REVENGE_OIDC__PROVIDERS": json.dumps([entry]), "REVENGE_OIDC__PUBLIC_URL": REVENGE}
