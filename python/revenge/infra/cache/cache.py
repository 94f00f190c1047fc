"""The shared cache: an in-process L1 in front of Redis (L2), plus the invalidation channel.

Redis is optional. Without a URL, or while Redis is down, the cache runs on the
L1 alone, :meth:`Cache.publish` reaches only this process's subscribers, and
:meth:`Cache.health` says ``degraded``; a background probe with back-off
switches back when Redis answers again. No cache call ever raises because
Redis is missing.

Writes and deletes broadcast an invalidation so other processes drop their L1
copy at once; the L1 TTL (a few seconds) bounds staleness when a message is
lost, and every L1 is cleared after an outage because messages were missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson
from redis.exceptions import ConnectionError as RedisConnectionError

from revenge.config import CacheSettings
from revenge.runtime.degrade import Degradable, DegradeObserver
from revenge.runtime.health import Category, Check
from revenge.runtime.pools import PoolStats

from .l1 import LocalCache
from .pubsub import Channels, MessageCallback, ResubscribeHook, Subscriber, Subscription
from .redis_l2 import RedisL2, is_outage

log = logging.getLogger(__name__)

R = TypeVar("R")

INVALIDATION_CHANNEL = "cache:invalidate"

Status = Literal["healthy", "disabled", "degraded", "unhealthy"]


@dataclass(frozen=True, slots=True)
class CacheHealth:
    """What the health checker reports for ``cache``."""

    status: Status
    configured: bool
    latency_ms: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class CacheStats:
    l1_hits: int
    l2_hits: int
    misses: int
    sets: int
    deletes: int
    l1_entries: int
    l1_bytes: int
    l1_evictions: int
    degraded: bool
    configured: bool
    degradations: int
    reconnects: int
    fallback_calls: int
    busy: int  # calls served in-process because the pool stayed exhausted
    published: int
    received: int
    resubscribes: int
    pool: PoolStats | None


class _LocalOnly:
    """The L2 stand-in while Redis is absent: stores nothing, publishes in-process."""

    def __init__(self, channels: Channels) -> None:
        self._channels = channels

    async def get(self, key: str) -> tuple[bytes, float] | None:
        return None

    async def set(self, key: str, value: bytes, ttl: float, notice: tuple[str, bytes]) -> None:
        return None

    async def delete(self, keys: tuple[str, ...], notice: tuple[str, bytes]) -> None:
        return None

    async def publish(self, channel: str, message: bytes) -> int:
        self._channels.deliver(channel, message)
        return 0

    async def ping(self) -> None:
        return None

    async def keep_warm(self) -> None:
        return None


class Cache:
    """L1 (bounded, TTL) in front of an optional Redis L2; pub/sub for invalidations.

    ``l1_ttl`` caps how long this process serves a value without asking Redis
    (the staleness bound between processes); values live in Redis for the TTL
    given to :meth:`set`. ``l1_clock`` is the L1's clock (tests step it by hand).
    """

    def __init__(
        self,
        url: str = "",
        *,
        pool_size: int = 10,
        min_idle: int = 2,
        prefix: str = "revenge:",
        l1_ttl: float = 5.0,
        l1_max_entries: int = 10_000,
        l1_max_bytes: int = 16 << 20,
        keepalive_interval: float = 30.0,
        backoff_initial: float = 0.25,
        backoff_max: float = 2.0,
        connect_timeout: float = 1.0,
        command_timeout: float = 1.0,
        pool_timeout: float = 0.5,
        observer: DegradeObserver | None = None,
        l1_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.l1 = LocalCache(max_entries=l1_max_entries, max_bytes=l1_max_bytes, clock=l1_clock)
        self.l1_ttl = l1_ttl
        self._instance = uuid.uuid4().hex.encode()
        self._keepalive_interval = keepalive_interval
        self._health_timeout = 2 * command_timeout
        self._keepalive: asyncio.Task[None] | None = None
        self._channels = Channels()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loading: dict[str, asyncio.Task[bytes]] = {}
        self._redis: RedisL2 | None = None
        self._subscriber: Subscriber | None = None
        if url:
            self._redis = RedisL2(
                url,
                prefix=prefix,
                pool_size=pool_size,
                min_idle=min_idle,
                connect_timeout=connect_timeout,
                command_timeout=command_timeout,
                pool_timeout=pool_timeout,
            )
        self._up = asyncio.Event()
        self._observer = observer
        self._reconnects = 0
        self._fallback_calls = 0
        local = _LocalOnly(self._channels)
        self._link: Degradable[RedisL2 | _LocalOnly] = Degradable(
            "cache",
            self._redis or local,
            local,
            is_outage,
            probe=_ping,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            observer=self,
        )
        if self._redis is not None:
            self._up.set()
            self._subscriber = Subscriber(
                self._redis.pubsub_client,
                self._channels,
                prefix=prefix,
                wait_up=self._up.wait,
                report_down=self._report_down,
            )
        self._hits_l1 = self._hits_l2 = self._misses = self._sets = self._deletes = 0
        self._published = 0
        self._busy = 0
        self._degradations = 0
        self._started = False

    @classmethod
    def from_settings(cls, settings: CacheSettings, **options: Any) -> Cache:
        return cls(
            settings.url.get_secret_value(),
            pool_size=settings.pool_size,
            min_idle=settings.min_idle,
            **options,
        )

    @classmethod
    async def open(cls, settings: CacheSettings, **options: Any) -> Cache:
        """Build from settings and :meth:`start` (a factory for ``Runtime.register``)."""
        cache = cls.from_settings(settings, **options)
        await cache.start()
        return cache

    @property
    def configured(self) -> bool:
        return self._redis is not None

    @property
    def degraded(self) -> bool:
        """True while answering from the L1 alone (Redis absent or down)."""
        return self._redis is None or self._link.degraded

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Warm ``min_idle`` connections and start the subscriber; never fails on Redis."""
        if self._started:
            return
        self._started = True
        if self._redis is None or self._subscriber is None:
            return
        # A failed warm-up degrades the link and starts its recovery probe.
        await self._link.call(lambda l2: l2.keep_warm())
        await self._subscriber.subscribe(
            Subscription(INVALIDATION_CHANNEL, self._on_invalidation, self._clear_l1)
        )
        self._subscriber.start()
        if not self._link.degraded:
            # So a subscribe() right after start() is live before it returns.
            await self._subscriber.wait_ready(self._health_timeout)
        self._keepalive = asyncio.get_running_loop().create_task(
            self._keep_warm_loop(), name="redis-keepalive"
        )

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
        if self._subscriber is not None:
            await self._subscriber.close()
        await self._link.close()
        if self._redis is not None:
            await self._redis.close()
        self.l1.clear()

    # -- values -----------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        value = self.l1.get(key)
        if value is not None:
            self._hits_l1 += 1
            return value
        found = await self._call(lambda l2: l2.get(key))
        if found is None:
            self._misses += 1
            return None
        self._hits_l2 += 1
        value, remaining = found
        self.l1.put(key, value, min(self.l1_ttl, remaining))
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds; other processes drop their L1 copy."""
        if not (ttl > 0 and math.isfinite(ttl)):
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        self._sets += 1
        self.l1.put(key, value, min(self.l1_ttl, ttl))
        notice = (INVALIDATION_CHANNEL, self._notice(key))
        await self._call(lambda l2: l2.set(key, value, ttl, notice))

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        self._deletes += len(keys)
        for key in keys:
            self.l1.pop(key)
        notice = (INVALIDATION_CHANNEL, self._notice(*keys))
        await self._call(lambda l2: l2.delete(keys, notice))

    async def get_or_load(
        self, key: str, load: Callable[[], Awaitable[bytes]], ttl: float
    ) -> bytes:
        """Cache-aside with single flight: on a miss, one ``load()`` per key in this
        process, shared by every concurrent caller, and its result stored for ``ttl``."""
        value = await self.get(key)
        if value is not None:
            return value
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_task(self._load(key, load, ttl))
            self._loading[key] = pending
            pending.add_done_callback(lambda task: self._forget_load(key, task))
        # Shielded: a caller that gives up must not cancel the load the others wait for.
        return await asyncio.shield(pending)

    def _forget_load(self, key: str, task: asyncio.Task[bytes]) -> None:
        self._loading.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter gave up

    async def _load(self, key: str, load: Callable[[], Awaitable[bytes]], ttl: float) -> bytes:
        value = await load()
        await self.set(key, value, ttl)
        return value

    async def get_json(self, key: str) -> Any:
        """The decoded value, or ``None`` when absent (so do not cache a bare ``null``)."""
        raw = await self.get(key)
        return None if raw is None else orjson.loads(raw)

    async def set_json(self, key: str, value: Any, ttl: float) -> None:
        await self.set(key, orjson.dumps(value), ttl)

    def clear_l1(self) -> None:
        """Drop every in-process entry (memory pressure, or after missed invalidations)."""
        self.l1.clear()

    def on_pressure(self, old: str, new: str) -> None:
        """A ``PressureMonitor.on_level_change`` listener: at ``moderate`` the L1
        shrinks to half its budget, at ``critical`` it is emptied (Redis still
        holds the values; the L1 refills on use)."""
        if new == "critical":
            self.l1.clear()
        elif new == "moderate":
            self.l1.shrink(0.5)

    def pool_stats(self) -> PoolStats:
        """For ``PressureMonitor.register_pool("redis", cache.pool_stats)``."""
        if self._redis is None:
            return PoolStats(active=0, idle=0, max_size=0)
        return self._redis.pool_stats()

    # -- pub/sub ----------------------------------------------------------------------

    async def publish(self, channel: str, message: bytes | str) -> int:
        """Send ``message`` to every subscriber of ``channel`` in every process.

        Returns how many Redis subscribers received it (0 while degraded, when
        only this process's subscribers are reached).
        """
        data = message.encode() if isinstance(message, str) else message
        self._published += 1
        return await self._call(lambda l2: l2.publish(channel, data))

    async def subscribe(
        self,
        channel: str,
        callback: MessageCallback,
        *,
        on_resubscribe: ResubscribeHook | None = None,
    ) -> Subscription:
        """Call ``callback(message_bytes)`` for each message on ``channel``.

        ``on_resubscribe`` runs after the subscription is restored following a
        Redis outage (messages sent meanwhile were lost). Callbacks run on the
        subscriber task: keep them quick.
        """
        sub = Subscription(channel, callback, on_resubscribe)
        if self._subscriber is None:
            self._channels.add(sub)
        else:
            await self._subscriber.subscribe(sub)
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        if self._subscriber is None:
            self._channels.remove(sub)
        else:
            await self._subscriber.unsubscribe(sub)

    # -- health and stats -------------------------------------------------------------

    async def health(self) -> CacheHealth:
        """PING Redis when it is in use; ``disabled`` when not configured, ``degraded`` when down.

        Not configured is the default install (the in-process L1 serves alone), not a
        fault: only a configured Redis that fails makes the cache degraded. Never raises.
        """
        if self._redis is None:
            return CacheHealth("disabled", False, None, "redis is not configured (cache.url)")
        if self.degraded:
            return CacheHealth("degraded", True, None, _describe(self._link.last_error))
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._health_timeout):
                await self._link.call(_ping)
        except TimeoutError as exc:
            return CacheHealth("degraded", True, None, f"PING timed out: {exc!r}")
        if self._link.degraded:
            return CacheHealth("degraded", True, None, _describe(self._link.last_error))
        return CacheHealth("healthy", True, (time.perf_counter() - started) * 1000, None)

    async def health_probe(self) -> None:
        """For :class:`~revenge.runtime.health.Check`: raises when a configured Redis fails."""
        report = await self.health()
        if report.status not in ("healthy", "disabled"):
            raise ConnectionError(f"cache degraded to in-process only: {report.error}")

    def health_check(self, *, timeout: float = 5.0) -> Check:
        """The ``cache`` check (warm tier) for the runtime's HealthChecker."""
        return Check("cache", Category.WARM, self.health_probe, timeout=timeout)

    def stats(self) -> CacheStats:
        sub = self._subscriber
        return CacheStats(
            l1_hits=self._hits_l1,
            l2_hits=self._hits_l2,
            misses=self._misses,
            sets=self._sets,
            deletes=self._deletes,
            l1_entries=len(self.l1),
            l1_bytes=self.l1.nbytes,
            l1_evictions=self.l1.evictions,
            degraded=self.degraded,
            configured=self.configured,
            degradations=self._degradations,
            reconnects=self._reconnects,
            fallback_calls=self._fallback_calls,
            busy=self._busy,
            published=self._published,
            received=sub.received if sub else 0,
            resubscribes=sub.resubscribes if sub else 0,
            pool=self._redis.pool_stats() if self._redis else None,
        )

    # -- internals --------------------------------------------------------------------

    async def _call(self, op: Callable[[RedisL2 | _LocalOnly], Awaitable[R]]) -> R:
        """Through the link; when every pooled connection stays busy past
        ``pool_timeout``, this one call is served like a degraded one (Redis is
        slow, not gone, so the link stays up)."""
        try:
            return await self._link.call(op)
        except RedisConnectionError:
            self._busy += 1
            return await op(self._link.fallback)

    def _notice(self, *keys: str) -> bytes:
        return orjson.dumps([self._instance.decode(), keys])

    def _on_invalidation(self, message: bytes) -> None:
        sender, keys = orjson.loads(message)
        if sender.encode() == self._instance:
            return
        for key in keys:
            self.l1.pop(key)

    def _clear_l1(self) -> None:
        self.l1.clear()

    # DegradeObserver: the Degradable reports its switches here.
    def degraded_changed(self, service: str, degraded: bool) -> None:
        if degraded:
            self._degradations += 1
            self._up.clear()
        else:
            # Invalidations sent while we were cut off are lost; start the L1 afresh.
            self.l1.clear()
            self._reconnects += 1
            self._up.set()
        if self._observer is not None:
            self._observer.degraded_changed(service, degraded)

    def fallback_used(self, service: str) -> None:
        self._fallback_calls += 1
        if self._observer is not None:
            self._observer.fallback_used(service)

    def _report_down(self, exc: BaseException) -> None:
        """The subscriber lost Redis: degrade through the link so its probe takes over."""
        if not self._link.degraded:
            loop = asyncio.get_running_loop()
            task = loop.create_task(self._link.call(_fail_primary(exc)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _keep_warm_loop(self) -> None:
        assert self._redis is not None
        while True:
            await asyncio.sleep(self._keepalive_interval)
            if self._link.degraded:
                continue
            try:
                await self._link.call(lambda l2: l2.keep_warm())
            except Exception:
                log.exception("redis keep-warm failed")


async def _ping(l2: RedisL2 | _LocalOnly) -> None:
    await l2.ping()


def _fail_primary(exc: BaseException) -> Callable[[RedisL2 | _LocalOnly], Awaitable[None]]:
    """An operation that fails on Redis with ``exc`` and succeeds on the fallback."""

    async def op(l2: RedisL2 | _LocalOnly) -> None:
        if isinstance(l2, RedisL2):
            raise exc

    return op


def _describe(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
