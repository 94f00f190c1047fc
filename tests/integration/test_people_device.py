"""Sign in on a TV over ASGI against the real PostgreSQL: code, approval, poll, and the bad cases."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from revenge.modules.auth.device import (
    ALPHABET,
    APPROVAL_THROTTLE,
    CODE_LENGTH,
    CODE_TTL,
    MAX_LIVE_CODES_PER_NETWORK,
    normalised,
)
from tests.integration.test_auth_api import Node, assert_problem, bearer, running_node

pytestmark = pytest.mark.integration

START, POLL, APPROVE = (
    "/api/v1/auth/device",
    "/api/v1/auth/device/token",
    "/api/v1/auth/device/approve",
)


@pytest.fixture
async def node(migrated_url: str) -> AsyncIterator[Node]:
    async with running_node(migrated_url) as running:
        yield running


def address() -> dict[str, str]:
    """A client address of its own (the node trusts 127/8 as proxies): no shared counters."""
    return {"x-forwarded-for": f"198.18.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"}


async def start(node: Node, where: dict[str, str]) -> dict[str, str]:
    reply = await node.client.post(START, headers={**where, "user-agent": "Living room TV"})
    assert reply.status_code == 201, reply.text
    body: dict[str, str] = reply.json()
    return body


async def age_codes(node: Node, user_code: str, column: str, seconds: float) -> None:
    """Move a code's clock back instead of waiting (its expiry, or its last poll)."""
    async with node.db.connection() as conn:
        await conn.execute(
            f"UPDATE device_codes SET {column} = {column} - make_interval(secs => %s) "
            "WHERE user_code = %s",
            (seconds, user_code.replace("-", "")),
        )


