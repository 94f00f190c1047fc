"""The login throttle in PostgreSQL: IPv6 by /64, the account-wide delay, known networks, the window.

One worker over ASGI (two real workers: tests/e2e/test_login_throttle.py); the
client address comes from ``X-Forwarded-For`` (the loopback peer is a trusted proxy).
Each test uses addresses and accounts of its own, so the shared database's counters
never meet.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from revenge.modules.auth.throttle import (
    DEFAULT_ACCOUNT,
    DEFAULT_IP,
    DEFAULT_PAIR,
    Policy,
)
from tests.integration.test_auth_api import PASSWORD, Node, assert_problem, running_node

pytestmark = pytest.mark.integration


@pytest.fixture
async def node(migrated_url: str) -> AsyncIterator[Node]:
    # No wait runs out between two attempts, however slow the machine.
    async with running_node(migrated_url, {"REVENGE_AUTH__LOGIN_DELAY": "1h"}) as running:
        yield running


def xff(address: str) -> dict[str, str]:
    return {"x-forwarded-for": address}


def subnet() -> str:
    """A /64 of the documentation prefix no other test uses."""
    return f"2001:db8:{uuid.uuid4().int % 0xFFFF:x}:{uuid.uuid4().int % 0xFFFF:x}"


async def test_sql_delays_match_the_policy(node: Node) -> None:
    async with node.db.connection() as conn:
        for policy in (DEFAULT_IP, DEFAULT_PAIR, DEFAULT_ACCOUNT, Policy(free=0, base=0.5, cap=7)):
            cur = await conn.execute(
                "SELECT n, login_delay(n, %s, %s, %s) FROM generate_series(0, 40) n",
                (policy.free, policy.base, policy.cap),
            )
            for n, delay in await cur.fetchall():
                assert delay == pytest.approx(policy.delay(n)), (policy, n)


async def test_an_ipv6_64_is_one_address(node: Node) -> None:
    """Hopping through the 2^64 addresses of one /64 does not buy a new allowance."""
    net = subnet()
    for n in range(DEFAULT_IP.free + 1):  # one failure each on many accounts: the pair
        reply = await node.login(
            f"ghost-{uuid.uuid4().hex[:8]}", "guess-guess", **xff(f"{net}::{n + 1:x}")
        )
        assert_problem(reply, 401, "invalid_credentials")
    refused = await node.login("ghost-x", "guess-guess", **xff(f"{net}:ffff:ffff:ffff:fff0"))
    assert_problem(refused, 429, "too_many_attempts")
    # The next /64 is someone else.
    name = await node.user()
    assert (await node.login(name, **xff(f"{subnet()}::1"))).status_code == 200


async def test_an_account_under_attack_slows_new_networks_but_not_the_owners(node: Node) -> None:
    name = await node.user()
    home = f"{subnet()}::1"
    assert (await node.login(name, **xff(home))).status_code == 200  # the owner's network
    botnet = subnet().rsplit(":", 1)[0]  # a /48: each bot in a /64 of its own
    for n in range(DEFAULT_ACCOUNT.free + 1):
        reply = await node.login(name, "guess-guess", **xff(f"{botnet}:{n:x}::1"))
        assert_problem(reply, 401, "invalid_credentials")
    # Every new network now waits (bots and strangers alike)...
    stranger = await node.login(name, **xff("198.51.100.250"))
    body = assert_problem(stranger, 429, "too_many_attempts")
    # Bounded: the account-wide wait never exceeds its cap (one base delay here).
    assert 1 <= int(stranger.headers["retry-after"]) <= node.auth.service.throttle.account.cap, body
    # ...but the owner at home logs in at once, with the right password.
    assert (await node.login(name, **xff(home))).status_code == 200
    assert (
        await node.login(name, **xff(home.replace("::1", "::2")))
    ).status_code == 200  # same /64


async def test_counters_forget_after_the_window(node: Node) -> None:
    name = await node.user()
    address = "198.51.100.201"
    for _ in range(DEFAULT_PAIR.free + 1):
        assert_problem(
            await node.login(name, "guess-guess", **xff(address)), 401, "invalid_credentials"
        )
    assert_problem(await node.login(name, **xff(address)), 429, "too_many_attempts")
    async with node.db.connection() as conn:  # fifteen minutes pass
        await conn.execute(
            "UPDATE login_throttle SET last_at = last_at - interval '901 seconds' "
            "WHERE key LIKE %s",
            (f"%{address}",),
        )
    assert (await node.login(name, PASSWORD, **xff(address))).status_code == 200


async def test_stale_counters_are_cleaned_up(node: Node) -> None:
    from revenge.modules.auth.repository import delete_stale_login_counters

    address = "198.51.100.202"
    assert_problem(
        await node.login("nobody-here", "guess", **xff(address)), 401, "invalid_credentials"
    )
    async with node.db.connection() as conn:
        await conn.execute(
            "UPDATE login_throttle SET expires_at = now() - interval '1 second' WHERE key LIKE %s",
            (f"%{address}",),
        )
        assert await delete_stale_login_counters(conn) >= 2
        cur = await conn.execute(
            "SELECT count(*) FROM login_throttle WHERE key LIKE %s", (f"%{address}",)
        )
        assert await cur.fetchone() == (0,)
