"""Revocation across two Granian workers: every worker rejects a revoked token.

``granian --workers 2 revenge.app`` on a free port against a fresh database:
log in, call ``/me`` over many fresh connections so both workers cache the token,
revoke it (log out, delete the session from another one, an administrator
disables the user, the user changes the password from another session), then poll over fresh connections until a long run of answers are all
401, and check that every later answer stays 401. The measured delay is printed
(``-s`` shows it); speed itself is judged in benches/http, not here.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from revenge.wiring import migrate
from tests.e2e.conftest import free_port, granian_argv, run_server

pytestmark = pytest.mark.e2e

PASSWORD = "e2e admin password"
DEADLINE = 15.0


# A test-only trigger records every cache miss (a miss touches sessions.last_seen_at), so
# the test can tell that the worker which did not issue the token has cached it too.
MISS_LOG = """
CREATE TABLE test_session_misses (session_id uuid NOT NULL);
CREATE FUNCTION test_log_miss() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_session_misses VALUES (NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER test_log_miss AFTER UPDATE OF last_seen_at ON sessions
    FOR EACH ROW EXECUTE FUNCTION test_log_miss();
"""


def misses(url: str, session_id: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM test_session_misses WHERE session_id = %s", (session_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def fresh_get(base_url: str, token: str) -> int:
    """One request on its own connection, so the kernel may hand it to either worker."""
    with httpx.Client(base_url=base_url, timeout=5) as client:
        return client.get("/api/v1/me", headers={"authorization": f"Bearer {token}"}).status_code


@pytest.mark.parametrize(
    ("revoke", "interface"),
    [("logout", "rsgi"), ("delete", "asgi"), ("disable", "rsgi"), ("password", "asgi")],
)
def test_revoked_token_is_rejected_by_every_worker(
    revoke: str, interface: str, fresh_pg_url: str, tmp_path: Path
) -> None:
    asyncio.run(migrate(fresh_pg_url))
    with psycopg.connect(fresh_pg_url, autocommit=True) as conn:
        conn.execute(MISS_LOG)
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": fresh_pg_url,
        "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        "REVENGE_AUTH__ARGON2_MEMORY_KIB": "8192",
        "REVENGE_AUTH__ARGON2_TIME_COST": "1",
    }
    with run_server(
        granian_argv(port, "--workers", "2", "--interface", interface), port, tmp_path, env
    ) as server:
        keeper = httpx.post(
            server.base_url + "/api/v1/auth/login",
            json={"username": "admin", "password": PASSWORD},
            timeout=30,
        ).json()["token"]
        victim = "admin"
        if revoke == "disable":  # an administrator disables another user
            victim = "viewer"
            created = httpx.post(
                server.base_url + "/api/v1/users",
                json={"username": victim, "password": PASSWORD},
                headers={"authorization": f"Bearer {keeper}"},
                timeout=30,
            )
            assert created.status_code == 201, created.text
            victim_id = created.json()["id"]
        login = httpx.post(
            server.base_url + "/api/v1/auth/login",
            json={"username": victim, "password": PASSWORD},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        token, session_id = login.json()["token"], login.json()["session_id"]
        # The worker that logged in cached the token then; go on until the other worker
        # has looked it up in the table (a recorded miss) and cached it as well.
        for _ in range(500):
            assert fresh_get(server.base_url, token) == 200
            if misses(fresh_pg_url, session_id) >= 1:
                break
        else:
            pytest.fail("the second worker never served the token")
        for _ in range(20):
            assert fresh_get(server.base_url, token) == 200

        with httpx.Client(base_url=server.base_url, timeout=5) as client:
            sent = time.monotonic()
            if revoke == "logout":
                reply = client.post(
                    "/api/v1/auth/logout", headers={"authorization": f"Bearer {token}"}
                )
            elif revoke == "delete":  # revoked from another session of the same user
                reply = client.delete(
                    f"/api/v1/auth/sessions/{session_id}",
                    headers={"authorization": f"Bearer {keeper}"},
                )
            elif revoke == "disable":
                reply = client.patch(
                    f"/api/v1/users/{victim_id}",
                    json={"disabled": True},
                    headers={"authorization": f"Bearer {keeper}"},
                )
            else:  # a password change from another session ends this one
                reply = client.post(
                    "/api/v1/me/password",
                    json={"current_password": PASSWORD, "new_password": PASSWORD + " 2"},
                    headers={"authorization": f"Bearer {keeper}"},
                )
        assert reply.status_code in (200, 204), reply.text

        last_accepted = None
        refused_in_a_row = 0
        while refused_in_a_row < 50:
            assert time.monotonic() - sent < DEADLINE, "a worker kept accepting the token"
            if fresh_get(server.base_url, token) == 200:
                last_accepted = time.monotonic() - sent
                refused_in_a_row = 0
            else:
                refused_in_a_row += 1
        statuses = {fresh_get(server.base_url, token) for _ in range(50)}
        assert statuses == {401}
        assert fresh_get(server.base_url, keeper) == 200  # only the revoked session died
        shown = (
            "none after the revocation"
            if last_accepted is None
            else f"{last_accepted * 1000:.1f} ms"
        )
        print(f"\nrevocation ({revoke}, {interface}) across 2 workers: last acceptance {shown}")
