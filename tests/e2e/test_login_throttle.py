"""The login throttle across two real Granian workers: one allowance, reserved up front.

``granian --workers 2 revenge.app`` against a fresh database, the client address
given by ``X-Forwarded-For`` from a trusted loopback proxy. Wrong passwords from one
address, each on a fresh connection (so the kernel hands them to either worker),
get exactly the pair allowance of real checks (401) and then 429, however the
workers share them; 30 concurrent tries from a fresh address get no more real
checks than that either.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from revenge.modules.auth.throttle import DEFAULT_PAIR
from revenge.wiring import migrate
from tests.cheap_settings import FAST_ARGON2
from tests.e2e.conftest import free_port, granian_argv, run_server

pytestmark = pytest.mark.e2e

PASSWORD = "e2e admin password"
ALLOWANCE = DEFAULT_PAIR.free + 1  # failures before the first wait, for one address on one account


def login(base_url: str, address: str, password: str) -> int:
    """One attempt on its own connection."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        reply = client.post(
            "/api/v1/auth/login",
            json={"username": "admin", "password": password},
            headers={"x-forwarded-for": address},
        )
    return reply.status_code


def worker_pids(server_log: str) -> set[str]:
    return {line.rsplit(" ", 1)[1] for line in server_log.splitlines() if "Spawning worker" in line}


def test_two_workers_share_one_allowance_and_reserve_concurrent_tries(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    asyncio.run(migrate(fresh_pg_url))
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": fresh_pg_url,
        "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        **FAST_ARGON2,
        "REVENGE_SERVER__TRUSTED_PROXIES": json.dumps(["127.0.0.1"]),
        "REVENGE_AUTH__LOGIN_DELAY": "1h",  # no wait runs out during the test, however slow
    }
    with run_server(granian_argv(port, "--workers", "2"), port, tmp_path, env) as server:
        assert len(worker_pids(server.output())) == 2

        # Sequential guesses: one allowance between both workers, not one each.
        statuses = [
            login(server.base_url, "198.51.100.20", "guess-guess") for _ in range(3 * ALLOWANCE)
        ]
        assert statuses.count(401) == ALLOWANCE, statuses
        assert statuses[:ALLOWANCE] == [401] * ALLOWANCE
        assert set(statuses[ALLOWANCE:]) == {429}, statuses

        # Concurrent guesses from a fresh address: reserved before any password check.
        async def burst() -> list[int]:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:

                async def one() -> int:
                    reply = await client.post(
                        "/api/v1/auth/login",
                        json={"username": "admin", "password": "guess-guess"},
                        headers={"x-forwarded-for": "198.51.100.21", "connection": "close"},
                    )
                    return reply.status_code

                return await asyncio.gather(*(one() for _ in range(30)))

        concurrent = asyncio.run(burst())
        print(
            f"\n2 workers: {statuses.count(401)} real checks of {len(statuses)} sequential guesses, "
            f"{concurrent.count(401)} of 30 concurrent ones (allowance {ALLOWANCE})"
        )
        assert concurrent.count(401) <= ALLOWANCE, sorted(concurrent)
        assert set(concurrent) <= {401, 429}, sorted(concurrent)

        # The owner, from an address of their own, is not held back by any of it.
        assert login(server.base_url, "203.0.113.5", PASSWORD) == 200
