"""Log lines of a real ``revenge serve`` (Granian worker, real PostgreSQL): one access line
per request with its id, route pattern, status, duration and user; ``X-Request-Id`` on every
answer and in problem bodies, taken from a client only when it is a trusted proxy; nothing
secret in the output; a client's CR/LF never starts a line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.backup_support import revenge
from tests.e2e.conftest import Server, serve_revenge

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple 42"
WRONG = "not the password at all 17"


@pytest.fixture
def users(fresh_pg_url: str) -> str:
    for name, extra in (("root", ["--admin"]), ("viewer", [])):
        made = revenge(
            "user", "create", *extra, "--password-stdin", name, url=fresh_pg_url, stdin=PASSWORD
        )
        assert made.returncode == 0, made.stderr
    return fresh_pg_url


def _lines(
    server: Server, want: int | set[str], logger: str = "revenge.access"
) -> list[dict[str, object]]:
    """The output's JSON lines of ``logger``, once ``want`` (a count, or request ids) are
    there (access lines are written in batches, ~0.1 s apart)."""
    deadline = time.monotonic() + 10
    while True:
        found = []
        for line in server.output().splitlines():
            if line.startswith("{"):
                parsed = json.loads(line)
                if parsed.get("logger") == logger:
                    found.append(parsed)
        done = (
            len(found) >= want
            if isinstance(want, int)
            else want <= {str(line.get("request_id")) for line in found}
        )
        if done or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_one_access_line_per_request_with_its_id_route_status_and_user(
    users: str, tmp_path: Path
) -> None:
    with serve_revenge(users, tmp_path) as server:
        base = server.base_url
        login = httpx.post(
            base + "/api/v1/auth/login", json={"username": "root", "password": PASSWORD}, timeout=30
        )
        assert login.status_code == 200, login.text
        token = login.json()["token"]
        auth = {"authorization": f"Bearer {token}"}
        me = httpx.get(base + "/api/v1/me", headers=auth, timeout=30)
        uid = me.json()["id"]
        one = httpx.get(base + f"/api/v1/users/{uid}", headers=auth, timeout=30)
        denied = httpx.get(base + "/api/v1/me", timeout=30)
        missing = httpx.get(base + "/api/v1/no/such/thing", headers=auth, timeout=30)
        # Not a trusted proxy: the client's id is not taken.
        offered = httpx.get(
            base + "/api/v1/me", headers={**auth, "x-request-id": "mine-1"}, timeout=30
        )
        answers = [login, me, one, denied, missing, offered]
        assert [a.status_code for a in answers] == [200, 200, 200, 401, 404, 200]
        ids = [a.headers["x-request-id"] for a in answers]
        assert len(set(ids)) == len(ids) and "mine-1" not in ids
        for problem in (denied, missing):
            assert problem.headers["content-type"] == "application/problem+json"
            assert problem.json()["request_id"] == problem.headers["x-request-id"]

        lines = _lines(server, set(ids))
        by_id = {line["request_id"]: line for line in lines}
        assert set(ids) <= set(by_id)
        expected = [
            ("POST", "/api/v1/auth/login", 200, None),
            ("GET", "/api/v1/me", 200, uid),
            ("GET", "/api/v1/users/{user_id}", 200, uid),  # the pattern, not /users/1
            ("GET", "/api/v1/me", 401, None),
            ("GET", None, 404, None),  # no route: the raw path is not logged
            ("GET", "/api/v1/me", 200, uid),
        ]
        for rid, (method, route, status, user) in zip(ids, expected, strict=True):
            line = by_id[rid]
            assert (line["method"], line["route"], line["status"], line["user_id"]) == (
                method, route, status, user,
            )  # fmt: skip
            assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 60_000
            assert line["level"] == "info"
        assert sum(1 for line in lines if line["request_id"] in ids) == len(ids)  # one each
        assert "/no/such/thing" not in server.output()


def test_a_trusted_proxy_passes_its_request_id(users: str, tmp_path: Path) -> None:
    with serve_revenge(
        users, tmp_path, REVENGE_SERVER__TRUSTED_PROXIES='["127.0.0.1/32"]'
    ) as server:
        taken = httpx.get(
            server.base_url + "/api/v1/me", headers={"x-request-id": "edge-7f3a.1"}, timeout=30
        )
        assert taken.headers["x-request-id"] == "edge-7f3a.1"
        assert taken.json()["request_id"] == "edge-7f3a.1"  # a 401 problem
        refused = httpx.get(
            server.base_url + "/api/v1/me", headers={"x-request-id": "has spaces {}"}, timeout=30
        )
        assert refused.headers["x-request-id"] != "has spaces {}"
        assert _lines(server, {"edge-7f3a.1"})


def test_nothing_secret_reaches_the_log(users: str, tmp_path: Path) -> None:
    """Debug level, every credential kind used: password, wrong password, session token as
    bearer and as cookie, an API key; none of them (nor the cookie header) is in the output."""
    with serve_revenge(users, tmp_path, REVENGE_LOG__LEVEL="debug") as server:
        base = server.base_url
        bad = httpx.post(
            base + "/api/v1/auth/login", json={"username": "viewer", "password": WRONG}, timeout=30
        )
        assert bad.status_code == 401
        login = httpx.post(
            base + "/api/v1/auth/login", json={"username": "root", "password": PASSWORD}, timeout=30
        )
        token = login.json()["token"]
        cookie = login.cookies
        assert cookie, "the login sets a session cookie"
        auth = {"authorization": f"Bearer {token}"}
        key = httpx.post(
            base + "/api/v1/auth/api-keys", json={"name": "kodi"}, headers=auth, timeout=30
        )
        assert key.status_code == 201, key.text
        api_key = key.json()["key"]
        assert httpx.get(base + "/api/v1/me", cookies=cookie, timeout=30).status_code == 200
        with_key = httpx.get(base + "/api/v1/me", headers={"x-api-key": api_key}, timeout=30)
        assert with_key.status_code == 200
        changed = httpx.post(
            base + "/api/v1/me/password",
            json={"current_password": WRONG, "new_password": WRONG + "x"},
            headers=auth,
            timeout=30,
        )
        assert changed.status_code in (400, 401, 403, 422), changed.text
        httpx.post(base + "/api/v1/auth/logout", headers=auth, timeout=30)
        assert len(_lines(server, 7)) >= 7
        output = server.output()
        secrets = [PASSWORD, WRONG, token, api_key, *cookie.values()]
        for secret in secrets:
            assert secret not in output, "a secret was logged"
        assert "cookie" not in output.lower() and "authorization" not in output.lower()


def test_text_lines_cannot_be_forged_by_a_client(users: str, tmp_path: Path) -> None:
    with serve_revenge(users, tmp_path, REVENGE_LOG__FORMAT="text") as server:
        base = server.base_url
        forged = "x\r\n2026-01-01T00:00:00.000Z ERROR   revenge.forged owned=1"
        httpx.post(
            base + "/api/v1/auth/login", json={"username": forged, "password": forged}, timeout=30
        )
        httpx.get(
            base + "/api/v1/%0d%0a2026-01-01T00:00:00.000Z%20ERROR%20revenge.forged", timeout=30
        )
        deadline = time.monotonic() + 10
        while "route=- status=404" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        access = [line for line in server.output().splitlines() if "revenge.access" in line]
        assert len(access) >= 2
        assert "method=POST route=/api/v1/auth/login status=" in access[-2] or any(
            "route=/api/v1/auth/login" in line for line in access
        )
        assert not any(
            line.startswith("2026-01-01T00:00:00.000Z") for line in server.output().splitlines()
        )
