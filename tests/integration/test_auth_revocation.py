"""Revocation reaches other workers: PostgreSQL NOTIFY, Redis pub/sub, and a lost listener."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import psycopg
import pytest

from revenge.config import CacheSettings
from revenge.infra.cache import Cache
from revenge.modules.auth.revocation import (
    CHANNEL,
    LISTENER_APPLICATION_NAME,
    encode_token,
    encode_user,
)
from revenge.modules.auth.tokens import token_hash
from revenge.wiring import migrate
from tests.conftest import PG_ADMIN_URL
from tests.integration._tcp_proxy import TcpProxy
from tests.integration.test_auth_api import Node, bearer, running_node

pytestmark = pytest.mark.integration

DEADLINE = 10.0  # generous: the test proves delivery, benches/ measure the delay


async def until(predicate_async, deadline: float = DEADLINE) -> float:  # type: ignore[no-untyped-def]
    """Poll until the predicate holds; the seconds it took (fails at the deadline)."""
    started = time.monotonic()
    while not await predicate_async():
        if time.monotonic() - started > deadline:
            pytest.fail(f"condition not met within {deadline}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def status(node: Node, token: str) -> int:
    return (await node.client.get("/api/v1/me", headers=bearer(token))).status_code


@pytest.fixture
async def migrated_fresh(fresh_pg_url: str) -> AsyncIterator[str]:
    await migrate(fresh_pg_url)
    yield fresh_pg_url


async def test_logout_on_one_worker_reaches_the_other(migrated_fresh: str) -> None:
    async with running_node(migrated_fresh) as a, running_node(migrated_fresh) as b:
        token = await a.token(await a.user())
        assert await status(a, token) == 200 and await status(b, token) == 200
        assert b.auth.authenticator.misses == 1
        assert len(b.auth.cache) == 1
        received = b.auth.listener.received
        assert (
            await a.client.post("/api/v1/auth/logout", headers=bearer(token))
        ).status_code == 204

        async def evicted() -> bool:
            return len(b.auth.cache) == 0

        await until(evicted)
        assert b.auth.listener.received > received
        assert await status(b, token) == 401 and await status(a, token) == 401


@asynccontextmanager
async def notifications(url: str) -> AsyncIterator[Callable[[], Awaitable[list[str]]]]:
    """``heard()``: every revocation NOTIFY sent on the database since the block began."""
    heard: list[str] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"LISTEN {CHANNEL}")
        conn.add_notify_handler(lambda n: heard.append(n.payload))

        async def read() -> list[str]:
            await conn.execute("SELECT 1")  # a round trip delivers what arrived meanwhile
            return heard

        yield read


async def test_deleting_one_session_by_id_notifies_every_worker(migrated_fresh: str) -> None:
    async with running_node(migrated_fresh) as a, running_node(migrated_fresh) as b:
        name = await a.user()
        mine, other = await a.token(name), await a.token(name)
        assert await status(b, other) == 200  # b holds it in its cache now
        sessions = (await a.client.get("/api/v1/auth/sessions", headers=bearer(mine))).json()
        other_id = next(s["id"] for s in sessions["sessions"] if not s["current"])
        async with notifications(migrated_fresh) as heard:
            reply = await a.client.delete(f"/api/v1/auth/sessions/{other_id}", headers=bearer(mine))
            assert reply.status_code == 204

            async def told() -> bool:
                return bool(await heard())

            await until(told)
            assert await heard() == [encode_token(token_hash(other))]

        async def rejected() -> bool:
            return await status(b, other) == 401

        await until(rejected)
        assert await status(b, mine) == 200


async def test_revoking_all_sessions_notifies_every_worker(migrated_fresh: str) -> None:
    async with running_node(migrated_fresh) as a, running_node(migrated_fresh) as b:
        token = await a.token(await a.user())
        me = await b.client.get("/api/v1/me", headers=bearer(token))
        assert me.status_code == 200  # b holds the session and the profile now
        async with notifications(migrated_fresh) as heard:
            reply = await a.client.delete("/api/v1/auth/sessions", headers=bearer(token))
            assert reply.status_code == 200

            async def told() -> bool:
                return bool(await heard())

            await until(told)
            assert await heard() == [encode_user(me.json()["id"])]

        async def rejected() -> bool:
            return await status(b, token) == 401

        await until(rejected)


async def test_revoking_an_api_key_notifies_every_worker(migrated_fresh: str) -> None:
    async with running_node(migrated_fresh) as a, running_node(migrated_fresh) as b:
        token = await a.token(await a.user())
        created = await a.client.post(
            "/api/v1/auth/api-keys", json={"name": "box"}, headers=bearer(token)
        )
        key, key_id = created.json()["key"], created.json()["id"]
        assert (await b.client.get("/api/v1/me", headers={"x-api-key": key})).status_code == 200
        async with notifications(migrated_fresh) as heard:
            reply = await a.client.delete(f"/api/v1/auth/api-keys/{key_id}", headers=bearer(token))
            assert reply.status_code == 204

            async def told() -> bool:
                return bool(await heard())

            await until(told)
            assert await heard() == [encode_token(token_hash(key))]

        async def rejected() -> bool:
            reply = await b.client.get("/api/v1/me", headers={"x-api-key": key})
            return reply.status_code == 401

        await until(rejected)


async def test_disable_reaches_the_other_worker(migrated_fresh: str) -> None:
    async with running_node(migrated_fresh) as a, running_node(migrated_fresh) as b:
        name = await a.user()
        token = await a.token(name)
        assert await status(b, token) == 200
        user_id = (await b.client.get("/api/v1/me", headers=bearer(token))).json()["id"]
        await a.auth.service.set_disabled(user_id, True)

        async def rejected() -> bool:
            return await status(b, token) == 401

        await until(rejected)


async def test_a_lost_listener_reconnects_and_forgets_everything(migrated_fresh: str) -> None:
    async with running_node(migrated_fresh) as node:
        token = await node.token(await node.user())
        assert await status(node, token) == 200 and len(node.auth.cache) == 1
        dbname = migrated_fresh.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = %s",
                (dbname, LISTENER_APPLICATION_NAME),
            ).fetchone()
        assert killed == (1,)

        async def reconnected() -> bool:
            return node.auth.listener.reconnects >= 1 and node.auth.listener.listening

        await until(reconnected)
        assert len(node.auth.cache) == 0  # messages may have been missed: nothing trusted
        assert await status(node, token) == 200  # refilled from the table

        # And it hears again after the reconnect.
        async with node.db.transaction() as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, "s:" + "0" * 64))

        async def heard() -> bool:
            return node.auth.listener.received >= 1

        await until(heard)


async def test_redis_pubsub_carries_revocations(migrated_fresh: str, redis_url: str) -> None:
    sender = Cache.from_settings(CacheSettings(url=redis_url))
    await sender.start()
    try:
        # The node's cache (the platform's) is on Redis; the listener subscribes through it.
        async with running_node(migrated_fresh, {"REVENGE_CACHE__URL": redis_url}) as node:
            token = await node.token(await node.user())
            user_id = (await node.client.get("/api/v1/me", headers=bearer(token))).json()["id"]
            assert len(node.auth.cache) == 1
            # Published on Redis only (no NOTIFY): the worker must still evict.
            assert await sender.publish(CHANNEL, encode_user(user_id)) >= 1

            async def evicted() -> bool:
                return len(node.auth.cache) == 0

            await until(evicted)
            assert node.auth.authenticator.directory.get(user_id) is None
    finally:
        await sender.close()


async def test_health_check_and_stats(migrated_fresh: str) -> None:
    async with running_node(migrated_fresh) as node:
        token = await node.token(await node.user())
        await status(node, token)
        report = await node.runtime.health.refresh()
        assert report.services["auth_revocations"].healthy
        stats = node.auth.cache.stats()
        assert stats["entries"] == 1 and stats["hits"] >= 1
        await node.auth.listener.stop()
        report = await node.runtime.health.refresh()
        assert not report.services["auth_revocations"].healthy


async def revoke_elsewhere(url: str, token: str) -> None:
    """What another worker's logout does: delete the row and NOTIFY, on its own connection."""
    digest = token_hash(token)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("DELETE FROM sessions WHERE token_hash = %s", (digest,))
        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, "s:" + digest))


