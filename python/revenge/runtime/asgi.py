"""Minimal ASGI glue for embedding the runtime in someone else's app (docs/embedding.md).

Only the lifespan protocol and two response helpers: routing stays with the
host application.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from revenge.runtime.runtime import Runtime

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def handle_lifespan(runtime: Runtime, receive: Receive, send: Send) -> None:
    """Serve an ASGI ``lifespan`` scope: ``runtime.start()`` on startup, ``stop()`` on shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await runtime.start()
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await runtime.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def send_bytes(send: Send, status: int, body: bytes, content_type: str) -> None:
    """Send a complete HTTP response."""
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, body: object) -> None:
    """Send ``body`` as JSON (the health answers are ``(status, body)`` pairs)."""
    await send_bytes(send, status, orjson.dumps(body), "application/json")
