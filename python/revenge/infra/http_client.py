"""What every outgoing HTTP client of a module shares: one TLS context, and capped reads.

* :func:`tls_context`: one verified TLS context per process. Loading a CA bundle takes
  50-250 ms of CPU here (``benches/bench_metadata.py`` found it as most of a cold
  service's first use), and an httpx client made with its default ``verify=True`` loads it
  again for every client, on the event loop. Here it is loaded once, on a worker thread,
  and shared: ``httpx.AsyncClient(verify=await tls_context())`` (certifi's bundle, as
  httpx uses by default).
* :func:`read_body`: an answer's body only when its content type is one expected and it
  is no larger than a limit, read as it streams (a huge or endless body is cut off, never
  held whole).
"""

from __future__ import annotations

import asyncio
import ssl

import httpx

__all__ = ["BodyRefused", "read_body", "tls_context"]

_context: ssl.SSLContext | None = None


def _make() -> ssl.SSLContext:
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


async def tls_context() -> ssl.SSLContext:
    """The shared context, made on first use (two first callers at once may both make
    one; the first kept wins, the other is dropped)."""
    global _context
    if _context is None:
        made = await asyncio.to_thread(_make)
        if _context is None:
            _context = made
    return _context


class BodyRefused(Exception):
    """The body has another content type, or is larger than the limit (the text says which)."""


async def read_body(reply: httpx.Response, *, types: frozenset[str], limit: int) -> bytes:
    """The body of a streamed ``reply`` (``client.stream(...)``), or :class:`BodyRefused`."""
    kind = reply.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in types:
        raise BodyRefused(f"content type {kind[:60] or 'missing'}")
    declared = reply.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyRefused(f"larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in reply.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise BodyRefused(f"larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
