"""Invitations over ASGI against the real PostgreSQL: invite, accept once, and the bad cases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from revenge.modules.auth.invitations import INVITATION_TTL
from tests.integration.test_auth_api import PASSWORD, Node, assert_problem, bearer, running_node
from tests.integration.test_user_admin import admin_token

pytestmark = pytest.mark.integration

INVITE, ACCEPT = "/api/v1/invitations", "/api/v1/invitations/accept"


@pytest.fixture
async def node(migrated_url: str) -> AsyncIterator[Node]:
    async with running_node(migrated_url) as running:
        yield running


async def invite(node: Node, role: str = "user") -> str:
    reply = await node.client.post(
        INVITE, json={"role": role}, headers=bearer(await admin_token(node))
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["accept_path"] == ACCEPT and reply.json()["role"] == role
    node.client.cookies.clear()
    return str(reply.json()["token"])


def unique_name() -> str:
    import uuid

    return f"inv{uuid.uuid4().hex[:8]}"


async def test_an_invited_person_picks_a_name_and_is_signed_in_once(node: Node) -> None:
    token = await invite(node)
    name = unique_name()
    reply = await node.client.post(
        ACCEPT, json={"token": token, "username": name, "password": PASSWORD}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["user"]["username"] == name and body["user"]["role"] == "user"
    me = await node.client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200 and me.json()["username"] == name
    assert (await node.login(name)).status_code == 200
    again = await node.client.post(
        ACCEPT, json={"token": token, "username": unique_name(), "password": PASSWORD}
    )
    assert_problem(again, 410, "invitation_used")


async def test_an_invitation_for_an_administrator_makes_one(node: Node) -> None:
    token = await invite(node, "admin")
    reply = await node.client.post(
        ACCEPT, json={"token": token, "username": unique_name(), "password": PASSWORD}
    )
    assert reply.status_code == 200 and reply.json()["user"]["role"] == "admin"


async def test_bad_acceptances(node: Node) -> None:
    name = await node.user()
    token = await invite(node)
    taken = await node.client.post(
        ACCEPT, json={"token": token, "username": name.upper(), "password": PASSWORD}
    )
    assert_problem(taken, 409, "username_taken")  # case: the same name
    mixed = await node.client.post(
        ACCEPT,
        json={"token": token, "username": "p\u0430ypal", "password": PASSWORD},  # Cyrillic a
    )
    assert_problem(mixed, 422, "validation_failed")
    unknown = await node.client.post(
        ACCEPT, json={"token": "not-a-token", "username": unique_name(), "password": PASSWORD}
    )
    assert_problem(unknown, 404, "invitation_not_found")
    async with node.db.connection() as conn:
        await conn.execute(
            "UPDATE invitations SET expires_at = expires_at - make_interval(secs => %s)",
            (INVITATION_TTL + 1,),
        )
    expired = await node.client.post(
        ACCEPT, json={"token": token, "username": unique_name(), "password": PASSWORD}
    )
    assert_problem(expired, 410, "invitation_expired")


async def test_two_people_accepting_one_invitation_make_one_account(node: Node) -> None:
    token = await invite(node)
    replies = await asyncio.gather(
        *(
            node.client.post(
                ACCEPT, json={"token": token, "username": unique_name(), "password": PASSWORD}
            )
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in replies) == [200, 410]


async def test_only_administrators_invite(node: Node) -> None:
    user = await node.token(await node.user())
    assert_problem(
        await node.client.post(INVITE, json={}, headers=bearer(user)), 403, "admin_required"
    )
