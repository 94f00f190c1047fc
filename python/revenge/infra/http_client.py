"""What every outgoing HTTP client of a module shares: one TLS context, capped reads, and
the lifetime an answer may be kept.

* :func:`tls_context` / :func:`load_tls_context`: one verified TLS context per process.
  Loading CA certificates takes 40-250 ms of CPU here (``benches/bench_metadata.py`` and
  ``benches/bench_oidc.py`` found it as most of a cold service's first use), and an httpx
  client made with its default ``verify=True`` loads them again for every client, on the
  event loop. Here they are loaded once and shared: the system's store (where an operator
  installs the CA of a provider on the home network) plus certifi's bundle (for machines
  whose store is empty).
* :func:`read_body`: an answer's body only when its content type is one expected and it
  is no larger than a limit, read as it streams (a huge or endless body is cut off, never
  held whole).
* :func:`cache_lifetime`: seconds an answer may be reused, from its ``Cache-Control``.

>>> cache_lifetime("public, max-age=28800", default=60.0, cap=86400.0)
28800.0
>>> cache_lifetime("no-store", default=60.0, cap=86400.0), cache_lifetime(None, default=60.0, cap=86400.0)
(0.0, 60.0)
>>> cache_lifetime("s-maxage=999999999", default=1.0, cap=86400.0)
86400.0
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading

import httpx

__all__ = ["BodyRefused", "cache_lifetime", "load_tls_context", "read_body", "tls_context"]

_context: ssl.SSLContext | None = None
_loading = threading.Lock()


def load_tls_context() -> ssl.SSLContext:
    """The shared context, loaded on the first call (blocking: at start, or on a thread)."""
    global _context
    with _loading:
        if _context is None:
            import certifi

            made = ssl.create_default_context()
            made.load_verify_locations(cafile=certifi.where())
            _context = made
        return _context


async def tls_context() -> ssl.SSLContext:
    """:func:`load_tls_context` for the event loop: loaded on a worker thread the first time."""
    return _context if _context is not None else await asyncio.to_thread(load_tls_context)


class BodyRefused(Exception):
    """The body has another content type, or is larger than the limit (the text says which)."""


async def read_body(reply: httpx.Response, *, types: frozenset[str] | None, limit: int) -> bytes:
    """The body of a streamed ``reply`` (``client.stream(...)``), or :class:`BodyRefused`.

    ``types=None`` takes any content type (documents whose type servers spell many ways).
    """
    if types is not None:
        kind = reply.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in types:
            raise BodyRefused(f"content type {kind[:60] or 'missing'}")
    declared = reply.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyRefused(f"larger than {limit} bytes ({declared} declared)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in reply.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise BodyRefused(f"larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d{1,10})", re.IGNORECASE)
_NOT_KEPT = re.compile(r"(?:^|,)\s*(?:no-store|no-cache|private)\b", re.IGNORECASE)


def cache_lifetime(header: str | None, *, default: float, cap: float) -> float:
    """Seconds a shared cache may keep an answer: none for ``no-store``, ``no-cache`` and
    ``private``; ``max-age`` (or ``s-maxage``) up to ``cap``; else ``default``."""
    if not header:
        return default
    if _NOT_KEPT.search(header):
        return 0.0
    found = _MAX_AGE.search(header)
    return min(float(found.group(1)), cap) if found else default