async def test_a_tv_signs_in_once_as_the_approver(node: Node) -> None:
    tv = address()
    name = await node.user()
    phone = await node.token(name)
    started = await start(node, tv)
    code, secret = started["user_code"], started["device_secret"]
    assert len(code) == 9 and code[4] == "-" and normalised(code) is not None
    assert started["approve_path"] == APPROVE and started["interval"] > 0

    pending = await node.client.post(POLL, json={"device_secret": secret}, headers=tv)
    assert_problem(pending, 400, "authorization_pending")
    assert int(pending.headers["retry-after"]) > 0
    too_fast = await node.client.post(POLL, json={"device_secret": secret}, headers=tv)
    assert_problem(too_fast, 429, "slow_down")

    typed = code.lower().replace("-", " ")  # as a person may type it
    approved = await node.client.post(
        APPROVE, json={"user_code": typed}, headers={**bearer(phone), **address()}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["client"] == "Living room TV"

    await age_codes(node, code, "polled_at", 10)
    session = await node.client.post(POLL, json={"device_secret": secret}, headers=tv)
    assert session.status_code == 200, session.text
    body = session.json()
    assert body["user"]["username"] == name and body["user"]["role"] == "user"
    me = await node.client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200 and me.json()["username"] == name
    # Its own session, listed beside the phone's, with the TV's description.
    sessions = await node.client.get("/api/v1/auth/sessions", headers=bearer(phone))
    assert "Living room TV" in [s["client"] for s in sessions.json()["sessions"]]
    # never more than the approver has: a user's TV is no administrator
    users = await node.client.get("/api/v1/users", headers=bearer(body["token"]))
    assert_problem(users, 403, "admin_required")

    # single use, both ways
    again = await node.client.post(POLL, json={"device_secret": secret}, headers=tv)
    assert_problem(again, 410, "device_code_used")
    reapprove = await node.client.post(
        APPROVE, json={"user_code": code}, headers={**bearer(phone), **address()}
    )
    assert_problem(reapprove, 410, "device_code_used")


async def test_expired_codes_are_refused_both_ways(node: Node) -> None:
    tv = address()
    phone = await node.token(await node.user())
    started = await start(node, tv)
    await age_codes(node, started["user_code"], "expires_at", CODE_TTL + 1)
    approve = await node.client.post(
        APPROVE, json={"user_code": started["user_code"]}, headers={**bearer(phone), **address()}
    )
    assert_problem(approve, 410, "device_code_expired")
    poll = await node.client.post(POLL, json={"device_secret": started["device_secret"]})
    assert_problem(poll, 410, "device_code_expired")


async def test_unknown_codes_and_secrets(node: Node) -> None:
    phone = await node.token(await node.user())
    for typed in ("ABCD-EFGH", "0000-0000", "short", ""):
        reply = await node.client.post(
            APPROVE, json={"user_code": typed}, headers={**bearer(phone), **address()}
        )
        if typed == "":
            assert_problem(reply, 422, "validation_failed")
        else:
            assert_problem(reply, 404, "device_code_not_found")
    poll = await node.client.post(POLL, json={"device_secret": "not a secret"})
    assert_problem(poll, 404, "device_code_not_found")


async def test_an_api_key_cannot_approve(node: Node) -> None:
    phone = await node.token(await node.user())
    key = await node.client.post("/api/v1/auth/api-keys", json={"name": "k"}, headers=bearer(phone))
    header = {node.auth.service.settings.api_key_header: key.json()["key"]}
    started = await start(node, address())
    reply = await node.client.post(
        APPROVE, json={"user_code": started["user_code"]}, headers={**header, **address()}
    )
    assert_problem(reply, 403, "session_required")
    node.client.cookies.clear()  # the login's cookie would sign this in
    assert_problem(await node.client.post(APPROVE, json={"user_code": "x"}), 401, "unauthenticated")


async def test_a_disabled_approver_signs_in_no_tv(node: Node) -> None:
    tv = address()
    name = await node.user()
    phone = await node.token(name)
    started = await start(node, tv)
    reply = await node.client.post(
        APPROVE, json={"user_code": started["user_code"]}, headers={**bearer(phone), **address()}
    )
    assert reply.status_code == 200
    await node.auth.service.set_disabled(await _user_id(node, name), True)
    poll = await node.client.post(
        POLL, json={"device_secret": started["device_secret"]}, headers=tv
    )
    assert_problem(poll, 403, "account_disabled")


async def test_guessing_codes_is_throttled(node: Node) -> None:
    """Wrong codes from one address: after the free allowance each try waits (429), even a right one."""
    phone = await node.token(await node.user())
    guesser = address()
    real = await start(node, address())
    statuses = []
    for _ in range(APPROVAL_THROTTLE.ip.free + 3):
        guess = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        reply = await node.client.post(
            APPROVE, json={"user_code": guess}, headers={**bearer(phone), **guesser}
        )
        statuses.append(reply.status_code)
    assert statuses[: APPROVAL_THROTTLE.ip.free] == [404] * APPROVAL_THROTTLE.ip.free
    assert statuses[-1] == 429
    right = await node.client.post(
        APPROVE, json={"user_code": real["user_code"]}, headers={**bearer(phone), **guesser}
    )
    body = assert_problem(right, 429, "too_many_attempts")
    assert int(right.headers["retry-after"]) >= 1 and "try again" in body["detail"]


def test_the_code_space_makes_guessing_within_a_lifetime_hopeless() -> None:
    """The most guesses one account (or address) gets in a code's lifetime, against the space."""
    space = len(ALPHABET) ** CODE_LENGTH
    policy = APPROVAL_THROTTLE.pair
    guesses, elapsed = 0, 0.0
    while elapsed <= CODE_TTL:
        guesses += 1
        elapsed += policy.delay(guesses)
    live = MAX_LIVE_CODES_PER_NETWORK * 1000  # a thousand networks' worth of live codes
    assert space > 8e11 and guesses < 25
    assert guesses * live / space < 1e-3


async def test_one_network_holds_a_bounded_number_of_codes(node: Node) -> None:
    tv = address()
    for _ in range(MAX_LIVE_CODES_PER_NETWORK):
        await start(node, tv)
    reply = await node.client.post(START, headers=tv)
    assert_problem(reply, 429, "too_many_device_codes")
    assert (await node.client.post(START, headers=address())).status_code == 201


async def _user_id(node: Node, name: str) -> int:
    async with node.db.connection() as conn:
        cur = await conn.execute("SELECT id FROM users WHERE username = %s", (name,))
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])
