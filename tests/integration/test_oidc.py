"""Single sign-on end to end against a real OpenID provider (oidc-provider on Node.js).

Revenge runs in process (auth + oidc modules over the real PostgreSQL, through ASGI);
the provider is a real process on a loopback port, driven like a browser: the test
follows its redirects with a cookie jar, and its login interaction signs in the
account named by ``login_hint`` without a form.

Where the tampering comes from: the wrong nonce is the browser changing the
authorization request (the provider then signs that nonce); the expired code is the
provider's own expiry (its code lifetime set to 1 s); the replayed state is the same
callback twice. A correct provider never issues a tampered, ``alg: none``,
foreign-key, expired, other-audience, other-issuer or HMAC-signed ID token, so for
those the provider script rewrites its own token answer (``tests/oidc_provider``,
``POST /__test/mode``), as an attacker on the wire would.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from revenge.config import load_settings
from revenge.contract import DATABASE, assemble
from revenge.http import HttpApp
from revenge.infra.db import Database
from revenge.modules import auth as auth_module
from revenge.modules import oidc as oidc_module
from revenge.modules.auth import AUTH, AuthService
from revenge.runtime import Runtime
from tests.cheap_settings import FAST_ARGON2
from tests.e2e.conftest import free_port
from tests.oidc_support import CALLBACK, REVENGE, Provider, install_provider, provider_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def provider_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    folder = install_provider()
    provider = Provider(
        folder, tmp_path_factory.mktemp("oidc") / "provider.log", redirect_uris=[CALLBACK]
    )
    yield provider
    provider.stop()


@pytest.fixture
def provider(provider_process: Provider) -> Iterator[Provider]:
    provider_process.mode()  # behave
    yield provider_process
    provider_process.mode()


@dataclass
class Node:
    app: HttpApp
    client: httpx.AsyncClient
    runtime: Runtime
    db: Database
    auth: AuthService


@asynccontextmanager
async def running_node(url: str, env: dict[str, str]) -> AsyncIterator[Node]:
    settings = load_settings(
        env={
            "REVENGE_DATABASE__URL": url,
            "REVENGE_JOBS__IN_PROCESS_WORKER": "false",
            **FAST_ARGON2,
            **env,
        }
    )
    runtime = Runtime.from_settings(settings, with_pressure=False)
    app = assemble(settings, [auth_module.MODULE, oidc_module.MODULE], runtime=runtime).http_app()
    await app.startup()
    peer = f"127.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=REVENGE) as client:
            yield Node(app, client, runtime, runtime.get(DATABASE), runtime.get(AUTH))
    finally:
        await app.shutdown()


@pytest.fixture
async def node(migrated_url: str, provider: Provider) -> AsyncIterator[Node]:
    async with running_node(migrated_url, provider_env(provider.issuer)) as running:
        yield running


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def to_callback(
    node: Node, *, hint: str = "alice", return_to: str | None = None, **changes: str
) -> str:
    """Start at Revenge, sign in at the provider; the callback URL (path and query) it sends back."""
    params = {"return_to": return_to} if return_to is not None else {}
    start = await node.client.get("/api/v1/oidc/test/login", params=params)
    assert start.status_code == 303, start.text
    url = _with_query(start.headers["location"], login_hint=hint, **changes)
    async with httpx.AsyncClient(timeout=30) as browser:
        for _ in range(12):
            reply = await browser.get(url)
            location = reply.headers.get("location")
            assert reply.status_code in (302, 303) and location, (reply.status_code, reply.text)
            url = str(reply.url.join(location))
            if url.startswith(REVENGE):
                parts = urlsplit(url)
                return f"{parts.path}?{parts.query}"
    raise AssertionError("the provider never sent the browser back")


async def sign_in(node: Node, **options: Any) -> httpx.Response:
    return await node.client.get(await to_callback(node, **options))


def problem(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    assert body["code"] == code, body
    return body


def session_cookie(reply: httpx.Response) -> str | None:
    for header in reply.headers.get_list("set-cookie"):
        if header.startswith("revenge_session=") and not header.startswith("revenge_session=;"):
            return header.split(";", 1)[0].split("=", 1)[1]
    return None


async def _identity_count(node: Node, subject: str) -> int:
    row = await node.db.fetch_one(
        "SELECT count(*) FROM oidc_identities WHERE subject = %s", (subject,)
    )
    assert row is not None
    return int(row[0])


# -- the round trip ---------------------------------------------------------------------


async def test_providers_are_listed_for_the_sign_in_page(node: Node) -> None:
    reply = await node.client.get("/api/v1/oidc/providers")
    assert reply.status_code == 200
    assert reply.json() == {
        "providers": [
            {"name": "test", "display_name": "Test ID", "login_url": "/api/v1/oidc/test/login"}
        ]
    }


async def test_full_sign_in_makes_the_session_of_a_password_login(node: Node) -> None:
    subject = "alice"
    await node.db.execute(
        "DELETE FROM users WHERE id IN (SELECT user_id FROM oidc_identities WHERE subject = %s)",
        (subject,),
    )
    start = await node.client.get(
        "/api/v1/oidc/test/login",
        params={"return_to": "/web/#/movies", "redirect_uri": "https://evil.example/cb"},
    )
    assert start.status_code == 303
    sent = dict(parse_qsl(urlsplit(start.headers["location"]).query))
    # The callback is the configured one, never one the request names; PKCE with S256.
    assert sent["redirect_uri"] == CALLBACK
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["scope"].split() == ["openid", "email", "profile", "groups"]
    binding = [h for h in start.headers.get_list("set-cookie") if h.startswith("revenge_oidc_")]
    assert binding and "HttpOnly" in binding[0] and "Path=/api/v1/oidc/" in binding[0]

    reply = await sign_in(node, return_to="/web/#/movies")
    assert reply.status_code == 303, reply.text
    assert reply.headers["location"] == "/web/#/movies"
    token = session_cookie(reply)
    assert token is not None
    me = await node.client.get("/api/v1/me", headers={"authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "alice" and me.json()["role"] == "admin"  # groups claim
    user_id = me.json()["id"]

    # The same session as a password login: listed, and revoked the same way.
    sessions = await node.client.get(
        "/api/v1/auth/sessions", headers={"authorization": f"Bearer {token}"}
    )
    assert sessions.status_code == 200 and len(sessions.json()["sessions"]) >= 1
    out = await node.client.post(
        "/api/v1/auth/logout", headers={"authorization": f"Bearer {token}"}
    )
    assert out.status_code == 204
    gone = await node.client.get("/api/v1/me", headers={"authorization": f"Bearer {token}"})
    assert gone.status_code == 401

    # Signing in again finds the same account by (issuer, subject).
    again = await sign_in(node)
    assert again.status_code == 303 and again.headers["location"] == "/"
    token2 = session_cookie(again)
    assert token2 is not None and token2 != token
    me2 = await node.client.get("/api/v1/me", headers={"authorization": f"Bearer {token2}"})
    assert me2.json()["id"] == user_id
    assert await _identity_count(node, subject) == 1

    # A password sign-in is impossible for an account made by single sign-on.
    attempt = await node.client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "anything-at-all"}
    )
    assert attempt.status_code == 401


async def test_the_admin_claim_is_followed_both_ways(migrated_url: str, provider: Provider) -> None:
    env = provider_env(provider.issuer, admin_value="staff")
    async with running_node(migrated_url, env) as node:
        reply = await sign_in(node, hint="bob")
        token = session_cookie(reply)
        me = await node.client.get("/api/v1/me", headers={"authorization": f"Bearer {token}"})
        assert me.json()["role"] == "admin"
    env = provider_env(provider.issuer, admin_value="nobody-has-this")
    async with running_node(migrated_url, env) as node:
        # Another admin exists (alice, or the one made here), so bob may be demoted.
        await node.auth.create_user(f"keeper{secrets.token_hex(4)}", "a-long-password", admin=True)
        reply = await sign_in(node, hint="bob")
        token = session_cookie(reply)
        me = await node.client.get("/api/v1/me", headers={"authorization": f"Bearer {token}"})
        assert me.json()["role"] == "user"


# -- refused: state, nonce, code, browser ------------------------------------------------


async def test_a_replayed_state_is_refused(node: Node) -> None:
    callback = await to_callback(node)
    first = await node.client.get(callback)
    assert first.status_code == 303
    second = await node.client.get(callback)
    problem(second, 422, "oidc_state_invalid")
    assert session_cookie(second) is None


async def test_an_unknown_state_is_refused(node: Node) -> None:
    reply = await node.client.get("/api/v1/oidc/test/callback?code=abc&state=forged")
    problem(reply, 422, "oidc_state_invalid")
    reply = await node.client.get("/api/v1/oidc/test/callback?code=abc")
    problem(reply, 422, "oidc_state_invalid")


async def test_a_wrong_nonce_is_refused(node: Node) -> None:
    reply = await sign_in(node, nonce="a-nonce-this-server-never-made")
    body = problem(reply, 401, "oidc_token_invalid")
    assert "nonce" in body["detail"]
    assert session_cookie(reply) is None


async def test_an_expired_code_is_refused(node: Node, provider: Provider) -> None:
    provider.mode(code_ttl=1)
    callback = await to_callback(node)
    await asyncio.sleep(2.5)  # past the provider's 1 s code lifetime
    reply = await node.client.get(callback)
    body = problem(reply, 401, "oidc_code_rejected")
    assert "invalid_grant" in body["detail"]


async def test_a_callback_in_another_browser_is_refused(node: Node) -> None:
    callback = await to_callback(node)
    node.client.cookies.clear()  # the attacker's browser: no binding cookie
    reply = await node.client.get(callback)
    problem(reply, 422, "oidc_browser_mismatch")


async def test_the_provider_saying_no_is_a_clear_problem(node: Node) -> None:
    start = await node.client.get("/api/v1/oidc/test/login")
    state = dict(parse_qsl(urlsplit(start.headers["location"]).query))["state"]
    reply = await node.client.get(
        "/api/v1/oidc/test/callback", params={"state": state, "error": "access_denied"}
    )
    problem(reply, 401, "oidc_denied")


# -- refused: the ID token --------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("tamper", "signature"),
        ("alg_none", "'none' is refused"),
        ("hs256", "'HS256' is refused"),
        ("foreign_key", "never published"),
        ("foreign_key_same_kid", "signature"),
        ("expired", "expired"),
        ("wrong_audience", "not meant for this server"),
        ("wrong_issuer", "another issuer"),
    ],
)
async def test_a_bad_id_token_is_refused(
    node: Node, provider: Provider, mode: str, words: str
) -> None:
    provider.mode(token=mode)
    reply = await sign_in(node, hint="bob")
    body = problem(reply, 401, "oidc_token_invalid")
    assert words in body["detail"], body
    assert session_cookie(reply) is None


# -- return path, redirect URI ------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "javascript:alert(1)",
        "relative/path",
        "/ok\r\nSet-Cookie: x=1",
    ],
)
async def test_open_redirects_are_refused(node: Node, target: str) -> None:
    reply = await node.client.get("/api/v1/oidc/test/login", params={"return_to": target})
    problem(reply, 422, "oidc_return_invalid")


async def test_a_redirect_uri_the_provider_never_registered_is_refused(
    migrated_url: str, provider: Provider
) -> None:
    env = provider_env(provider.issuer, redirect_uri=f"{REVENGE}/not/registered")
    async with running_node(migrated_url, env) as node:
        start = await node.client.get("/api/v1/oidc/test/login")
        assert start.status_code == 303
        async with httpx.AsyncClient() as browser:
            reply = await browser.get(start.headers["location"])
        # The provider shows its error page: it never sends the browser to that URI.
        assert reply.status_code == 400
        assert "location" not in reply.headers
        assert "redirect_uri" in reply.text


async def test_unknown_provider_is_404(node: Node) -> None:
    problem(await node.client.get("/api/v1/oidc/nobody/login"), 404, "oidc_provider_unknown")


# -- the provider down, slow, or answering nonsense ----------------------------------------


async def test_provider_down_is_a_clear_problem_and_password_login_works(
    migrated_url: str,
) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    async with running_node(migrated_url, provider_env(dead)) as node:
        reply = await node.client.get("/api/v1/oidc/test/login")
        body = problem(reply, 503, "oidc_provider_unavailable")
        assert reply.headers["retry-after"] == "30" and body["provider"] == "test"
        name = f"pw{secrets.token_hex(4)}"
        await node.auth.create_user(name, "a-long-password")
        login = await node.client.post(
            "/api/v1/auth/login", json={"username": name, "password": "a-long-password"}
        )
        assert login.status_code == 200
        report = await node.runtime.health.refresh()
        status = report.services["oidc"]
        assert status.initialized and not status.healthy and "test" in (status.error or "")
        assert report.status == "degraded"


async def test_a_slow_provider_is_cut_off(migrated_url: str, provider: Provider) -> None:
    provider.mode(delay=5)
    env = {**provider_env(provider.issuer), "REVENGE_OIDC__TIMEOUT": "1"}
    async with running_node(migrated_url, env) as node:
        reply = await node.client.get("/api/v1/oidc/test/login")
        body = problem(reply, 503, "oidc_provider_unavailable")
        assert "within 1s" in body["detail"]


@pytest.mark.parametrize("bad", ["huge", "malformed", "not_an_object"])
async def test_a_bad_discovery_document_is_refused(
    node: Node, provider: Provider, bad: str
) -> None:
    provider.mode(discovery=bad)
    reply = await node.client.get("/api/v1/oidc/test/login")
    body = problem(reply, 502, "oidc_provider_invalid")
    assert "discovery document" in body["detail"]


@pytest.mark.parametrize("bad", ["huge", "malformed", "not_an_object"])
async def test_a_bad_key_set_is_refused(node: Node, provider: Provider, bad: str) -> None:
    callback = await to_callback(node, hint="bob")
    provider.mode(jwks=bad)
    reply = await node.client.get(callback)
    body = problem(reply, 502, "oidc_provider_invalid")
    assert "key set" in body["detail"]
    assert session_cookie(reply) is None


# -- accounts: linking by verified e-mail -------------------------------------------------


async def test_e_mail_links_only_when_verified_and_allowed(
    migrated_url: str, provider: Provider
) -> None:
    async with running_node(migrated_url, provider_env(provider.issuer)) as node:
        first = await sign_in(node, hint="alice")
        alice = (await node.client.get(
            "/api/v1/me", headers={"authorization": f"Bearer {session_cookie(first)}"}
        )).json()["id"]  # fmt: skip
        # Not allowed: another subject with alice's verified address gets its own account.
        other = await sign_in(node, hint="alice-again")
        me = await node.client.get(
            "/api/v1/me", headers={"authorization": f"Bearer {session_cookie(other)}"}
        )
        assert me.json()["id"] != alice
        await node.db.execute(
            "DELETE FROM users WHERE id = %s", (me.json()["id"],)
        )  # its identity goes with it
    env = provider_env(provider.issuer, link_verified_email=True)
    async with running_node(migrated_url, env) as node:
        linked = await sign_in(node, hint="alice-again")
        me = await node.client.get(
            "/api/v1/me", headers={"authorization": f"Bearer {session_cookie(linked)}"}
        )
        assert me.json()["id"] == alice
        # An address the provider did not verify never links.
        eve = await sign_in(node, hint="eve")
        me = await node.client.get(
            "/api/v1/me", headers={"authorization": f"Bearer {session_cookie(eve)}"}
        )
        assert me.json()["id"] != alice and me.json()["username"].startswith("eve")


# -- the cold service ---------------------------------------------------------------------


async def test_cold_until_first_use_then_offloaded_with_its_client_closed(node: Node) -> None:
    lazy = node.runtime.lazy(oidc_module.OIDC)
    report = await node.runtime.health.refresh()
    assert report.services["oidc"].initialized is False and report.services["oidc"].healthy
    assert lazy.peek() is None
    await node.client.get("/api/v1/oidc/test/login")
    client = lazy.peek()
    assert client is not None and lazy.init_count == 1
    report = await node.runtime.health.refresh()
    assert report.services["oidc"].initialized is True and report.services["oidc"].healthy
    assert await node.runtime.offload_idle(idle_ttl=0.0) == ["oidc"]
    assert client.http.is_closed and lazy.peek() is None
    report = await node.runtime.health.refresh()
    assert report.services["oidc"].initialized is False
    reply = await sign_in(node, hint="bob")  # built again, documents fetched again
    assert reply.status_code == 303 and lazy.init_count == 2


async def test_documents_are_kept_for_their_cache_lifetime(node: Node, provider: Provider) -> None:
    provider.mode(cache_control="public, max-age=300")
    await node.client.get("/api/v1/oidc/test/login")
    client = node.runtime.lazy(oidc_module.OIDC).peek()
    assert client is not None
    cached = client._cache["test"]
    assert 290 < cached.metadata_expires - time.monotonic() <= 300
    provider.mode(discovery="error")  # now failing: the cached document still serves
    reply = await node.client.get("/api/v1/oidc/test/login")
    assert reply.status_code == 303


async def test_disabled_without_providers(migrated_url: str) -> None:
    async with running_node(migrated_url, {}) as node:
        report = await node.runtime.health.refresh()
        assert report.services["oidc"].to_dict()["disabled"] == "no provider in oidc.providers"
        assert report.status == "healthy"
        assert (await node.client.get("/api/v1/oidc/providers")).json() == {"providers": []}
        problem(await node.client.get("/api/v1/oidc/test/login"), 404, "oidc_provider_unknown")


def _closed_port() -> int:
    return free_port()


async def test_a_verified_address_links_to_the_account_that_has_it(
    fresh_pg_url: str, provider: Provider
) -> None:
    """Accounts with an e-mail address (``users.email``, which e-mail support adds; made here
    when it is not there yet): a verified address links only where the provider entry allows."""
    from revenge.wiring import migrate

    await migrate(fresh_pg_url)
    async with running_node(fresh_pg_url, provider_env(provider.issuer)) as node:
        await node.db.execute("ALTER TABLE users ADD COLUMN IF NOT EXISTS email text")
        robert = await node.auth.create_user("robert", "a-long-password")
        await node.db.execute(
            "UPDATE users SET email = 'bob@example.org' WHERE id = %s", (robert.id,)
        )
        reply = await sign_in(node, hint="bob")  # linking not allowed: a new account
        me = await node.client.get(
            "/api/v1/me", headers={"authorization": f"Bearer {session_cookie(reply)}"}
        )
        assert me.json()["id"] != robert.id
        await node.db.execute("DELETE FROM users WHERE id = %s", (me.json()["id"],))
    env = provider_env(provider.issuer, link_verified_email=True)
    async with running_node(fresh_pg_url, env) as node:
        reply = await sign_in(node, hint="bob")
        me = await node.client.get(
            "/api/v1/me", headers={"authorization": f"Bearer {session_cookie(reply)}"}
        )
        assert me.json()["id"] == robert.id and me.json()["username"] == "robert"
