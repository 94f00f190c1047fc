"""A real outage without touching the shared server: the pool talks to PostgreSQL
through a TCP proxy this test owns, and the proxy goes away (listener closed, every
connection reset) and comes back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from revenge.infra.db import Database, PoolConfig
from revenge.runtime.errors import ServiceUnavailable

pytestmark = pytest.mark.integration


class Proxy:
    """A TCP forwarder to PostgreSQL that can fail like a server does."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def test_outage_answers_503_then_recovers_by_itself(fresh_pg_url: str) -> None:
    proxy = Proxy(("127.0.0.1", 5432))
    await proxy.start()
    dbname = fresh_pg_url.rsplit("/", 1)[1]
    url = f"postgresql://postgres@127.0.0.1:{proxy.port}/{dbname}?sslmode=disable"
    config = PoolConfig(
        min_conns=2, max_conns=5, max_wait=0.5, health_check=0.5, scale_check_interval=0.2
    )
    async with Database(url, config) as db:
        assert await db.fetch_one("SELECT 1") == (1,)

        await proxy.stop()
        # Longer than one reconnection chain (reconnect_timeout 5 s): recovery must
        # not depend on psycopg's back-off alone.
        down_until = time.monotonic() + 6.5
        failures = 0
        while time.monotonic() < down_until:
            with pytest.raises(ServiceUnavailable) as caught:
                await db.fetch_one("SELECT 1")
            failures += 1
            assert caught.value.retry_after >= 1
            await asyncio.sleep(0.5)
        assert failures >= 2  # each failed within max_wait instead of hanging
        assert caught.value.reason == "cannot reach PostgreSQL"
        assert caught.value.retry_after == 5  # the server is away, not merely busy

        await proxy.start()
        back = time.monotonic()
        recovered_after = None
        while time.monotonic() - back < 15:
            try:
                if await db.fetch_one("SELECT 1") == (1,):
                    recovered_after = time.monotonic() - back
                    break
            except ServiceUnavailable:
                await asyncio.sleep(0.05)
        assert recovered_after is not None, db.stats()
        print(f"recovered {recovered_after:.3f}s after PostgreSQL was reachable again")

        async def refilled() -> bool:
            return db.stats().idle >= config.min_conns

        deadline = time.monotonic() + 15
        while not await refilled() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await refilled(), db.stats()
    await proxy.stop()
