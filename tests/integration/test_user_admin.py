"""User administration and a user's own password, over ASGI against the real PostgreSQL.

Tests about the last administrator run on a fresh database (others share one, with
many administrators in it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from revenge.modules.auth.management import LastAdmin, UserManagement
from revenge.wiring import migrate
from tests.integration.test_auth_api import (
    PASSWORD,
    Node,
    assert_problem,
    bearer,
    running_node,
)

pytestmark = pytest.mark.integration

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
async def node(migrated_url: str) -> AsyncIterator[Node]:
    async with running_node(migrated_url) as running:
        yield running


@pytest.fixture
async def lone(fresh_pg_url: str) -> AsyncIterator[Node]:
    """A node on a database of its own: no user exists yet."""
    await migrate(fresh_pg_url)
    async with running_node(fresh_pg_url) as running:
        yield running


async def admin_token(node: Node) -> str:
    return await node.token(await node.user("admin"))


async def user_id_of(node: Node, admin: str, name: str) -> int:
    reply = await node.client.get("/api/v1/users", headers=bearer(admin))
    assert reply.status_code == 200, reply.text
    (found,) = [u["id"] for u in reply.json()["users"] if u["username"] == name]
    return int(found)


async def test_create_list_show_with_etag(node: Node) -> None:
    admin = await admin_token(node)
    reply = await node.client.post(
        "/api/v1/users", json={"username": "Carol", "password": PASSWORD}, headers=bearer(admin)
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["username"] == "carol" or body["username"] == "Carol"
    assert body["role"] == "user" and body["disabled"] is False and body["version"] == 1
    assert reply.headers["etag"] == '"1"'
    listed = await node.client.get("/api/v1/users", headers=bearer(admin))
    assert body["id"] in [u["id"] for u in listed.json()["users"]]
    shown = await node.client.get(f"/api/v1/users/{body['id']}", headers=bearer(admin))
    assert shown.status_code == 200 and shown.json() == body
    missing = await node.client.get("/api/v1/users/999999999", headers=bearer(admin))
    assert_problem(missing, 404, "user_not_found")
    again = await node.client.post(
        "/api/v1/users", json={"username": "CAROL", "password": PASSWORD}, headers=bearer(admin)
    )
    assert_problem(again, 409, "username_taken")


async def test_only_administrators_manage_users(node: Node) -> None:
    user = await node.token(await node.user())
    target = await node.user()
    admin = await admin_token(node)
    target_id = await user_id_of(node, admin, target)
    for method, path, body in [
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", {"username": "mallory", "password": PASSWORD}),
        ("GET", f"/api/v1/users/{target_id}", None),
        ("PATCH", f"/api/v1/users/{target_id}", {"role": "admin"}),
        ("DELETE", f"/api/v1/users/{target_id}", None),
        ("POST", f"/api/v1/users/{target_id}/password", {"password": PASSWORD}),
    ]:
        reply = await node.client.request(method, path, json=body, headers=bearer(user))
        assert_problem(reply, 403, "admin_required")
    assert (await node.login(target)).status_code == 200


async def test_disable_stops_sessions_and_api_keys_at_once(node: Node) -> None:
    admin = await admin_token(node)
    name = await node.user()
    token = await node.token(name)
    key = await node.client.post(
        "/api/v1/auth/api-keys", json={"name": "tv"}, headers=bearer(token)
    )
    api_key = key.json()["key"]
    key_header = {node.auth.service.settings.api_key_header: api_key}
    assert (await node.client.get("/api/v1/me", headers=key_header)).status_code == 200
    assert (await node.client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    uid = await user_id_of(node, admin, name)
    reply = await node.client.patch(
        f"/api/v1/users/{uid}", json={"disabled": True}, headers=bearer(admin)
    )
    assert reply.status_code == 200 and reply.json()["disabled"] is True
    assert (await node.client.get("/api/v1/me", headers=bearer(token))).status_code == 401
    assert (await node.client.get("/api/v1/me", headers=key_header)).status_code == 401
    assert_problem(await node.login(name), 403, "account_disabled")
    reply = await node.client.patch(
        f"/api/v1/users/{uid}", json={"disabled": False}, headers=bearer(admin)
    )
    assert reply.json()["disabled"] is False
    assert (await node.login(name)).status_code == 200
    assert (await node.client.get("/api/v1/me", headers=key_header)).status_code == 200


async def test_role_change_reaches_the_cached_session(node: Node) -> None:
    admin = await admin_token(node)
    name = await node.user()
    token = await node.token(name)
    assert (await node.client.get("/api/v1/users", headers=bearer(token))).status_code == 403
    uid = await user_id_of(node, admin, name)
    reply = await node.client.patch(
        f"/api/v1/users/{uid}", json={"role": "admin"}, headers=bearer(admin)
    )
    assert reply.json()["role"] == "admin"
    assert (await node.client.get("/api/v1/users", headers=bearer(token))).status_code == 200
    me = await node.client.get("/api/v1/me", headers=bearer(token))
    assert me.json()["role"] == "admin"


async def test_delete_removes_user_sessions_and_keys(node: Node) -> None:
    admin = await admin_token(node)
    name = await node.user()
    token = await node.token(name)
    await node.client.post("/api/v1/auth/api-keys", json={"name": "k"}, headers=bearer(token))
    uid = await user_id_of(node, admin, name)
    reply = await node.client.delete(f"/api/v1/users/{uid}", headers=bearer(admin))
    assert reply.status_code == 204
    assert (await node.client.get("/api/v1/me", headers=bearer(token))).status_code == 401
    async with node.db.connection() as conn:
        for table in ("sessions", "api_keys", "users"):
            column = "id" if table == "users" else "user_id"
            cur = await conn.execute(
                f"SELECT count(*) FROM {table} WHERE {column} = %s",
                (uid,),
            )
            row = await cur.fetchone()
            assert row is not None and row[0] == 0, table
    gone = await node.client.delete(f"/api/v1/users/{uid}", headers=bearer(admin))
    assert_problem(gone, 404, "user_not_found")


async def test_if_match_prevents_a_lost_update(node: Node) -> None:
    admin_a, admin_b = await admin_token(node), await admin_token(node)
    name = await node.user()
    uid = await user_id_of(node, admin_a, name)
    seen = await node.client.get(f"/api/v1/users/{uid}", headers=bearer(admin_a))
    etag = seen.headers["etag"]
    first = await node.client.patch(
        f"/api/v1/users/{uid}",
        json={"role": "admin"},
        headers={**bearer(admin_a), "if-match": etag},
    )
    assert first.status_code == 200 and first.headers["etag"] != etag
    second = await node.client.patch(
        f"/api/v1/users/{uid}",
        json={"disabled": True},
        headers={**bearer(admin_b), "if-match": etag},
    )
    body = assert_problem(second, 412, "version_mismatch")
    assert body["version"] == first.json()["version"]
    now = await node.client.get(f"/api/v1/users/{uid}", headers=bearer(admin_a))
    assert now.json()["role"] == "admin" and now.json()["disabled"] is False
    bad = await node.client.patch(
        f"/api/v1/users/{uid}", json={}, headers={**bearer(admin_a), "if-match": '"x"'}
    )
    assert_problem(bad, 412, "version_mismatch")


async def test_the_last_admin_stays(lone: Node) -> None:
    only = await lone.user("admin")
    token = await lone.token(only)
    uid = await user_id_of(lone, token, only)
    for method, body in [("PATCH", {"role": "user"}), ("PATCH", {"disabled": True})]:
        reply = await lone.client.request(
            method, f"/api/v1/users/{uid}", json=body, headers=bearer(token)
        )
        assert_problem(reply, 409, "last_admin")
    reply = await lone.client.delete(f"/api/v1/users/{uid}", headers=bearer(token))
    assert_problem(reply, 409, "last_admin")
    me = await lone.client.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200 and me.json()["role"] == "admin"


@pytest.mark.parametrize("how", ["demote", "disable", "delete"])
async def test_two_admins_removing_each_other_at_once_leave_one(lone: Node, how: str) -> None:
    a, b = await lone.user("admin"), await lone.user("admin")
    token = await lone.token(a)
    ids = [await user_id_of(lone, token, a), await user_id_of(lone, token, b)]
    users = UserManagement(lone.auth.service)

    async def remove(user_id: int) -> Any:
        if how == "delete":
            return await users.delete(user_id)
        if how == "demote":
            return await users.update(user_id, role="user")
        return await users.update(user_id, disabled=True)

    results = await asyncio.gather(*(remove(i) for i in ids), return_exceptions=True)
    refused = [r for r in results if isinstance(r, LastAdmin)]
    assert len(refused) == 1, results
    async with lone.db.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled")
        row = await cur.fetchone()
    assert row is not None and row[0] == 1


async def test_reset_password_signs_out_and_forces_a_new_one(node: Node) -> None:
    admin = await admin_token(node)
    name = await node.user()
    token = await node.token(name)
    uid = await user_id_of(node, admin, name)
    reply = await node.client.post(
        f"/api/v1/users/{uid}/password",
        json={"password": "temporary pass 1"},
        headers=bearer(admin),
    )
    assert reply.status_code == 200 and reply.json()["must_change_password"] is True
    assert (await node.client.get("/api/v1/me", headers=bearer(token))).status_code == 401
    assert_problem(await node.login(name), 401, "invalid_credentials")
    assert_problem(await node.login(name, "temporary pass 1"), 403, "password_change_required")
    same = await node.client.post(
        "/api/v1/auth/login",
        json={"username": name, "password": "temporary pass 1", "new_password": "temporary pass 1"},
    )
    assert_problem(same, 422, "password_unchanged")
    short = await node.client.post(
        "/api/v1/auth/login",
        json={"username": name, "password": "temporary pass 1", "new_password": "x"},
    )
    assert_problem(short, 422, "validation_failed")
    chosen = await node.client.post(
        "/api/v1/auth/login",
        json={"username": name, "password": "temporary pass 1", "new_password": NEW_PASSWORD},
    )
    assert chosen.status_code == 200, chosen.text
    assert (await node.login(name, NEW_PASSWORD)).status_code == 200
    assert_problem(await node.login(name, "temporary pass 1"), 401, "invalid_credentials")


async def test_an_initial_password_is_replaced_at_first_sign_in(node: Node) -> None:
    admin = await admin_token(node)
    reply = await node.client.post(
        "/api/v1/users",
        json={"username": "dave_initial", "password": PASSWORD, "must_change_password": True},
        headers=bearer(admin),
    )
    assert reply.status_code == 201 and reply.json()["must_change_password"] is True
    assert_problem(await node.login("dave_initial"), 403, "password_change_required")


async def test_change_own_password_ends_every_other_session(node: Node) -> None:
    name = await node.user()
    here, there = await node.token(name), await node.token(name)
    key = await node.client.post("/api/v1/auth/api-keys", json={"name": "k"}, headers=bearer(here))
    key_header = {node.auth.service.settings.api_key_header: key.json()["key"]}
    wrong = await node.client.post(
        "/api/v1/me/password",
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
        headers=bearer(here),
    )
    assert_problem(wrong, 403, "wrong_password")
    assert (await node.client.get("/api/v1/me", headers=bearer(there))).status_code == 200
    reply = await node.client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(here),
    )
    assert reply.status_code == 200 and reply.json() == {"other_sessions_ended": 1}
    assert (await node.client.get("/api/v1/me", headers=bearer(there))).status_code == 401
    assert (await node.client.get("/api/v1/me", headers=bearer(here))).status_code == 200
    assert (await node.client.get("/api/v1/me", headers=key_header)).status_code == 200
    assert_problem(await node.login(name), 401, "invalid_credentials")
    assert (await node.login(name, NEW_PASSWORD)).status_code == 200
    short = await node.client.post(
        "/api/v1/me/password",
        json={"current_password": NEW_PASSWORD, "new_password": "x"},
        headers=bearer(here),
    )
    assert_problem(short, 422, "validation_failed")
