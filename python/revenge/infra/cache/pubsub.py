"""A resilient Redis subscriber: one connection, one task, re-subscribes after outages.

Callbacks are registered per channel and run on the subscriber task, so they
must be quick (drop a cache entry, set a flag). After Redis comes back every
``on_resubscribe`` hook runs, because messages published during the outage are
lost and caches that depend on them must not trust what they hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

log = logging.getLogger(__name__)

# How long a stop waits for the reader: it ends at once unless redis-py swallowed the cancel.
_READER_STOP_TIMEOUT = 1.0

MessageCallback = Callable[[bytes], Awaitable[None] | None]
ResubscribeHook = Callable[[], Awaitable[None] | None]


@dataclass(eq=False)
class Subscription:
    """A registered callback; :meth:`Subscriber.unsubscribe` takes it back."""

    channel: str
    callback: MessageCallback
    on_resubscribe: ResubscribeHook | None = None
    received: int = field(default=0)


class Channels:
    """This process's subscriptions by channel, and delivery to their callbacks."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Subscription]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def names(self) -> list[str]:
        return list(self._subs)

    def hooks(self) -> list[ResubscribeHook]:
        """Each distinct ``on_resubscribe`` hook once."""
        seen: dict[int, ResubscribeHook] = {}
        for subs in self._subs.values():
            for sub in subs:
                if sub.on_resubscribe is not None:
                    seen.setdefault(id(sub.on_resubscribe), sub.on_resubscribe)
        return list(seen.values())

    def add(self, sub: Subscription) -> bool:
        """Register ``sub``; true when it is the channel's first subscriber."""
        subs = self._subs.setdefault(sub.channel, [])
        subs.append(sub)
        return len(subs) == 1

    def remove(self, sub: Subscription) -> bool:
        """Unregister ``sub``; true when the channel has no subscriber left."""
        subs = self._subs.get(sub.channel, [])
        if sub in subs:
            subs.remove(sub)
        if subs:
            return False
        return self._subs.pop(sub.channel, None) is not None

    async def dispatch(self, channel: str, message: bytes) -> None:
        """Run the callbacks one after another (the subscriber task's way)."""
        for sub in list(self._subs.get(channel, ())):
            await _call(sub, message)

    def deliver(self, channel: str, message: bytes) -> int:
        """Schedule the callbacks without waiting (publishing in-process, Redis absent)."""
        subs = list(self._subs.get(channel, ()))
        for sub in subs:
            task = asyncio.get_running_loop().create_task(_call(sub, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(subs)


async def _call(sub: Subscription, message: bytes) -> None:
    sub.received += 1
    try:
        result = sub.callback(message)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("subscriber callback for %s failed", sub.channel)


class Subscriber:
    """Keeps a PUBLISH/SUBSCRIBE connection open while Redis is up.

    ``wait_up`` blocks while Redis is known to be down (the owner's recovery
    probe decides when it is back); ``report_down`` tells the owner the
    connection failed.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        channels: Channels,
        *,
        prefix: str,
        wait_up: Callable[[], Awaitable[object]],
        report_down: Callable[[BaseException], None],
        poll_interval: float = 1.0,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._wait_up = wait_up
        self._report_down = report_down
        self._poll = poll_interval
        self._channels = channels
        self._pubsub: PubSub | None = None
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._connected_once = False
        self._ready = asyncio.Event()
        self.resubscribes = 0
        self.received = 0

    @property
    def connected(self) -> bool:
        """Subscribed to every registered channel on a live connection."""
        return self._ready.is_set()

    async def wait_ready(self, within: float) -> bool:
        """Wait up to ``within`` seconds for the subscriptions to be live."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._ready.wait()
        return self._ready.is_set()

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name="redis-subscriber")

    async def subscribe(self, sub: Subscription, *, confirm_timeout: float = 2.0) -> None:
        """Register ``sub``; while connected, return once Redis confirmed the channel."""
        first = self._channels.add(sub)
        if first and self._ready.is_set() and self._pubsub is not None:
            with contextlib.suppress(Exception):
                # Failure here is the run loop's to notice and repair.
                await asyncio.wait_for(self._send_subscribe([sub.channel]), confirm_timeout)
        elif self._task is not None and not self._ready.is_set():
            # Connecting now: the channel goes out with the initial batch.
            await self.wait_ready(confirm_timeout)

    async def unsubscribe(self, sub: Subscription) -> None:
        if self._channels.remove(sub) and self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.unsubscribe(self._prefix + sub.channel)

    async def _send_subscribe(self, channels: list[str]) -> None:
        assert self._pubsub is not None
        loop = asyncio.get_running_loop()
        waits = []
        for channel in channels:
            fut = self._confirmed.setdefault(self._prefix + channel, loop.create_future())
            waits.append(fut)
        await self._pubsub.subscribe(*(self._prefix + c for c in channels))
        await asyncio.gather(*waits)

    async def _run(self) -> None:
        while True:
            await self._wait_up()
            pubsub = self._client.pubsub()
            try:
                await pubsub.connect()  # type: ignore[no-untyped-call]
                self._pubsub = pubsub
                reader = asyncio.create_task(self._read(pubsub))
                try:
                    if names := self._channels.names():
                        await asyncio.wait_for(self._send_subscribe(names), 5.0)
                    self._ready.set()
                    if self._connected_once:
                        self.resubscribes += 1
                        await self._after_resubscribe()
                    self._connected_once = True
                    # Shielded: redis-py's get_message can swallow a cancellation, and a
                    # cancelled _run must not wait on a reader that never ends.
                    await asyncio.shield(reader)
                finally:
                    reader.cancel()
                    await asyncio.wait({reader}, timeout=_READER_STOP_TIMEOUT)
                    if reader.done() and not reader.cancelled():
                        reader.exception()  # retrieved: the run loop reports the outage
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._report_down(exc)
            finally:
                self._ready.clear()
                self._pubsub = None
                for fut in self._confirmed.values():
                    if not fut.done():
                        fut.cancel()
                self._confirmed.clear()
                # Bounded like the reader: closing waits on the connection the reader may hold.
                closing = asyncio.ensure_future(pubsub.aclose())  # type: ignore[no-untyped-call]
                await asyncio.wait({closing}, timeout=_READER_STOP_TIMEOUT)
                if closing.done() and not closing.cancelled():
                    closing.exception()  # a failed close of a dead connection is expected

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            msg = await pubsub.get_message(timeout=self._poll)
            if msg is None:
                continue
            kind = msg["type"]
            channel = _text(msg["channel"])
            if kind == "subscribe":
                fut = self._confirmed.pop(channel, None)
                if fut is not None and not fut.done():
                    fut.set_result(None)
            elif kind == "message":
                self.received += 1
                await self._channels.dispatch(channel[len(self._prefix) :], bytes(msg["data"]))

    async def _after_resubscribe(self) -> None:
        for hook in self._channels.hooks():
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_resubscribe hook failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=2 * _READER_STOP_TIMEOUT)
            if not done:
                log.warning("redis subscriber did not stop within %.0f s", 2 * _READER_STOP_TIMEOUT)
            elif not self._task.cancelled():
                self._task.exception()  # retrieved; a stopping loop has nothing left to report
            self._task = None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
