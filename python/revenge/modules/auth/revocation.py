"""Revocations reach every worker and every host: PostgreSQL NOTIFY, plus Redis where configured.

A message names a token hash or a user id, never a token::

    s:<64 hex>   drop the cached session or API key with this SHA-256
    u:<user id>  drop every cached credential of this user and its profile

The writer sends ``pg_notify`` inside the transaction that deletes the row, so
the message leaves exactly when the revocation is durable. Each worker keeps one
dedicated connection in ``LISTEN``. While that connection is down the worker is
deaf: ``on_state(False)`` tells the authenticator to treat its cache hits as
misses (every request asks the table), and on reconnecting the cache is emptied
(messages may have been missed) before ``on_state(True)`` trusts it again. A
connection that dies silently is noticed within about ``probe_interval +
probe_timeout``: a ``SELECT 1`` with a deadline runs whenever a second passes
without a message, and TCP keepalives and ``tcp_user_timeout`` close a dead
TCP connection at the kernel level as well.

>>> encode_token("ab" * 32)[:6], encode_user(7)
('s:abab', 'u:7')
>>> parse("u:7"), parse("s:" + "0" * 64)[0], parse("x:1"), parse("u:seven")
(('u', 7), 's', None, None)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

import psycopg

from revenge.modules.auth import repository

log = logging.getLogger(__name__)

CHANNEL = "revenge_auth_revoke"
"""PostgreSQL NOTIFY channel and Redis pub/sub channel (one name for both)."""

LISTENER_APPLICATION_NAME = "revenge-auth-listener"
_HASH = re.compile(r"^[0-9a-f]{64}$")
_KEEPALIVE: dict[str, Any] = {
    # libpq settings (TCP only; a Unix socket needs none): a peer that vanished is
    # found by the kernel in a few seconds, not the default two hours.
    "keepalives": 1,
    "keepalives_idle": 1,
    "keepalives_interval": 1,
    "keepalives_count": 2,
    "tcp_user_timeout": 3000,
}

Message = tuple[Literal["s"], str] | tuple[Literal["u"], int]


def encode_token(token_hash: str) -> str:
    return f"s:{token_hash}"


def encode_user(user_id: int) -> str:
    return f"u:{user_id}"


def parse(payload: str) -> Message | None:
    """The message in ``payload``, or ``None`` for anything malformed (ignored, logged)."""
    kind, _, value = payload.partition(":")
    if kind == "s" and _HASH.match(value):
        return ("s", value)
    if kind == "u" and value.isdigit():
        return ("u", int(value))
    return None


class PubSub(Protocol):
    """What the Redis-backed cache (``revenge.infra.cache.Cache``) offers for broadcasts."""

    async def publish(self, channel: str, message: bytes | str) -> int: ...

    async def subscribe(
        self,
        channel: str,
        callback: Callable[[bytes], Awaitable[None] | None],
        *,
        on_resubscribe: Callable[[], Awaitable[None] | None] | None = None,
    ) -> Any: ...

    async def unsubscribe(self, sub: Any) -> None: ...


class RevocationListener:
    """One worker's ears: a dedicated ``LISTEN`` connection, reconnecting with back-off.

    ``url()`` is read at each connection attempt (an embedded PostgreSQL has one
    only once started).

    ``apply(message)`` runs for each valid message; ``on_gap()`` runs each time
    ``LISTEN`` is (re-)established (messages may have been missed before it);
    ``on_state(listening)`` runs when the worker starts or stops hearing.
    """

    def __init__(
        self,
        url: Callable[[], str],
        apply: Callable[[Message], None],
        on_gap: Callable[[], None],
        *,
        on_state: Callable[[bool], None] = lambda listening: None,
        pubsub: PubSub | None = None,
        probe_interval: float = 1.0,
        probe_timeout: float = 1.0,
        backoff_max: float = 5.0,
    ) -> None:
        self.url = url
        self._apply = apply
        self._on_gap = on_gap
        self._on_state = on_state
        self._pubsub = pubsub
        self._probe_interval = probe_interval
        self._probe_timeout = probe_timeout
        self._backoff_max = backoff_max
        self._task: asyncio.Task[None] | None = None
        self._subscription: Any = None
        self._listening = asyncio.Event()
        self.received = 0
        self.reconnects = 0

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    async def start(self, wait: float = 5.0) -> None:
        """Start listening; wait up to ``wait`` seconds for the first ``LISTEN`` to be in place.

        A PostgreSQL that is not reachable yet is not fatal here: the loop keeps
        retrying, and the cache TTL bounds what a worker may miss meanwhile.
        """
        if self._pubsub is not None:
            try:
                self._subscription = await self._pubsub.subscribe(
                    CHANNEL, self._on_redis, on_resubscribe=self._on_gap
                )
            except Exception as exc:
                log.warning("revocations: Redis subscription failed (%s)", type(exc).__name__)
        self._task = asyncio.create_task(self._run(), name="auth-revocation-listener")
        try:
            await asyncio.wait_for(self._listening.wait(), wait)
        except TimeoutError:
            log.warning("revocations: not listening on PostgreSQL yet; retrying in background")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pubsub is not None and self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.unsubscribe(self._subscription)
            self._subscription = None

    def handle(self, payload: str) -> None:
        message = parse(payload)
        if message is None:
            log.warning("revocations: ignoring a malformed message")
            return
        self.received += 1
        self._apply(message)

    def _on_redis(self, data: bytes) -> None:
        self.handle(data.decode("ascii", "replace"))

    async def _run(self) -> None:
        delay = 0.1
        connected_before = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url(),
                    autocommit=True,
                    connect_timeout=5,
                    application_name=LISTENER_APPLICATION_NAME,
                    **_KEEPALIVE,
                )
            except psycopg.Error as exc:
                log.warning("revocations: cannot connect (%s); retry in %.1fs", _why(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            try:
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if connected_before:
                        self.reconnects += 1
                    connected_before = True
                    # Anything sent before LISTEN was in place is lost: start from an
                    # empty cache, then trust it again.
                    self._on_gap()
                    self._set_listening(True)
                    delay = 0.1
                    await self._listen(conn)
            except (psycopg.Error, _DeadConnection) as exc:
                self._set_listening(False)
                log.warning("revocations: connection lost (%s); reconnecting", _why(exc))
            finally:
                self._set_listening(False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_max)

    def _set_listening(self, listening: bool) -> None:
        if listening == self._listening.is_set():
            return
        if listening:
            self._listening.set()
        else:
            self._listening.clear()
        self._on_state(listening)

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            async for notify in conn.notifies(timeout=self._probe_interval):
                self.handle(notify.payload)
            await self._probe(conn)

    async def _probe(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """A quiet second: prove the connection is alive, or declare the worker deaf at once."""
        probe = asyncio.ensure_future(conn.execute("SELECT 1"))
        done, _ = await asyncio.wait({probe}, timeout=self._probe_timeout)
        if done:
            probe.result()  # a closed connection raises here
            return
        # Deaf from this moment; psycopg's cancellation of the stuck query may take seconds.
        self._set_listening(False)
        probe.cancel()
        try:
            await probe
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we are being stopped, not just the probe
        except Exception:  # noqa: S110 - the connection is being given up anyway
            pass
        raise _DeadConnection(f"no answer to a probe within {self._probe_timeout:g}s")


class _DeadConnection(Exception):
    """The listener's connection stopped answering."""


class RevocationPublisher:
    """Sends revocations: NOTIFY through the writer's transaction, and Redis when configured."""

    def __init__(self, pubsub: PubSub | None = None) -> None:
        self._pubsub = pubsub

    async def notify(self, conn: psycopg.AsyncConnection[Any], payload: str) -> None:
        await repository.notify(conn, CHANNEL, payload)

    async def broadcast(self, payload: str) -> None:
        """After commit: the Redis copy (best effort; PostgreSQL already carries the message)."""
        if self._pubsub is None:
            return
        try:
            await self._pubsub.publish(CHANNEL, payload)
        except Exception as exc:
            log.warning("revocations: Redis publish failed (%s)", type(exc).__name__)


def _why(exc: BaseException) -> str:
    # psycopg messages may quote the connection string; the class name is enough here.
    return type(exc).__name__
