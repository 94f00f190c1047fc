"""The Redis side of the cache: a bounded pool kept warm, the L2 commands and PUBLISH.

redis-py has no "minimum idle connections" option, so :meth:`RedisL2.keep_warm`
does it thinly: it checks out ``min_idle`` connections together, PINGs them and
puts them back (opening the missing ones), and closes idle connections above
``min_idle`` when nothing used the pool since the last round.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.connection import Connection as RedisConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from revenge.runtime.pools import PoolStats

# A stored value is framed as: version byte, expiry (Unix ms, big-endian u64), payload.
# Carrying the expiry in the value lets one GET tell the L1 how long it may keep
# the copy (a GET + PTTL pipeline costs about twice as much in redis-py); the
# bound is off only by the clock difference between hosts.
_FRAME = struct.Struct(">BQ")
_FRAME_VERSION = 1


def frame(value: bytes, expires_at: float) -> bytes:
    """
    >>> unframe(frame(b"v", 1000.0), now=990.0)
    (b'v', 10.0)
    >>> unframe(b"not framed", now=0.0) is None
    True
    """
    return _FRAME.pack(_FRAME_VERSION, round(expires_at * 1000)) + value


def unframe(raw: bytes, now: float) -> tuple[bytes, float] | None:
    """``(payload, seconds left)``; ``None`` for bytes this cache did not write."""
    if len(raw) < _FRAME.size or raw[0] != _FRAME_VERSION:
        return None
    _, expires_ms = _FRAME.unpack_from(raw)
    return raw[_FRAME.size :], expires_ms / 1000.0 - now


def is_outage(exc: BaseException) -> bool:
    """Errors that mean "Redis cannot be reached", as opposed to a bad command."""
    if isinstance(exc, RedisConnectionError) and isinstance(exc.__cause__, asyncio.TimeoutError):
        # The pool's wait for a free connection ran out: Redis is busy, not gone.
        return False
    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError)


class RedisL2:
    """L2 operations on a shared Redis, with keys under ``prefix``."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "revenge:",
        pool_size: int = 10,
        min_idle: int = 2,
        pool_timeout: float = 1.0,
        connect_timeout: float = 1.0,
        command_timeout: float = 1.0,
        retries: int = 1,
    ) -> None:
        self.prefix = prefix
        self.min_idle = min(min_idle, pool_size)
        # Retry absorbs a single dead pooled socket (e.g. after a Redis restart)
        # inside one command; longer outages are the Degradable's business.
        options: dict[str, Any] = {
            "timeout": pool_timeout,
            "socket_connect_timeout": connect_timeout,
            "socket_keepalive": True,
            "retry": Retry(ExponentialBackoff(cap=0.1, base=0.01), retries),
            "retry_on_error": [RedisConnectionError, RedisTimeoutError],
            "health_check_interval": 30,
        }
        self.pool = BlockingConnectionPool.from_url(
            url, max_connections=pool_size, socket_timeout=command_timeout, **options
        )
        self.client = aioredis.Redis(connection_pool=self.pool)
        # Pub/sub holds its connection for good; it gets its own so the
        # command pool keeps all ``pool_size`` connections (and min_idle) for commands.
        self.pubsub_pool = BlockingConnectionPool.from_url(url, max_connections=1, **options)
        self.pubsub_client = aioredis.Redis(connection_pool=self.pubsub_pool)
        self._used_since_trim = False

    def key(self, key: str) -> str:
        return self.prefix + key

    async def get(self, key: str) -> tuple[bytes, float] | None:
        """The value and its remaining lifetime in seconds, in one ``GET``."""
        self._used_since_trim = True
        raw = await self.client.get(self.key(key))
        return unframe(raw, time.time()) if isinstance(raw, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float, notice: tuple[str, bytes]) -> None:
        """SET with expiry and PUBLISH the invalidation ``notice`` in one round trip."""
        self._used_since_trim = True
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(self.key(key), frame(value, time.time() + ttl), px=max(1, round(ttl * 1000)))
            pipe.publish(self.key(notice[0]), notice[1])
            await pipe.execute()

    async def delete(self, keys: tuple[str, ...], notice: tuple[str, bytes]) -> None:
        self._used_since_trim = True
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.delete(*(self.key(k) for k in keys))
            pipe.publish(self.key(notice[0]), notice[1])
            await pipe.execute()

    async def publish(self, channel: str, message: bytes) -> int:
        self._used_since_trim = True
        receivers: int = await self.client.publish(self.key(channel), message)
        return receivers

    async def ping(self) -> None:
        await self.client.ping()

    async def keep_warm(self) -> None:
        """Open and PING ``min_idle`` connections; close idle ones above that if unused."""
        if self.min_idle:
            taken = await asyncio.gather(
                *(self.pool.get_connection() for _ in range(self.min_idle)),  # type: ignore[no-untyped-call]
                return_exceptions=True,
            )
            conns = [c for c in taken if isinstance(c, RedisConnection)]
            try:
                await asyncio.gather(*(self._ping(c) for c in conns))
            finally:
                for conn in conns:
                    await self.pool.release(conn)
            errors = [e for e in taken if isinstance(e, BaseException)]
            if errors:
                raise errors[0]
        if not self._used_since_trim:
            await self._trim_idle()
        self._used_since_trim = False

    async def _ping(self, conn: RedisConnection) -> None:
        await conn.send_command("PING")
        await conn.read_response()

    async def _trim_idle(self) -> None:
        # The pool hands out the most recently released connection first, so
        # the ones at the bottom of its idle list are the coldest.
        idle = self.pool._available_connections
        connected = [c for c in idle if c.is_connected]
        for conn in connected[: max(0, len(connected) - self.min_idle)]:
            with contextlib.suppress(Exception):
                await conn.disconnect()

    def pool_stats(self) -> PoolStats:
        idle = self.pool._available_connections
        in_use = self.pool._in_use_connections
        return PoolStats(
            active=len(in_use),
            idle=sum(c.is_connected for c in idle),
            max_size=self.pool.max_connections,
            size=sum(c.is_connected for c in idle) + len(in_use),
        )

    async def close(self) -> None:
        await self.client.aclose()
        await self.pool.disconnect()
        await self.pubsub_client.aclose()
        await self.pubsub_pool.disconnect()
