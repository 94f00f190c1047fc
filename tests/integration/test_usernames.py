"""Usernames: one account per name however it is typed; no look-alike names beside real ones.

``\\u0430dmin`` (a Cyrillic a) is refused (mixed scripts, 422), ``\\uff41dmin`` in fullwidth
letters is ``admin`` (409 beside it), ``ADMIN`` logs in as ``admin``; rows written
before the normalised key existed migrate cleanly, look-alikes included.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

from revenge.config import load_settings
from revenge.infra.db import migrate as apply_migrations
from revenge.modules.auth.repository import UsernameTaken
from revenge.wiring import migrate, migrations
from tests.integration.test_auth_api import PASSWORD, Node, assert_problem, bearer, running_node

pytestmark = pytest.mark.integration

CYRILLIC_A = "\u0430"
FULLWIDTH_A = "\uff41"


@pytest.fixture
async def node(fresh_pg_url: str) -> AsyncIterator[Node]:
    await migrate(fresh_pg_url)
    async with running_node(fresh_pg_url) as running:
        yield running


async def admin_token(node: Node) -> str:
    name = f"boss{uuid.uuid4().hex[:6]}"
    await node.auth.service.create_user(name, PASSWORD, admin=True)
    return await node.token(name)


async def create(node: Node, token: str, username: str) -> tuple[int, dict[str, object]]:
    reply = await node.client.post(
        "/api/v1/users",
        json={"username": username, "password": PASSWORD},
        headers=bearer(token),
    )
    return reply.status_code, reply.json()


async def test_look_alikes_cannot_be_created_beside_admin(node: Node) -> None:
    token = await admin_token(node)
    status, body = await create(node, token, "admin")
    assert status == 201, body
    assert body["username"] == "admin" and body["role"] == "user"

    reply = await node.client.post(
        "/api/v1/users",
        json={"username": CYRILLIC_A + "dmin", "password": PASSWORD},
        headers=bearer(token),
    )
    body = assert_problem(reply, 422, "validation_failed")
    assert body["field"] == "username" and "script" in body["detail"]

    for same in (FULLWIDTH_A + "dmin", "ADMIN", " Admin"):
        reply = await node.client.post(
            "/api/v1/users", json={"username": same, "password": PASSWORD}, headers=bearer(token)
        )
        assert_problem(reply, 409, "username_taken")
    with pytest.raises(UsernameTaken):
        await node.auth.service.create_user("Admin", PASSWORD)


async def test_only_admins_create_users(node: Node) -> None:
    name = f"u{uuid.uuid4().hex[:8]}"
    await node.auth.service.create_user(name, PASSWORD)
    token = await node.token(name)
    status, body = await create(node, token, "someone")
    assert status == 403 and body["code"] == "admin_required"


@pytest.mark.parametrize(
    "name",
    [
        "paypal",
        "Straße",
        "東京タワー",
        "josé",
        "user_01",
        "Ἀθηνᾶ",
        "иван",
        "\uff46\uff55\uff4c\uff4c",
    ],
)
async def test_names_of_one_script_are_fine(node: Node, name: str) -> None:
    token = await admin_token(node)
    status, body = await create(node, token, name)
    assert status == 201, body
    login = await node.login(name.upper())
    assert login.status_code == 200, login.text


@pytest.mark.parametrize(
    "name",
    [
        "p" + CYRILLIC_A + "ypal",  # Latin + Cyrillic
        "\u03bfpen",  # Greek omicron + Latin
        "ad\u043cin",  # Cyrillic em inside Latin
    ],
)
async def test_mixed_script_names_are_refused(node: Node, name: str) -> None:
    token = await admin_token(node)
    status, body = await create(node, token, name)
    assert status == 422 and body["code"] == "validation_failed", body
    with pytest.raises(ValueError, match="script"):
        await node.auth.service.create_user(name, PASSWORD)


async def test_login_finds_the_account_whatever_the_case_or_width(node: Node) -> None:
    await node.auth.service.create_user("Admin", PASSWORD)
    for typed in ("admin", "ADMIN", "\uff21\uff44\uff4d\uff49\uff4e"):
        reply = await node.login(typed)
        assert reply.status_code == 200, (typed, reply.text)
        assert reply.json()["user"]["username"] == "Admin"


async def test_rows_from_before_the_normalised_key_migrate_cleanly(fresh_pg_url: str) -> None:
    """Look-alikes created before this release: the oldest keeps the name, the others step aside."""
    # Everything applied before the normalised key's file, in order: migrations only move
    # forward, so the files numbered after it must wait for it (the runner refuses the rest).
    every = migrations(load_settings(env={}))
    before = every[: next(i for i, m in enumerate(every) if "username" in m.name)]
    await apply_migrations(fresh_pg_url, before)
    with psycopg.connect(fresh_pg_url, autocommit=True) as conn:
        for name in ("admin", FULLWIDTH_A + "dmin", "Straße", "STRASSE", "Élodie"):
            conn.execute("INSERT INTO users (username, password_hash) VALUES (%s, 'x')", (name,))
    assert await migrate(fresh_pg_url)  # the rest, the normalised key included
    async with running_node(fresh_pg_url) as node:  # start-up fills the keys
        async with node.db.connection() as conn:
            cur = await conn.execute("SELECT username, username_key FROM users ORDER BY id")
            keys = dict(await cur.fetchall())
        assert keys["admin"] == "admin" and keys["Straße"] == "strasse"
        assert keys["Élodie"] == "élodie"
        assert keys[FULLWIDTH_A + "dmin"] != "admin" and keys["STRASSE"] != "strasse"
        with pytest.raises(UsernameTaken):
            await node.auth.service.create_user("ADMIN", PASSWORD)
        with pytest.raises(UsernameTaken):
            await node.auth.service.create_user("élodie", PASSWORD)
