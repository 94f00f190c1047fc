"""What the authenticator's unit tests share: resolvers over dicts and bodiless requests.

The resolvers stand in for the sessions and api_keys tables so a test sees every
lookup; the integration tests run the same authenticator against PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from revenge.config import load_settings
from revenge.http import Request
from revenge.modules.auth import build_session_cache
from revenge.modules.auth.authenticator import Authenticator
from revenge.modules.auth.directory import UserDirectory
from revenge.modules.auth.repository import Credential


class FakeStore:
    """Resolvers over dicts, counting lookups; ``gate`` holds a session lookup open."""

    def __init__(self) -> None:
        self.sessions: dict[str, Credential] = {}
        self.keys: dict[str, Credential] = {}
        self.lookups = 0
        self.gate: asyncio.Event | None = None

    async def session(self, digest: str) -> Credential | None:
        self.lookups += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.sessions.get(digest)

    async def key(self, digest: str) -> Credential | None:
        self.lookups += 1
        return self.keys.get(digest)


def credential(user_id: int = 7, name: str = "alice") -> Credential:
    return Credential(user_id, name, "user", datetime(2026, 1, 1, tzinfo=UTC), time.time() + 3600)


def make_authenticator(store: FakeStore, *, listening: bool = True) -> Authenticator:
    """An authenticator as in a worker whose revocation listener is (or is not) connected."""
    authenticator = Authenticator(
        build_session_cache(load_settings(env={})),
        UserDirectory(),
        resolve_session=store.session,
        resolve_api_key=store.key,
        cookie_name="revenge_session",
        api_key_header="X-Api-Key",
    )
    authenticator.trust_cache(listening)
    return authenticator


async def _no_body() -> AsyncIterator[bytes]:
    return
    yield b""  # makes this an async generator that yields nothing


def make_request(headers: dict[str, str]) -> Request:
    return Request("GET", "/api/v1/me", "", headers, "127.0.0.1", "http", _no_body(), 1024)
