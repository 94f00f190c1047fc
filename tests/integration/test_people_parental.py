"""Parental control over ASGI against the real PostgreSQL: the admin API, and SQL's twin of the mapping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from revenge.modules.auth.ratings import rating_age
from tests.integration.test_auth_api import Node, assert_problem, bearer, running_node
from tests.integration.test_user_admin import admin_token, user_id_of
from tests.unit.test_ratings import TABLE

pytestmark = pytest.mark.integration


@pytest.fixture
async def node(migrated_url: str) -> AsyncIterator[Node]:
    async with running_node(migrated_url) as running:
        yield running


SPELLINGS = [
    label
    for label, _ in TABLE
    if label is not None
    for label in (label, label.lower(), f"Rated {label}", f"us:{label}", f" {label} ")
]


async def test_sql_maps_every_label_as_python_does(node: Node) -> None:
    """``content_rating_age`` (the stored column's function) is ``rating_age``'s twin."""
    async with node.db.connection() as conn:
        cur = await conn.execute(
            "SELECT label, content_rating_age(label) FROM unnest(%s::text[]) AS label",
            (SPELLINGS,),
        )
        rows = await cur.fetchall()
        cur = await conn.execute("SELECT content_rating_age(NULL)")
        assert await cur.fetchone() == (None,)
    differ = [(label, sql, rating_age(label)) for label, sql in rows if sql != rating_age(label)]
    assert differ == [] and len(rows) == len(SPELLINGS)


async def test_an_administrator_sets_a_limit(node: Node) -> None:
    admin = await admin_token(node)
    name = await node.user()
    uid = await user_id_of(node, admin, name)
    path = f"/api/v1/users/{uid}/parental"
    shown = await node.client.get(path, headers=bearer(admin))
    assert shown.status_code == 200
    assert shown.json() | {"version": 0} == {
        "max_rating": None,
        "max_rating_age": None,
        "unrated": "allow",
        "version": 0,
    }
    reply = await node.client.put(
        path, json={"max_rating": "FSK 12", "unrated": "block"}, headers=bearer(admin)
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["max_rating"] == "FSK 12" and body["max_rating_age"] == 12
    assert body["unrated"] == "block" and reply.headers["etag"] == f'"{body["version"]}"'
    assert (await node.client.get(path, headers=bearer(admin))).json() == body
    lifted = await node.client.put(path, json={"max_rating": None}, headers=bearer(admin))
    assert lifted.json()["max_rating_age"] is None and lifted.json()["unrated"] == "allow"


async def test_bad_limits_are_clear_problems(node: Node) -> None:
    admin = await admin_token(node)
    user = await node.token(await node.user())
    uid = await user_id_of(node, admin, await node.user())
    path = f"/api/v1/users/{uid}/parental"
    unknown = await node.client.put(path, json={"max_rating": "PG-14"}, headers=bearer(admin))
    problem = assert_problem(unknown, 422, "validation_failed")
    assert problem["field"] == "max_rating" and "unknown rating" in problem["detail"]
    odd = await node.client.put(path, json={"unrated": "sometimes"}, headers=bearer(admin))
    assert_problem(odd, 422, "validation_failed")
    for method in ("GET", "PUT"):
        reply = await node.client.request(
            method, path, json={"max_rating": "G"}, headers=bearer(user)
        )
        assert_problem(reply, 403, "admin_required")
    missing = await node.client.get("/api/v1/users/999999999/parental", headers=bearer(admin))
    assert_problem(missing, 404, "user_not_found")


async def test_two_administrators_setting_one_limit_lose_no_update(node: Node) -> None:
    """Both read version v; both PUT with If-Match v at once: one wins, the other gets 412."""
    admin = await admin_token(node)
    other = await node.token(await node.user("admin"))
    uid = await user_id_of(node, admin, await node.user())
    path = f"/api/v1/users/{uid}/parental"
    version = (await node.client.get(path, headers=bearer(admin))).json()["version"]
    match = {"if-match": f'"{version}"'}
    first, second = await asyncio.gather(
        node.client.put(path, json={"max_rating": "PG"}, headers={**bearer(admin), **match}),
        node.client.put(path, json={"max_rating": "R"}, headers={**bearer(other), **match}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 412]
    winner = first if first.status_code == 200 else second
    loser = second if winner is first else first
    assert_problem(loser, 412, "version_mismatch")
    now = (await node.client.get(path, headers=bearer(admin))).json()
    assert now["max_rating"] == winner.json()["max_rating"] and now["version"] == version + 1
