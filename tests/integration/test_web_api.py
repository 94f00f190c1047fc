"""The web client's server side against the real PostgreSQL: cookie CSRF protection, the
first-run setup (loopback or one-time code, printed once) and the admin runtime view."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from revenge.config import load_settings
from revenge.contract import assemble
from revenge.modules.auth import AUTH
from revenge.modules.auth import MODULE as AUTH_MODULE
from revenge.modules.web import MODULE as WEB_MODULE
from revenge.runtime import Runtime
from revenge.wiring import migrate
from tests.integration.test_auth_api import (
    FAST_ARGON2,
    PASSWORD,
    Node,
    assert_problem,
    bearer,
    running_node,
)

pytestmark = pytest.mark.integration

CSRF = {"x-requested-with": "revenge"}
CODE = re.compile(r"setup code ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})")


@pytest.fixture
async def node(migrated_url: str) -> AsyncIterator[Node]:
    async with running_node(migrated_url) as running:
        yield running


# -- CSRF ---------------------------------------------------------------------------------------


async def test_a_cookie_alone_cannot_change_state(node: Node) -> None:
    name = await node.user()
    login = await node.login(name)
    assert login.status_code == 200
    token = login.json()["token"]
    cookie = {"cookie": f"revenge_session={token}"}
    node.client.cookies.clear()
    # reading with the cookie alone is fine: a cross-site page cannot read the answer
    assert (await node.client.get("/api/v1/auth/api-keys", headers=cookie)).status_code == 200
    refused = await node.client.post("/api/v1/auth/api-keys", json={"name": "k"}, headers=cookie)
    body = assert_problem(refused, 403, "csrf_header_required")
    assert "x-requested-with" in body["detail"]
    assert_problem(
        await node.client.delete("/api/v1/auth/sessions", headers=cookie), 403,
        "csrf_header_required",
    )  # fmt: skip
    assert_problem(
        await node.client.post("/api/v1/auth/logout", headers=cookie), 403, "csrf_header_required"
    )
    # nothing happened: the session still works and made no key
    keys = await node.client.get("/api/v1/auth/api-keys", headers=cookie)
    assert keys.json()["api_keys"] == []
    made = await node.client.post(
        "/api/v1/auth/api-keys", json={"name": "k"}, headers={**cookie, **CSRF}
    )
    assert made.status_code == 201
    # a bearer token is never sent by a browser on its own: no header needed
    other = await node.client.post(
        "/api/v1/auth/api-keys", json={"name": "k2"}, headers=bearer(token)
    )
    assert other.status_code == 201
    # an API key neither
    key = made.json()["key"]
    assert (await node.client.get("/api/v1/me", headers={"x-api-key": key})).status_code == 200
    out = await node.client.post("/api/v1/auth/logout", headers={**cookie, **CSRF})
    assert out.status_code == 204


async def test_a_cookie_csrf_refusal_is_also_the_cached_answer(node: Node) -> None:
    """The hot path (a cache hit) checks the header too, not only a miss."""
    name = await node.user()
    token = (await node.login(name)).json()["token"]
    node.client.cookies.clear()
    cookie = {"cookie": f"revenge_session={token}"}
    assert (await node.client.get("/api/v1/me", headers=cookie)).status_code == 200  # cached now
    assert node.auth.authenticator.trusted
    refused = await node.client.post("/api/v1/me/password", json={}, headers=cookie)
    assert_problem(refused, 403, "csrf_header_required")


# -- first run ----------------------------------------------------------------------------------


@asynccontextmanager
async def fresh_node(
    url: str, *, peer: str = "127.0.0.1", host: str = "localhost"
) -> AsyncIterator[tuple[Node, httpx.AsyncClient]]:
    async with running_node(url) as node:
        transport = httpx.ASGITransport(app=node.app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            yield node, client


@pytest.fixture
async def empty_url(fresh_pg_url: str) -> str:
    await migrate(fresh_pg_url)
    return fresh_pg_url


async def test_setup_from_elsewhere_needs_the_code_printed_once(
    empty_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="revenge.modules.auth.service")
    # two workers start on the empty table at once: one code, printed by one of them
    async with fresh_node(empty_url, peer="192.0.2.7", host="revenge.example") as (node, client):
        async with running_node(empty_url):
            pass
        lines = [r.getMessage() for r in caplog.records if "no users exist yet" in r.getMessage()]
        assert len(lines) == 1, lines
        code = CODE.search(lines[0])
        assert code is not None
        state = (await client.get("/api/v1/setup")).json()
        assert state == {"needed": True, "local": False}
        body = {"username": "root", "password": PASSWORD}
        assert_problem(await client.post("/api/v1/setup", json=body), 403, "csrf_header_required")
        assert_problem(
            await client.post("/api/v1/setup", json=body, headers=CSRF), 403, "setup_code_required"
        )
        wrong = {**body, "code": "AAAA-BBBB-CCCC-DDDD"}
        assert_problem(
            await client.post("/api/v1/setup", json=wrong, headers=CSRF), 403, "setup_code_invalid"
        )
        assert (await client.get("/api/v1/setup")).json()["needed"] is True
        typed = {**body, "code": code.group(1).lower().replace("-", " ")}  # as a person types it
        made = await client.post("/api/v1/setup", json=typed, headers=CSRF)
        assert made.status_code == 201, made.text
        assert made.json()["user"]["role"] == "admin"
        assert "HttpOnly" in made.headers["set-cookie"]
        me = await client.get("/api/v1/me")  # the cookie just set
        assert me.status_code == 200 and me.json()["username"] == "root"
        assert (await client.get("/api/v1/setup")).json()["needed"] is False
        again = {**body, "username": "second", "code": code.group(1)}
        assert_problem(
            await client.post("/api/v1/setup", json=again, headers=CSRF), 409, "setup_done"
        )
        # the code is gone with the first administrator
        row = await node.db.fetch_one("SELECT count(*) FROM setup_code")
        assert row is not None and row[0] == 0


async def test_setup_on_this_machine_needs_no_code(empty_url: str) -> None:
    async with fresh_node(empty_url) as (_node, client):
        assert (await client.get("/api/v1/setup")).json() == {"needed": True, "local": True}
        made = await client.post(
            "/api/v1/setup", json={"username": "owner", "password": PASSWORD}, headers=CSRF
        )
        assert made.status_code == 201, made.text


@pytest.mark.parametrize(
    ("peer", "host", "headers"),
    [
        ("127.0.0.1", "evil.example:8000", {}),  # DNS rebinding: a name re-pointed at 127.0.0.1
        ("127.0.0.1", "localhost", {"x-forwarded-for": "203.0.113.9"}),  # behind a local proxy
        ("127.0.0.1", "localhost", {"forwarded": "for=203.0.113.9"}),
        ("192.0.2.7", "localhost", {}),
    ],
)
async def test_what_is_not_this_machine(
    empty_url: str, peer: str, host: str, headers: dict[str, str]
) -> None:
    async with fresh_node(empty_url, peer=peer, host=host) as (_node, client):
        state = (await client.get("/api/v1/setup", headers=headers)).json()
        assert state == {"needed": True, "local": False}
        refused = await client.post(
            "/api/v1/setup",
            json={"username": "owner", "password": PASSWORD},
            headers={**CSRF, **headers},
        )
        assert_problem(refused, 403, "setup_code_required")


async def test_setup_refuses_a_bad_password_with_the_api_detail(empty_url: str) -> None:
    async with fresh_node(empty_url) as (_node, client):
        short = await client.post(
            "/api/v1/setup", json={"username": "owner", "password": "short"}, headers=CSRF
        )
        assert_problem(short, 422, "validation_failed")


# -- the runtime view ---------------------------------------------------------------------------


@asynccontextmanager
async def web_app(url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    settings = load_settings(
        env={
            "REVENGE_DATABASE__URL": url,
            "REVENGE_JOBS__IN_PROCESS_WORKER": "false",
            **FAST_ARGON2,
        }
    )
    runtime = Runtime.from_settings(settings)
    app = assemble(settings, [AUTH_MODULE, WEB_MODULE], runtime=runtime).http_app()
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, runtime
    finally:
        await app.shutdown()


async def test_runtime_view_is_for_administrators(migrated_url: str) -> None:
    async with web_app(migrated_url) as (client, runtime):
        auth = runtime.get(AUTH)
        await auth.create_user("rt_admin", PASSWORD, admin=True)
        await auth.create_user("rt_user", PASSWORD)
        tokens = {}
        for name in ("rt_admin", "rt_user"):
            reply = await client.post(
                "/api/v1/auth/login", json={"username": name, "password": PASSWORD}
            )
            tokens[name] = reply.json()["token"]
        client.cookies.clear()
        assert_problem(await client.get("/api/v1/admin/runtime"), 401, "unauthenticated")
        assert_problem(
            await client.get("/api/v1/admin/runtime", headers=bearer(tokens["rt_user"])), 403,
            "admin_required",
        )  # fmt: skip
        reply = await client.get("/api/v1/admin/runtime", headers=bearer(tokens["rt_admin"]))
        assert reply.status_code == 200, reply.text
        view = reply.json()
        services = {s["name"]: s for s in view["services"]}
        assert services["database"]["tier"] == "warm" and services["database"]["state"] == "ready"
        assert services["database"]["spin_up_ms"] > 0
        assert services["session_cache"]["tier"] == "hot"
        assert view["pools"][0]["name"] == "postgresql" and view["pools"][0]["max_size"] > 0
        kinds = {c["kind"] for c in view["caches"]}
        assert "session" in kinds
        categories = {c["category"] for c in view["memory"]["categories"]}
        assert {"session_cache", "transcode_cache", "database_pool", "process"} <= categories
        assert view["memory"]["level"] in ("normal", "moderate", "critical")
        assert view["jobs"]["available"] is True
        assert view["reports"] == {}
        # it is documented: the OpenAPI document has the route and its schema
        doc = (await client.get("/api/v1/openapi.json", headers=bearer(tokens["rt_admin"]))).json()
        operation = doc["paths"]["/api/v1/admin/runtime"]["get"]
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/RuntimeOut"}
        assert "services" in doc["components"]["schemas"]["RuntimeOut"]["properties"]


async def test_runtime_view_polls_without_touching_cold_services(migrated_url: str) -> None:
    """Reading the view builds nothing and keeps no idle clock running."""
    async with web_app(migrated_url) as (client, runtime):
        auth = runtime.get(AUTH)
        await auth.create_user("rt_admin2", PASSWORD, admin=True)
        token = (
            await client.post(
                "/api/v1/auth/login", json={"username": "rt_admin2", "password": PASSWORD}
            )
        ).json()["token"]
        before = {r.name: r.init_count for r in runtime.report()}
        for _ in range(3):
            assert (
                await client.get("/api/v1/admin/runtime", headers=bearer(token))
            ).status_code == 200
            await asyncio.sleep(0)
        after = {r.name: r.init_count for r in runtime.report()}
        assert before == after
