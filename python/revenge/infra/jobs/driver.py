"""A pgqueuer ``Driver`` over a psycopg 3 connection pool plus one dedicated LISTEN connection.

pgqueuer's own psycopg driver runs every query *and* the NOTIFY reader on a single
connection; psycopg's ``notifies()`` holds the connection lock while it waits, so each
query queues behind up to a second of listening. Measured here: ~0.8k no-op jobs/s with
it against several thousand with this driver (benches/bench_jobs_compare.py). Queries
here go through a pool, so the dequeue, the completion log flush and the heartbeats
run side by side, and notifications arrive on a connection nobody else waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, Self

import psycopg
from psycopg import AsyncRawCursor, sql
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

NotifyCallback = Callable[[str | bytes | bytearray], None]

#: ``application_name`` of the LISTEN connection (visible in ``pg_stat_activity``).
LISTEN_APPLICATION_NAME = "revenge-jobs-listen"
#: How long the LISTEN reader waits before re-checking for shutdown.
_LISTEN_SLICE = 1.0
#: Back-off bounds when the LISTEN connection is lost (the worker still polls meanwhile).
_RECONNECT_MIN, _RECONNECT_MAX = 0.2, 5.0


class ConnectionSource(Protocol):
    """Where queries get a connection: a psycopg ``AsyncConnectionPool`` or the app's
    ``revenge.infra.db.pool.Database`` (whose outages raise ``ServiceUnavailable``)."""

    def connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]: ...


def conninfo_of(source: object) -> str:
    """The connection string behind ``source`` (``pool.conninfo`` or ``database.url``)."""
    for attribute in ("conninfo", "url"):
        value = getattr(source, attribute, None)
        if isinstance(value, str) and value:
            return value
    raise TypeError(f"cannot tell the connection string of {source!r}; pass conninfo=")


class _Tasks:
    """The background tasks of one driver (pgqueuer's ``TaskManagerPort``)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[object]] = set()

    def add(self, task: asyncio.Task[Any]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def gather_tasks(self, return_exceptions: bool = True) -> list[object]:
        return list(await asyncio.gather(*self.tasks, return_exceptions=return_exceptions))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.gather_tasks()


class PsycopgPoolDriver:
    """pgqueuer ``Driver``: queries through a pool; LISTEN on its own connection.

    The pool is borrowed, never closed here. Its connections may or may not be in
    autocommit mode: a checkout's context commits what the query left open.
    """

    def __init__(self, source: ConnectionSource, *, listen_conninfo: str | None = None) -> None:
        self._source = source
        self._listen_conninfo = listen_conninfo or conninfo_of(source)
        self._shutdown = asyncio.Event()
        self._tm = _Tasks()
        self._listeners: dict[str, list[NotifyCallback]] = {}
        self._listen_conn: psycopg.AsyncConnection[Any] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._entered = 0

    @property
    def shutdown(self) -> asyncio.Event:
        return self._shutdown

    @property
    def tm(self) -> _Tasks:
        return self._tm

    async def fetch(self, query: str, *args: object) -> list[dict[str, object]]:
        async with self._source.connection() as conn:
            cursor = AsyncRawCursor(conn, row_factory=dict_row)
            await cursor.execute(query, args or None)
            return await cursor.fetchall()

    async def execute(self, query: str, *args: object) -> str:
        async with self._source.connection() as conn:
            cursor = AsyncRawCursor(conn)
            await cursor.execute(query, args or None)
            return cursor.statusmessage or ""

    async def notify(self, channel: str, payload: str) -> None:
        await self.execute("SELECT pg_notify($1, $2)", channel, payload)

    async def add_listener(self, channel: str, callback: NotifyCallback) -> None:
        first = channel not in self._listeners
        self._listeners.setdefault(channel, []).append(callback)
        if self._watcher is None:
            await self._connect_listener()
            self._watcher = asyncio.create_task(self._watch(), name="revenge-jobs-listen")
            self._tm.add(self._watcher)
        elif first and self._listen_conn is not None:
            await self._listen(self._listen_conn, channel)

    async def remove_listener(self, channel: str, callback: NotifyCallback) -> None:
        callbacks = self._listeners.get(channel, [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks:
            self._listeners.pop(channel, None)

    @staticmethod
    async def _listen(conn: psycopg.AsyncConnection[Any], channel: str) -> None:
        # Quoted, so a mixed-case channel matches the trigger's pg_notify literal.
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    async def _connect_listener(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._listen_conninfo, autocommit=True, application_name=LISTEN_APPLICATION_NAME
        )
        for channel in list(self._listeners):
            await self._listen(conn, channel)
        self._listen_conn = conn

    async def _watch(self) -> None:
        delay = _RECONNECT_MIN
        while not self._shutdown.is_set():
            try:
                if self._listen_conn is None or self._listen_conn.closed:
                    await self._connect_listener()
                    delay = _RECONNECT_MIN
                assert self._listen_conn is not None
                async for note in self._listen_conn.notifies(timeout=_LISTEN_SLICE):
                    self._deliver(note.channel, note.payload)
            except psycopg.OperationalError as exc:
                # Lost notifications only slow pickup: the worker also polls.
                log.warning("job queue LISTEN connection lost (%s); reconnecting", exc)
                await self._close_listener()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._shutdown.wait(), timeout=delay)
                delay = min(delay * 2, _RECONNECT_MAX)
        await self._close_listener()

    def _deliver(self, channel: str, payload: str) -> None:
        for callback in list(self._listeners.get(channel, ())):
            try:
                callback(payload)
            except Exception:
                log.exception("job queue NOTIFY callback failed on channel %s", channel)

    async def _close_listener(self) -> None:
        conn, self._listen_conn = self._listen_conn, None
        if conn is not None and not conn.closed:
            await conn.close()

    async def __aenter__(self) -> Self:
        if self._entered == 0:
            self._shutdown.clear()
        self._entered += 1
        return self

    async def __aexit__(self, *_: object) -> None:
        # pgqueuer enters one driver from several managers; only the last exit stops it.
        self._entered -= 1
        if self._entered > 0:
            return
        self._shutdown.set()
        await self._tm.gather_tasks()
        self._watcher = None
        self._listeners.clear()