@pytest.mark.parametrize("fault", ["terminated", "black-holed"])
async def test_a_worker_that_is_not_listening_does_not_answer_from_its_cache(
    migrated_fresh: str, fault: str
) -> None:
    """Cut the listener's connection (and keep it from coming back), revoke on another
    connection: the worker must refuse the token without waiting for the cache TTL (60 s)."""
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    try:
        async with running_node(migrated_fresh, listener_url=proxy.url_for(migrated_fresh)) as node:
            assert node.auth.listener.listening
            token = await node.token(await node.user())
            misses = node.auth.authenticator.misses
            assert await status(node, token) == 200
            assert node.auth.authenticator.misses == misses  # answered from the cache

            if fault == "terminated":
                proxy.hold_new()  # the listener cannot reconnect
                dbname = migrated_fresh.rsplit("/", 1)[1]
                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND application_name = %s",
                        (dbname, LISTENER_APPLICATION_NAME),
                    )
            else:
                proxy.blackhole()  # nothing moves, nothing closes: a silent death

            async def deaf() -> bool:
                return not node.auth.listener.listening

            noticed = await until(deaf, deadline=5.0)
            await revoke_elsewhere(migrated_fresh, token)

            async def refused() -> bool:
                return await status(node, token) == 401

            await until(refused, deadline=3.0)
            assert not node.auth.listener.listening  # refused by the table, not by a message
            print(f"\nlistener {fault}: noticed after {noticed * 1000:.0f} ms")
    finally:
        await proxy.close()
