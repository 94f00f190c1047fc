"""The auth API over ASGI against the machine's real PostgreSQL.

``running_node`` is one worker: the auth module assembled over the platform
(pool, cache) exactly as the module list builds it, with its own session cache,
listener, runtime and HttpApp; two nodes in one test are two workers sharing the
database.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from revenge._core import SessionCache
from revenge.config import load_settings
from revenge.contract import DATABASE, assemble
from revenge.http import HttpApp
from revenge.infra.db import Database
from revenge.modules.auth import AUTH, MODULE, REVOCATIONS, SESSION_CACHE, AuthService
from revenge.modules.auth.authenticator import Authenticator
from revenge.modules.auth.revocation import RevocationListener
from revenge.modules.auth.tokens import token_hash
from revenge.runtime import Runtime
from revenge.wiring import migrate

pytestmark = pytest.mark.integration

FAST_ARGON2 = {
    "REVENGE_AUTH__ARGON2_TIME_COST": "1",
    "REVENGE_AUTH__ARGON2_MEMORY_KIB": "1024",
    "REVENGE_AUTH__ARGON2_PARALLELISM": "1",
}
PASSWORD = "correct horse battery"


@dataclass
class AuthParts:
    """The auth module's services, as this node's runtime holds them."""

    service: AuthService
    authenticator: Authenticator
    cache: SessionCache
    listener: RevocationListener


@dataclass
class Node:
    app: HttpApp
    db: Database
    auth: AuthParts
    client: httpx.AsyncClient
    runtime: Runtime

    async def login(
        self, username: str, password: str = PASSWORD, **headers: str
    ) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}, headers=headers
        )

    async def token(self, username: str) -> str:
        reply = await self.login(username)
        assert reply.status_code == 200, reply.text
        return str(reply.json()["token"])

    async def user(self, role: str = "user") -> str:
        name = f"u{uuid.uuid4().hex[:10]}"
        await self.auth.service.create_user(name, PASSWORD, admin=role == "admin")
        return name


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@asynccontextmanager
async def running_node(
    url: str,
    env: dict[str, str] | None = None,
    scheme: str = "http",
    listener_url: str | None = None,
) -> AsyncIterator[Node]:
    settings = load_settings(
        env={
            "REVENGE_DATABASE__URL": url,
            "REVENGE_SERVER__TRUSTED_PROXIES": '["127.0.0.0/8"]',
            "REVENGE_SERVER__MAX_BODY_BYTES": "2048",
            "REVENGE_JOBS__IN_PROCESS_WORKER": "false",
            **FAST_ARGON2,
            **(env or {}),
        }
    )
    runtime = Runtime.from_settings(settings, with_pressure=False)
    app = assemble(settings, [MODULE], runtime=runtime).http_app()
    await app.startup()
    service = runtime.get(AUTH)
    auth = AuthParts(
        service, service.authenticator, runtime.get(SESSION_CACHE), runtime.get(REVOCATIONS)
    )
    if listener_url is not None:  # the revocation listener alone goes another way (a proxy)
        await auth.listener.stop()
        auth.listener.url = lambda: listener_url
        await auth.listener.start()
    # An address of its own: the login counters (in the shared database) of other tests
    # never meet this node's.
    peer = f"127.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url=f"{scheme}://testserver"
        ) as client:
            yield Node(app, runtime.get(DATABASE), auth, client, runtime)
    finally:
        await app.shutdown()


@pytest.fixture
async def node(migrated_url: str) -> AsyncIterator[Node]:
    async with running_node(migrated_url) as running:
        yield running


def assert_problem(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    assert body["code"] == code and body["status"] == status
    return body


# -- login -------------------------------------------------------------------------------


async def test_login_issues_token_and_hardened_cookie(node: Node) -> None:
    name = await node.user()
    reply = await node.login(name)
    assert reply.status_code == 200
    body = reply.json()
    assert len(body["token"]) >= 43 and body["token_type"] == "Bearer"
    assert body["user"]["username"] == name and body["user"]["role"] == "user"
    assert reply.headers["cache-control"] == "no-store"
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith(f"revenge_session={body['token']};")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    me = await node.client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.json()["username"] == name and me.json()["role"] == "user"


async def test_cookie_is_secure_over_tls_and_works_for_auth(migrated_url: str) -> None:
    async with running_node(migrated_url, scheme="https") as node:
        name = await node.user()
        reply = await node.login(name)
        assert "Secure" in reply.headers["set-cookie"]
        token = reply.json()["token"]
        me = await node.client.get("/api/v1/me", headers={"cookie": f"revenge_session={token}"})
        assert me.status_code == 200 and me.json()["username"] == name


async def test_only_the_token_hash_is_stored(node: Node) -> None:
    name = await node.user()
    token = await node.token(name)
    async with node.db.connection() as conn:
        cur = await conn.execute(
            "SELECT s.token_hash, u.password_hash FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE u.username = %s",
            (name,),
        )
        rows = await cur.fetchall()
    assert len(rows) == 1
    stored_hash, password_hash = rows[0]
    assert token not in stored_hash and len(stored_hash) == 64
    assert password_hash.startswith("$argon2id$") and PASSWORD not in password_hash


async def test_unknown_user_and_wrong_password_answer_alike(node: Node) -> None:
    name = await node.user()
    wrong = await node.login(name, "not the password")
    unknown = await node.login(f"nobody-{uuid.uuid4().hex[:8]}", "not the password")
    assert_problem(wrong, 401, "invalid_credentials")
    assert_problem(unknown, 401, "invalid_credentials")
    # Alike but for the request id, which names each request (a person quotes it).
    wrong_body, unknown_body = wrong.json(), unknown.json()
    assert wrong_body.pop("request_id") != unknown_body.pop("request_id")
    assert wrong_body == unknown_body
    assert "set-cookie" not in wrong.headers


async def test_unknown_usernames_spend_a_password_check(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the dummy check an unknown name answers at once: timing would tell names apart."""
    hasher = node.auth.service.hasher
    real, checks = hasher.verify, []

    async def counting(password_hash: str, password: str) -> bool:
        checks.append(password_hash)
        return await real(password_hash, password)

    monkeypatch.setattr(hasher, "verify", counting)
    assert_problem(
        await node.login(f"ghost-{uuid.uuid4().hex[:8]}", "whatever"), 401, "invalid_credentials"
    )
    assert len(checks) == 1 and checks[0].startswith("$argon2id$")


