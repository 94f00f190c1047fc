"""The warm PostgreSQL pool: psycopg_pool with a bounded wait, background health and scaling.

Every way the database can fail a request ends in
:class:`~revenge.runtime.errors.ServiceUnavailable` (the HTTP layer's 503 with
``Retry-After``), never in a hang: checkouts wait at most ``max_wait``, and a
connection lost mid-query is replaced by the pool while the caller gets the 503.
"""

from __future__ import annotations

import contextlib
import logging
import math
import select
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import psycopg
from psycopg import AsyncConnection
from psycopg.abc import Params, QueryNoTemplate
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from revenge.infra.db.errors import DatabaseUnreachable, redact_url
from revenge.infra.db.scaling import PoolSample, ScalePolicy
from revenge.runtime.errors import ServiceUnavailable
from revenge.runtime.periodic import Periodic
from revenge.runtime.pools import PoolStats

if TYPE_CHECKING:
    from revenge.config import DatabaseSettings

log = logging.getLogger(__name__)

Connection = AsyncConnection[TupleRow]
SERVICE = "database"


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Pool sizing and timing; :meth:`from_settings` maps the ``database`` config section.

    >>> PoolConfig().min_conns, PoolConfig().max_conns
    (2, 50)
    """

    min_conns: int = 2
    max_conns: int = 50
    idle_timeout: float = 300.0
    max_wait: float = 2.0
    health_check: float = 30.0
    scale_up_threshold: float = 0.8
    scale_down_threshold: float = 0.2
    scale_check_interval: float = 5.0
    connect_timeout: float = 10.0
    # How long one chain of reconnection attempts (back-off 1 s, 2 s, 4 s...) may run
    # before psycopg gives up; the scaler then starts a fresh chain, so the gap between
    # attempts after an outage never grows past a few seconds.
    reconnect_timeout: float = 5.0

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> PoolConfig:
        return cls(
            min_conns=settings.min_conns,
            max_conns=settings.max_conns,
            idle_timeout=settings.idle_timeout,
            max_wait=settings.max_wait,
            health_check=settings.health_check,
            scale_up_threshold=settings.scale_up_threshold,
            scale_down_threshold=settings.scale_down_threshold,
            scale_check_interval=settings.scale_check_interval,
        )


@dataclass(frozen=True, slots=True)
class DatabaseHealth:
    healthy: bool
    latency_ms: float
    error: str | None
    stats: PoolStats


def _is_stale(conn: Connection) -> bool:
    """Checkout check without a round-trip: an idle connection must have nothing to read.

    A backend that was terminated (restart, ``pg_terminate_backend``, a proxy's
    idle timeout) leaves an error message or EOF on the socket. One zero-timeout
    poll (about a microsecond) notices that before the caller's query does, so
    the caller gets another connection instead of a 503.
    """
    if conn.closed or conn.broken:
        return True
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN)
    return bool(poller.poll(0))


class Database:
    """The warm PostgreSQL pool. Usage::

    async with Database(url, PoolConfig.from_settings(settings.database)) as db:
        async with db.connection() as conn:  # autocommit; ServiceUnavailable on outage
            await conn.execute("UPDATE ...", params)
        async with db.transaction() as conn:  # one transaction
            ...
        row = await db.fetch_one("SELECT %s::int", (41,))
    """

    def __init__(
        self,
        url: str,
        config: PoolConfig | None = None,
        *,
        name: str = "revenge",
        on_sample: Callable[[PoolStats], None] | None = None,
    ) -> None:
        self.url = url
        self.config = config or PoolConfig()
        self.name = name
        self._on_sample = on_sample
        self._policy = ScalePolicy(
            base_min=self.config.min_conns,
            max_size=self.config.max_conns,
            up_threshold=self.config.scale_up_threshold,
            down_threshold=self.config.scale_down_threshold,
        )
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._background: list[Periodic] = []
        self._scale_up_events = 0
        self._scale_down_events = 0
        self._utilisation = 0.0
        self._last_counters: dict[str, int] = {}
        self._last_sample_at = 0.0
        self._checked_out = 0
        self._busy_s = 0.0  # total checkout time, for the scaler's mean concurrency
        self._last_busy_s = 0.0

    @classmethod
    def from_settings(cls, url: str, settings: DatabaseSettings, **kwargs: Any) -> Database:
        return cls(url, PoolConfig.from_settings(settings), **kwargs)

    # -- life cycle -------------------------------------------------------------

    async def start(self) -> None:
        """Open ``min_conns`` connections or raise :class:`DatabaseUnreachable` saying why."""
        if self._pool is not None:
            return
        await self._probe()
        cfg = self.config
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self.url,
            min_size=cfg.min_conns,
            max_size=cfg.max_conns,
            max_idle=cfg.idle_timeout,
            timeout=cfg.max_wait,
            reconnect_timeout=cfg.reconnect_timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, math.ceil(cfg.connect_timeout))},
            name=self.name,
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=cfg.connect_timeout)
        except PoolTimeout as exc:
            raise DatabaseUnreachable(
                self.url,
                f"pool could not open {cfg.min_conns} connections within {cfg.connect_timeout:g}s",
            ) from exc
        self._pool = pool
        self._last_counters = pool.get_stats()
        self._last_sample_at = time.monotonic()
        self._background = [
            Periodic(
                f"database pool {self.name!r}: check", cfg.health_check, self._background_check
            ),
            Periodic(f"database pool {self.name!r}: scaler", cfg.scale_check_interval, self.sample),
        ]
        for job in self._background:
            job.start()

    async def _probe(self) -> None:
        """One direct connection first: the pool only reports a timeout, this reports why."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.url, connect_timeout=max(1, math.ceil(self.config.connect_timeout))
            )
        except psycopg.Error as exc:
            reason = str(exc).strip().replace(self.url, redact_url(self.url)) or type(exc).__name__
            raise DatabaseUnreachable(self.url, reason) from None
        await conn.close()

    async def close(self) -> None:
        for job in self._background:
            await job.stop()
        self._background = []
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- use ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def connection(self, wait: float | None = None) -> AsyncIterator[Connection]:
        """A pooled connection (autocommit) for at most ``max_wait`` of waiting.

        Raises :class:`ServiceUnavailable` when none is free in time, the pool is
        closed, or the connection fails (``psycopg.OperationalError``); other
        errors (bad SQL, constraint violations) pass through unchanged.
        """
        pool = self._pool
        if pool is None:
            raise ServiceUnavailable(SERVICE, "not started", retry_after=self._retry_after())
        wait = self.config.max_wait if wait is None else wait
        try:
            conn = await self._checkout(pool, time.monotonic() + wait)
            started = time.monotonic()
            self._checked_out += 1
            try:
                async with conn:  # commits or rolls back an open transaction
                    yield conn
            finally:
                self._checked_out -= 1
                self._busy_s += time.monotonic() - started
                await pool.putconn(conn)
        except PoolTimeout as exc:
            reason = (
                f"no connection free within {wait:g}s (pool exhausted)"
                if self._has_connections()
                else "cannot reach PostgreSQL"
            )
            raise ServiceUnavailable(SERVICE, reason, retry_after=self._retry_after()) from exc
        except PoolClosed as exc:
            raise ServiceUnavailable(
                SERVICE, "pool closed", retry_after=self._retry_after()
            ) from exc
        except psycopg.OperationalError as exc:
            raise ServiceUnavailable(
                SERVICE, _operational_reason(exc), retry_after=self._retry_after()
            ) from exc

    async def _checkout(self, pool: AsyncConnectionPool[Connection], deadline: float) -> Connection:
        """A live connection before ``deadline``; stale ones are closed so the pool replaces them.

        psycopg's own ``check`` hook backs off a second after two failed checks;
        after a mass termination every idle connection fails at once, so this
        loop retries at once and lets the pool's fresh connections serve.
        """
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PoolTimeout("no live connection before the deadline")
            conn = await pool.getconn(timeout=remaining)
            if not _is_stale(conn):
                return conn
            await conn.close()
            await pool.putconn(conn)  # a closed connection is dropped and replaced

    @contextlib.asynccontextmanager
    async def transaction(self, wait: float | None = None) -> AsyncIterator[Connection]:
        """A pooled connection inside one transaction: committed on success, rolled back on error."""
        async with self.connection(wait) as conn, conn.transaction():
            yield conn

    async def execute(self, query: QueryNoTemplate, params: Params | None = None) -> int:
        """Run one statement; the number of rows it touched."""
        async with self.connection() as conn:
            cur = await conn.execute(query, params)
            return cur.rowcount

    async def fetch_one(
        self, query: QueryNoTemplate, params: Params | None = None
    ) -> TupleRow | None:
        async with self.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    async def fetch_all(
        self, query: QueryNoTemplate, params: Params | None = None
    ) -> list[TupleRow]:
        async with self.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def execute_many(self, query: QueryNoTemplate, params_seq: Sequence[Params]) -> None:
        async with self.connection() as conn, conn.cursor() as cur:
            await cur.executemany(query, params_seq)

    # -- health and metrics ----------------------------------------------------------

    async def check(self, wait: float | None = None) -> None:
        """One real round-trip; raises :class:`ServiceUnavailable` when it fails.

        Meant for the runtime's health checker (every ``health.interval``), not per request.
        """
        async with self.connection(wait) as conn:
            await conn.execute("SELECT 1")

    async def health(self, wait: float | None = None) -> DatabaseHealth:
        """Like :meth:`check` but never raises: a record for ``/health/ready``."""
        started = time.perf_counter()
        error: str | None = None
        try:
            await self.check(wait)
        except ServiceUnavailable as exc:
            error = exc.reason
        latency = (time.perf_counter() - started) * 1000.0
        return DatabaseHealth(error is None, round(latency, 3), error, self.stats())

    def stats(self) -> PoolStats:
        pool = self._pool
        raw = pool.get_stats() if pool is not None else {}
        size, available = raw.get("pool_size", 0), raw.get("pool_available", 0)
        return PoolStats(
            active=max(0, size - available),
            idle=available,
            max_size=raw.get("pool_max", self.config.max_conns),
            size=size,
            min_size=raw.get("pool_min", 0),
            waiting=raw.get("requests_waiting", 0),
            requests=raw.get("requests_num", 0),
            waits=raw.get("requests_queued", 0),
            wait_ms=raw.get("requests_wait_ms", 0),
            timeouts=raw.get("requests_errors", 0),
            connections_opened=raw.get("connections_num", 0),
            connections_failed=raw.get("connections_errors", 0),
            connections_lost=raw.get("connections_lost", 0) + raw.get("returns_bad", 0),
            scale_up_events=self._scale_up_events,
            scale_down_events=self._scale_down_events,
            utilisation=round(self._utilisation, 4),
        )

    @property
    def started(self) -> bool:
        return self._pool is not None

    # -- background ---------------------------------------------------------------------

    async def sample(self) -> None:
        """One scaler step: read the pool's stats and move its floor if demand says so."""
        pool = self._pool
        if pool is None:
            return
        now = time.monotonic()
        raw = pool.get_stats()
        last, self._last_counters = self._last_counters, raw
        last_busy, self._last_busy_s = self._last_busy_s, self._busy_s
        interval_ms = max(1, int((now - self._last_sample_at) * 1000))
        self._last_sample_at = now
        sample = PoolSample(
            size=raw.get("pool_size", 0),
            available=raw.get("pool_available", 0),
            waiting=raw.get("requests_waiting", 0),
            queued=raw.get("requests_queued", 0) - last.get("requests_queued", 0),
            busy_ms=int((self._busy_s - last_busy) * 1000),
            interval_ms=interval_ms,
        )
        self._utilisation = sample.utilisation
        current_min = raw.get("pool_min", self.config.min_conns)
        target = self._policy.target_min(sample, current_min)
        if target != current_min:
            if target > current_min:
                self._scale_up_events += 1
            else:
                self._scale_down_events += 1
            log.info(
                "database pool %r: min_size %d -> %d (utilisation %.2f, waiting %d)",
                self.name,
                current_min,
                target,
                sample.utilisation,
                sample.waiting,
            )
            await pool.resize(target, self.config.max_conns)
        if sample.size < self.config.min_conns:
            # psycopg gave up reconnecting after an outage; a check starts a fresh attempt.
            await pool.check()
        if self._on_sample is not None:
            self._on_sample(self.stats())

    async def _background_check(self) -> None:
        """``pool.check()``: test the idle connections, replace the broken ones."""
        if self._pool is not None:
            await self._pool.check()

    # -- helpers ------------------------------------------------------------------------

    def _has_connections(self) -> bool:
        """Some connection is checked out, so one will come back soon (else the server is away)."""
        return self._checked_out > 0

    def _retry_after(self) -> int:
        # An exhausted pool frees up within a request's time; a missing server takes longer.
        return 1 if self._has_connections() else max(1, math.ceil(self.config.reconnect_timeout))


def _operational_reason(exc: psycopg.OperationalError) -> str:
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == "57014":
        return "query cancelled (statement timeout)"
    if sqlstate in {"40001", "40P01"}:
        return "transaction conflict, retry"
    if sqlstate in {"55P03"}:
        return "lock not available"
    return "connection to PostgreSQL lost"
