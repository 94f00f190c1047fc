"""Argon2id password hashing off the event loop, with a hard cap on concurrent hashes.

Each argon2id hash holds ``argon2_memory_kib`` of memory while it runs, so a
login flood must not start unbounded hashes: at most ``max_concurrent_hashes``
run (in a dedicated thread pool; argon2-cffi releases the GIL) and as many again
may wait; beyond that the caller gets :class:`ServiceUnavailable` (503 with
Retry-After) instead of a queue that grows without bound.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from revenge.config import AuthSettings
from revenge.runtime.errors import ServiceUnavailable

log = logging.getLogger(__name__)

_T = TypeVar("_T")

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
"""Longer inputs are refused before hashing: argon2 cost grows with the input."""


class PasswordHasher:
    """``hash`` / ``verify`` with argon2id parameters from ``auth.argon2_*``."""

    def __init__(self, settings: AuthSettings, *, waiting: int | None = None) -> None:
        self._argon2 = _Argon2(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self.max_running = settings.max_concurrent_hashes
        self.max_in_flight = self.max_running + (self.max_running if waiting is None else waiting)
        self._executor = ThreadPoolExecutor(self.max_running, thread_name_prefix="argon2")
        self._in_flight = 0
        self._dummy: asyncio.Future[str] | None = None
        self.rejected = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def start(self) -> None:
        """Start preparing the dummy hash that unknown usernames are checked against.

        In the background: one argon2id hash is a good part of a start-up's time and
        nothing needs it before the first login of an unknown username, which waits.
        """
        if self._dummy is None:
            self._dummy = asyncio.ensure_future(self.hash(secrets.token_urlsafe(24)))
            self._dummy.add_done_callback(_retrieve)

    def close(self) -> None:
        if self._dummy is not None:
            self._dummy.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def hash(self, password: str) -> str:
        return await self._run(self._argon2.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """``True`` when ``password`` matches; a corrupt stored hash is a mismatch (and logged)."""
        return await self._run(self._verify_sync, password_hash, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a real check, so unknown usernames answer like wrong passwords."""
        dummy = self._dummy
        if dummy is None or (dummy.done() and (dummy.cancelled() or dummy.exception())):
            self._dummy = None  # never prepared, or the attempt failed: try again
            await self.start()
        assert self._dummy is not None
        await self.verify(await asyncio.shield(self._dummy), password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):
            log.error("a stored password hash cannot be verified (corrupt or unsupported)")
            return False

    async def _run(self, func: Callable[[str, str], _T] | Callable[[str], _T], *args: str) -> _T:
        if self._in_flight >= self.max_in_flight:
            self.rejected += 1
            raise ServiceUnavailable("auth", "too many password checks in progress", retry_after=1)
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, func, *args)  # type: ignore[arg-type]
        finally:
            self._in_flight -= 1


def _retrieve(future: asyncio.Future[str]) -> None:
    # A failed background hash is retried by the next verify_dummy; reading the
    # error here keeps asyncio from logging "exception was never retrieved".
    if not future.cancelled():
        future.exception()