async def test_username_is_case_insensitive(node: Node) -> None:
    name = await node.user()
    assert (await node.login(name.upper())).status_code == 200


async def test_disabled_user_gets_403_only_with_the_right_password(node: Node) -> None:
    name = await node.user()
    token = await node.token(name)
    async with node.db.connection() as conn:
        cur = await conn.execute("SELECT id FROM users WHERE username = %s", (name,))
        row = await cur.fetchone()
    assert row is not None
    assert await node.auth.service.set_disabled(row[0], True)
    assert_problem(await node.login(name), 403, "account_disabled")
    assert_problem(await node.login(name, "guess guess"), 401, "invalid_credentials")
    assert_problem(
        await node.client.get("/api/v1/me", headers=bearer(token)), 401, "unauthenticated"
    )


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "malformed_json",
        ),
        (
            {
                "content": b"username=a",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            415,
            "unsupported_media_type",
        ),
        ({"content": b"{}"}, 415, "unsupported_media_type"),
        ({"json": {"username": "a"}}, 422, "validation_failed"),
        ({"json": {"password": "a"}}, 422, "validation_failed"),
        ({"json": {"username": 5, "password": "x"}}, 422, "validation_failed"),
        ({"json": {"username": "", "password": "x"}}, 422, "validation_failed"),
        ({"json": {"username": "a" * 65, "password": "x"}}, 422, "validation_failed"),
        ({"json": ["username", "password"]}, 422, "validation_failed"),
        ({"json": "text"}, 422, "validation_failed"),
        ({"json": {"username": "a", "password": "x" * 4000}}, 413, "payload_too_large"),
    ],
)
async def test_bad_login_input_is_a_clear_problem(
    node: Node, kwargs: dict[str, Any], status: int, code: str
) -> None:
    reply = await node.client.post("/api/v1/auth/login", **kwargs)
    assert_problem(reply, status, code)


async def test_login_throttles_the_guessing_address_not_the_owner(node: Node) -> None:
    name = await node.user()
    attacker = {"x-forwarded-for": "198.51.100.66"}
    for _ in range(5):
        assert_problem(
            await node.login(name, "guess-guess", **attacker), 401, "invalid_credentials"
        )
    assert_problem(await node.login(name, "guess-guess", **attacker), 401, "invalid_credentials")
    throttled = await node.login(name, "guess-guess", **attacker)
    assert_problem(throttled, 429, "too_many_attempts")
    assert int(throttled.headers["retry-after"]) >= 1
    # Even the right password waits from that address; the owner elsewhere logs in at once.
    assert_problem(await node.login(name, **attacker), 429, "too_many_attempts")
    owner = await node.login(name, **{"x-forwarded-for": "203.0.113.10"})
    assert owner.status_code == 200


