"""Every route of the real app refuses a caller without credentials — so a new route cannot forget.

The route table is read from ``revenge.app.build_app`` (what ``granian revenge.app``
serves); each route is then called over a real socket on a real server. Only the
routes the design makes public may answer without a session or API key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from revenge.app import build_app
from revenge.config import load_settings
from revenge.http import Route
from revenge.modules.playback.routes import GUARDED_PATHS
from tests.e2e.conftest import free_port, granian_argv, run_server

pytestmark = pytest.mark.e2e

LOGIN = "/api/v1/auth/login"
PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


GUARDED = {"/health", "/metrics", *GUARDED_PATHS}
"""Public to the router (a scrape token or a signed media URL is no session), guarded by their
handlers."""


SIGN_IN = {
    ("POST", LOGIN),
    ("POST", "/api/v1/auth/device"),  # a TV asks for a code to show
    ("POST", "/api/v1/auth/device/token"),  # and polls with its secret for its session
    # first run: nobody can sign in yet; creating the admin needs loopback or the setup code
    ("GET", "/api/v1/setup"),
    ("POST", "/api/v1/setup"),
}
WEB_CLIENT = {"/", "/static/{build}/{file}", "/static/{build}/vendor/{package}/{file}"}
"""The web client's code (no data: it asks the API, with a credential, for that)."""


def allowed_public(method: str, path: str) -> bool:
    """The design's public surface: the live and ready probes, sign-in (and first-run setup),
    the guarded two, and the web client's files."""
    if path in ("/health/live", "/health/ready") or path in GUARDED:
        return True
    if method == "GET" and path in WEB_CLIENT:
        return True
    return (method, path) in SIGN_IN


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", PLACEHOLDER, path)


@pytest.fixture(scope="module")
def routes(pg_url: str) -> list[Route]:
    settings = load_settings(env={"REVENGE_DATABASE__URL": pg_url})
    return list(build_app(settings).router)


@pytest.fixture(scope="module")
def base_url(migrated_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {"REVENGE_DATABASE__URL": migrated_url}
    tmp: Path = tmp_path_factory.mktemp("route-table")
    with run_server(granian_argv(port), port, tmp, env) as server:
        yield server.base_url


def test_the_auth_routes_are_in_the_table(routes: list[Route]) -> None:
    paths = {(r.method, r.path) for r in routes}
    assert ("GET", "/api/v1/me") in paths and ("POST", LOGIN) in paths


def test_only_the_designed_routes_are_public(routes: list[Route]) -> None:
    strays = [
        f"{r.method} {r.path}" for r in routes if r.public and not allowed_public(r.method, r.path)
    ]
    assert strays == [], "public routes outside the design's list"


def test_every_protected_route_answers_401_problem(routes: list[Route], base_url: str) -> None:
    protected = [r for r in routes if not r.public or r.path in GUARDED]
    assert protected, "the table has no protected route at all"
    failures = []
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for route in protected:
            for headers in (
                {},
                {"authorization": "Bearer not-a-valid-token"},
            ):  # no scrape token set
                reply = client.request(route.method, concrete(route.path), headers=headers)
                ok = (
                    reply.status_code == 401
                    and reply.headers.get("content-type") == "application/problem+json"
                    and reply.json().get("code") == "unauthenticated"
                )
                if not ok:
                    failures.append(f"{route.method} {route.path} {headers}: {reply.status_code}")
    assert failures == []


def test_login_is_public_but_validates(base_url: str) -> None:
    reply = httpx.post(base_url + LOGIN, json={}, timeout=10)
    assert reply.status_code == 422
    assert reply.json()["code"] == "validation_failed"
