"""A loopback TCP proxy that can cut or black-hole its connections (for connection-loss tests).

``blackhole()`` is a silent death: the sockets stay open and nothing moves either way
(a dead NAT entry, a frozen peer). ``hold_new()`` accepts new connections and never
forwards them (a server that no longer answers); ``cut()`` closes what is open.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.forwarding = True
        self.accepting = True
        self.port = 0

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url_for(self, url: str) -> str:
        """``url`` (a postgresql:// URL on the target) rewritten to go through this proxy."""
        host, port = self._target
        return url.replace(f"{host}:{port}", f"127.0.0.1:{self.port}", 1)

    def blackhole(self) -> None:
        self.forwarding = False
        self.accepting = False

    def hold_new(self) -> None:
        self.accepting = False

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.forwarding = True
        self.accepting = True

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if not self.accepting:
            return  # held open, never answered
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                while not self.forwarding:  # black-holed: hold the bytes, forever
                    await asyncio.sleep(3600)
                dst.write(data)
                await dst.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            if self.forwarding:
                dst.transport.abort()