async def test_unknown_usernames_are_throttled_like_known_ones(node: Node) -> None:
    """Password spraying over names that do not exist is slowed down too (and answers alike)."""
    sprayer = {"x-forwarded-for": "198.51.100.77"}
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    statuses: list[int] = []
    # The pair counter allows 5 failures, then waits 1 s, 2 s, 4 s...: a slow machine
    # may let a wait run out between two attempts, so keep guessing until one is refused.
    for attempt in range(12):
        spelling = ghost.upper() if attempt % 2 else ghost  # one account, whatever the case
        reply = await node.login(spelling, "guess-guess", **sprayer)
        statuses.append(reply.status_code)
        if reply.status_code == 429:
            assert_problem(reply, 429, "too_many_attempts")
            break
        assert_problem(reply, 401, "invalid_credentials")
    assert statuses[:6] == [401] * 6 and statuses[-1] == 429, statuses
    known = await node.user()
    assert (await node.login(known, **sprayer)).status_code == 200  # another account: not held


async def test_a_successful_login_clears_the_failures_of_that_address(node: Node) -> None:
    name = await node.user()
    owner = {"x-forwarded-for": "203.0.113.44"}
    for _ in range(5):  # the pair's free allowance, used up by typos
        assert_problem(await node.login(name, "typo-typo", **owner), 401, "invalid_credentials")
    assert (await node.login(name, **owner)).status_code == 200
    # Counted afresh: five more typos are free again (without the reset the sixth
    # failure would start a delay of 1 s, then 2, 4, 8: some attempt would be refused).
    for _ in range(5):
        assert_problem(await node.login(name, "typo-typo", **owner), 401, "invalid_credentials")


async def test_hash_flood_answers_503_not_a_queue(migrated_url: str) -> None:
    env = {"REVENGE_AUTH__MAX_CONCURRENT_HASHES": "1", "REVENGE_AUTH__ARGON2_TIME_COST": "30"}
    async with running_node(migrated_url, env) as node:
        name = await node.user()
        replies = await asyncio.gather(*(node.login(name) for _ in range(6)))
        statuses = sorted(r.status_code for r in replies)
        assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}
        refused = next(r for r in replies if r.status_code == 503)
        assert_problem(refused, 503, "auth_unavailable")
        assert int(refused.headers["retry-after"]) >= 1


# -- authentication ----------------------------------------------------------------------


async def test_me_needs_a_credential(node: Node) -> None:
    for headers in ({}, bearer("not-a-real-token"), {"authorization": "Basic eDp5"}):
        reply = await node.client.get("/api/v1/me", headers=headers)
        assert_problem(reply, 401, "unauthenticated")
        assert reply.headers["www-authenticate"].startswith("Bearer")


