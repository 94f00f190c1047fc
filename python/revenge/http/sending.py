"""Sending what is not a whole body: files and streams, on each server face.

Every message is framed by its ``content-length`` when it has one, and the faces
never send more than that; when the source runs short (a file truncated while it
is sent, a stream that ends early) they stop, so the server cuts the connection
instead of ending the message: the client sees an incomplete body, not a short
one that claims to be whole, and the status already sent is never turned into a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from revenge.http.quoting import quoted
from revenge.http.response import FileResponse, Response, StreamResponse

log = logging.getLogger("revenge.http")

ASGIScope = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CHUNK_BYTES = 256 * 1024
"""One read of a file sent in chunks: large enough that a thread hop per read is noise."""


def declared_length(headers: list[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name == "content-length":
            return int(value)
    return None


async def send_rsgi(response: Response, protocol: Any, method: str) -> None:
    """A file or stream response through Granian's RSGI protocol."""
    if method == "HEAD":
        if isinstance(response, StreamResponse) and response.stream is not None:
            await _close(response.stream)
        protocol.response_empty(response.status, response.headers)
    elif isinstance(response, FileResponse) and response.length == 0:
        protocol.response_bytes(response.status, response.headers, b"")  # Granian: no 0-0 range
    elif isinstance(response, FileResponse):
        # Granian opens and reads the file off the loop; its ``end`` is exclusive and it
        # never reads past it, so a file that grew since its stat sends the stat'ed part.
        protocol.response_file_range(
            response.status,
            response.headers,
            response.path,
            response.start,
            response.start + response.length,
        )
    elif isinstance(response, StreamResponse) and response.stream is not None:
        transport = protocol.response_stream(response.status, response.headers)
        await _pump(response.stream, declared_length(response.headers), transport.send_bytes)
    else:
        protocol.response_bytes(response.status, response.headers, response.body)


async def send_asgi(
    response: Response, scope: ASGIScope, receive: ASGIReceive, send: ASGISend, method: str
) -> None:
    """Any response through ASGI; a whole file by ``pathsend`` when the server offers it."""
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers],
        }
    )
    if method == "HEAD" or not isinstance(response, FileResponse | StreamResponse):
        body = b"" if method == "HEAD" else response.body
        if isinstance(response, StreamResponse) and response.stream is not None:
            await _close(response.stream)
        await send({"type": "http.response.body", "body": body})
        return

    async def chunk(data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})

    if isinstance(response, FileResponse):
        extensions = scope.get("extensions") or {}
        if response.start == 0 and "http.response.pathsend" in extensions:
            await send({"type": "http.response.pathsend", "path": response.path})
            return
        pump = _pump(_read_file(response), response.length, chunk)
    else:
        assert response.stream is not None
        pump = _pump(response.stream, declared_length(response.headers), chunk)
    if await _until_disconnect(pump, receive):
        await send({"type": "http.response.body", "body": b""})


async def _until_disconnect(pump: Awaitable[bool], receive: ASGIReceive) -> bool:
    """Run ``pump`` until it ends or the client goes (some servers' ``send`` never says so)."""
    sending = asyncio.ensure_future(pump)
    watching = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((sending, watching), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sending, watching):
            task.cancel()
    if not sending.done() or sending.cancelled():
        with contextlib.suppress(asyncio.CancelledError):
            await sending  # its finally closes the source
        log.debug("response body stopped: the client went away")
        return False
    return sending.result()


async def _disconnected(receive: ASGIReceive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _pump(
    source: AsyncIterator[bytes], length: int | None, write: Callable[[bytes], Awaitable[None]]
) -> bool:
    """Write ``source`` up to ``length`` bytes; False when it ran short or the peer left."""
    sent = 0
    try:
        async for data in source:
            if length is not None and sent + len(data) > length:
                data = data[: length - sent]
            if data:
                await write(data)
                sent += len(data)
            if length is not None and sent >= length:
                break
    except (OSError, RuntimeError) as exc:  # the peer went away (Granian: RSGIProtocolClosed)
        log.debug("response body stopped after %d bytes: %s", sent, exc)
        return False
    finally:
        await _close(source)
    if length is not None and sent < length:
        log.warning("response body ended after %d of %d bytes; connection cut", sent, length)
        return False
    return True


async def _read_file(response: FileResponse) -> AsyncIterator[bytes]:
    """The response's part of its file, read in threads; ends early if the file shrank."""
    fd = await asyncio.to_thread(os.open, response.path, os.O_RDONLY)
    try:
        offset, end = response.start, response.start + response.length
        while offset < end:
            data = await asyncio.to_thread(os.pread, fd, min(CHUNK_BYTES, end - offset), offset)
            if not data:
                log.warning("%s shrank while it was sent", quoted(response.path))
                return
            offset += len(data)
            yield data
    finally:
        os.close(fd)


async def _close(source: AsyncIterator[bytes]) -> None:
    close = getattr(source, "aclose", None)
    if close is not None:
        await close()