async def test_hits_are_served_from_the_cache(node: Node) -> None:
    token = await node.token(await node.user())
    misses = node.auth.authenticator.misses
    for _ in range(20):
        assert (await node.client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    assert node.auth.authenticator.misses == misses  # login already filled the cache


async def test_a_fresh_worker_fills_its_cache_from_the_table(migrated_url: str, node: Node) -> None:
    token = await node.token(await node.user())
    async with running_node(migrated_url) as other:
        assert (await other.client.get("/api/v1/me", headers=bearer(token))).status_code == 200
        assert (await other.client.get("/api/v1/me", headers=bearer(token))).status_code == 200
        assert other.auth.authenticator.misses == 1


# -- logout and sessions -----------------------------------------------------------------


async def test_logout_revokes_and_clears_cookie(node: Node) -> None:
    token = await node.token(await node.user())
    reply = await node.client.post("/api/v1/auth/logout", headers=bearer(token))
    assert reply.status_code == 204
    assert "Max-Age=0" in reply.headers["set-cookie"]
    assert_problem(
        await node.client.get("/api/v1/me", headers=bearer(token)), 401, "unauthenticated"
    )
    assert_problem(
        await node.client.post("/api/v1/auth/logout", headers=bearer(token)), 401, "unauthenticated"
    )


async def test_the_revoking_worker_forgets_at_once_without_its_own_notify(node: Node) -> None:
    """Its own NOTIFY comes back later (or never, if its listener is down): it must not wait."""
    token = await node.token(await node.user())
    assert (await node.client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    await node.auth.listener.stop()
    assert (await node.client.post("/api/v1/auth/logout", headers=bearer(token))).status_code == 204
    assert_problem(
        await node.client.get("/api/v1/me", headers=bearer(token)), 401, "unauthenticated"
    )


async def test_sessions_list_and_revoke_one(node: Node) -> None:
    name = await node.user()
    first, second = await node.token(name), await node.token(name)
    listed = await node.client.get("/api/v1/auth/sessions", headers=bearer(first))
    sessions = listed.json()["sessions"]
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1
    assert all("token" not in s and "token_hash" not in s for s in sessions)
    other_id = next(s["id"] for s in sessions if not s["current"])
    reply = await node.client.delete(f"/api/v1/auth/sessions/{other_id}", headers=bearer(first))
    assert reply.status_code == 204
    assert_problem(
        await node.client.get("/api/v1/me", headers=bearer(second)), 401, "unauthenticated"
    )
    assert (await node.client.get("/api/v1/me", headers=bearer(first))).status_code == 200
    again = await node.client.delete(f"/api/v1/auth/sessions/{other_id}", headers=bearer(first))
    assert_problem(again, 404, "session_not_found")
    # The path's session id is declared a UUID: anything else is bad input, not a miss.
    junk = await node.client.delete("/api/v1/auth/sessions/not-a-uuid", headers=bearer(first))
    assert assert_problem(junk, 422, "validation_failed")["field"] == "session_id"


async def test_nobody_revokes_someone_elses_session(node: Node) -> None:
    mine, theirs = await node.token(await node.user()), await node.token(await node.user())
    their_id = (await node.client.get("/api/v1/auth/sessions", headers=bearer(theirs))).json()[
        "sessions"
    ][0]["id"]
    reply = await node.client.delete(f"/api/v1/auth/sessions/{their_id}", headers=bearer(mine))
    assert_problem(reply, 404, "session_not_found")
    assert (await node.client.get("/api/v1/me", headers=bearer(theirs))).status_code == 200


async def test_a_session_idle_past_the_idle_timeout_is_refused(node: Node) -> None:
    token = await node.token(await node.user())
    async with node.db.connection() as conn:  # unused for 8 days (the default allows 7)
        await conn.execute(
            "UPDATE sessions SET last_seen_at = now() - interval '8 days' WHERE token_hash = %s",
            (token_hash(token),),
        )
    node.auth.authenticator.forget_everything()  # as a worker that never saw it would be
    assert_problem(
        await node.client.get("/api/v1/me", headers=bearer(token)), 401, "unauthenticated"
    )


async def test_revoke_all_my_sessions(node: Node) -> None:
    name = await node.user()
    tokens = [await node.token(name) for _ in range(3)]
    bystander = await node.token(await node.user())
    reply = await node.client.delete("/api/v1/auth/sessions", headers=bearer(tokens[0]))
    assert reply.status_code == 200 and reply.json()["revoked"] == 3
    for token in tokens:
        assert_problem(
            await node.client.get("/api/v1/me", headers=bearer(token)), 401, "unauthenticated"
        )
    assert (await node.client.get("/api/v1/me", headers=bearer(bystander))).status_code == 200


# -- API keys ----------------------------------------------------------------------------


async def test_api_key_life_cycle(node: Node) -> None:
    name = await node.user()
    token = await node.token(name)
    created = await node.client.post(
        "/api/v1/auth/api-keys", json={"name": "media box"}, headers=bearer(token)
    )
    assert created.status_code == 201, created.text
    key, key_id = created.json()["key"], created.json()["id"]
    me = await node.client.get("/api/v1/me", headers={"x-api-key": key})
    assert me.status_code == 200 and me.json()["username"] == name
    listed = (await node.client.get("/api/v1/auth/api-keys", headers={"x-api-key": key})).json()
    assert [k["id"] for k in listed["api_keys"]] == [key_id]
    assert key not in str(listed)
    assert listed["api_keys"][0]["last_used_at"] is not None
    # A key is not a session token, and cannot mint keys or log out.
    assert_problem(await node.client.get("/api/v1/me", headers=bearer(key)), 401, "unauthenticated")
    assert_problem(
        await node.client.get("/api/v1/me", headers={"x-api-key": token}), 401, "unauthenticated"
    )
    minted = await node.client.post(
        "/api/v1/auth/api-keys", json={"name": "more"}, headers={"x-api-key": key}
    )
    assert_problem(minted, 403, "session_required")
    logout = await node.client.post("/api/v1/auth/logout", headers={"x-api-key": key})
    assert_problem(logout, 403, "not_a_session")
    deleted = await node.client.delete(f"/api/v1/auth/api-keys/{key_id}", headers=bearer(token))
    assert deleted.status_code == 204
    assert_problem(
        await node.client.get("/api/v1/me", headers={"x-api-key": key}), 401, "unauthenticated"
    )
    gone = await node.client.delete(f"/api/v1/auth/api-keys/{key_id}", headers=bearer(token))
    assert_problem(gone, 404, "api_key_not_found")


async def test_an_expired_api_key_is_refused(node: Node) -> None:
    token = await node.token(await node.user())
    created = await node.client.post(
        "/api/v1/auth/api-keys", json={"name": "box"}, headers=bearer(token)
    )
    key, key_id = created.json()["key"], created.json()["id"]
    async with node.db.connection() as conn:
        await conn.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = %s",
            (key_id,),
        )
    node.auth.authenticator.forget_everything()  # as a worker that never saw it would be
    assert_problem(
        await node.client.get("/api/v1/me", headers={"x-api-key": key}), 401, "unauthenticated"
    )


async def test_nobody_revokes_someone_elses_api_key(node: Node) -> None:
    owner, other = await node.token(await node.user()), await node.token(await node.user())
    created = await node.client.post(
        "/api/v1/auth/api-keys", json={"name": "box"}, headers=bearer(owner)
    )
    key, key_id = created.json()["key"], created.json()["id"]
    reply = await node.client.delete(f"/api/v1/auth/api-keys/{key_id}", headers=bearer(other))
    assert_problem(reply, 404, "api_key_not_found")
    assert (await node.client.get("/api/v1/me", headers={"x-api-key": key})).status_code == 200


@pytest.mark.parametrize(
    "body", [{}, {"name": ""}, {"name": "   "}, {"name": 3}, {"name": "x" * 101}]
)
async def test_api_key_needs_a_name(node: Node, body: dict[str, Any]) -> None:
    token = await node.token(await node.user())
    reply = await node.client.post("/api/v1/auth/api-keys", json=body, headers=bearer(token))
    assert_problem(reply, 422, "validation_failed")


# -- users and bootstrap -----------------------------------------------------------------


async def test_me_follows_user_changes(node: Node) -> None:
    name = await node.user()
    token = await node.token(name)
    assert (await node.client.get("/api/v1/me", headers=bearer(token))).json()["role"] == "user"
    async with node.db.transaction() as conn:
        cur = await conn.execute(
            "UPDATE users SET role = 'admin' WHERE username = %s RETURNING id", (name,)
        )
        row = await cur.fetchone()
        assert row is not None
        await node.auth.service.publisher.notify(conn, f"u:{row[0]}")
    await asyncio.sleep(0)  # let the notification arrive
    for _ in range(100):
        me = await node.client.get("/api/v1/me", headers=bearer(token))
        if me.json()["role"] == "admin":
            break
        await asyncio.sleep(0.02)
    assert me.json()["role"] == "admin"


async def test_bootstrap_admin_from_password_once(fresh_pg_url: str) -> None:
    await migrate(fresh_pg_url)
    env = {"REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": "first admin password"}
    async with running_node(fresh_pg_url, env) as one, running_node(fresh_pg_url, env) as two:
        reply = await one.login("admin", "first admin password")
        assert reply.status_code == 200 and reply.json()["user"]["role"] == "admin"
        assert (await two.login("admin", "first admin password")).status_code == 200
        async with one.db.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM users")
            assert await cur.fetchone() == (1,)


async def test_no_bootstrap_without_a_password(
    fresh_pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await migrate(fresh_pg_url)
    with caplog.at_level(logging.WARNING):
        async with running_node(fresh_pg_url) as node:
            assert_problem(await node.login("admin", "admin"), 401, "invalid_credentials")
            assert_problem(await node.login("admin", ""), 422, "validation_failed")
    assert "revenge user create --admin" in caplog.text


async def test_duplicate_usernames_are_refused(node: Node) -> None:
    from revenge.modules.auth.repository import UsernameTaken

    name = await node.user()
    with pytest.raises(UsernameTaken):
        await node.auth.service.create_user(name.upper(), PASSWORD)


async def test_no_secret_is_ever_logged(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        name = await node.user()
        reply = await node.login(name)
        token = reply.json()["token"]
        await node.login(name, "the wrong one")
        created = await node.client.post(
            "/api/v1/auth/api-keys", json={"name": "k"}, headers=bearer(token)
        )
        key = created.json()["key"]
        await node.client.get("/api/v1/me", headers={"x-api-key": key})
        await node.client.post("/api/v1/auth/logout", headers=bearer(token))
    text = caplog.text + " ".join(str(r.args) for r in caplog.records)
    from revenge.modules.auth.tokens import token_hash

    for secret in (PASSWORD, "the wrong one", token, key, token_hash(token)):
        assert secret not in text
