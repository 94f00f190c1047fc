"""The TMDb v3 HTTP client: rate-limited, retried, bounded in time and size, cached.

Every call (:meth:`TmdbClient.get`) is bounded by ``metadata.tmdb_timeout`` as a whole,
retries included; each attempt waits for its slot of the rate limit; a 429 is retried
after its ``Retry-After`` (when that fits in the time left), a 5xx or a transport error
after a short back-off. Answers are read as they stream and refused past
:data:`MAX_BODY` bytes, refused when not ``application/json`` or not a JSON object.
200 and 404 answers are cached in PostgreSQL (:class:`..cache.HttpCache`) for their
``Cache-Control`` lifetime. The API key goes in the query (``api_key``, TMDb v3) or, for
a v4 read-access token, in the ``Authorization`` header; it is never part of a cache key,
a log line or an error text (errors name the path only).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import ssl
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import psycopg

from revenge.infra.http_client import BodyRefused, read_body
from revenge.modules.metadata.cache import HttpCache, lifetime
from revenge.modules.metadata.provider import ProviderAnswerError, ProviderUnavailable
from revenge.modules.metadata.ratelimit import RateLimiter

__all__ = ["MAX_BODY", "TmdbClient"]

log = logging.getLogger("revenge.metadata.tmdb")

MAX_BODY = 4 << 20
"""Largest answer read (a movie with credits is tens of kB; more is not TMDb talking)."""
_ATTEMPTS = 4
_BACKOFF = 0.25  # first wait after a 5xx or transport error; doubles
_MAX_CONNECTIONS = 8
_JSON = frozenset({"application/json"})
_KEY_IN_URL = re.compile(r"(api_key=)[^&\s\"']+")


class _RedactKey(logging.Filter):
    """httpx writes each request's URL at INFO (Revenge's log setup keeps it at WARNING,
    but an embedding application may not): the ``api_key`` in it is blanked here."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "api_key=" in text:
            record.msg, record.args = _KEY_IN_URL.sub(r"\1REDACTED", text), None
        return True


logging.getLogger("httpx").addFilter(_RedactKey())


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date).

    >>> retry_after("2"), retry_after(None), retry_after("soon")
    (2.0, None, None)
    >>> retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=4.0)
    6.0
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class TmdbClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float,
        rate: float,
        cache: HttpCache | None,
        default_ttl: float,
        tls: ssl.SSLContext | bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cache = cache
        self.default_ttl = default_ttl
        self.limiter = RateLimiter(rate)
        # A v4 read-access token (a JWT) is a bearer token; a v3 key is a query parameter.
        bearer = api_key.startswith("eyJ")
        self._auth_query = {} if bearer else {"api_key": api_key}
        headers = {"accept": "application/json"}
        if bearer:
            headers["authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(
            verify=tls,  # pass the shared context (revenge.infra.http_client): True loads a CA bundle
            headers=headers,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=_MAX_CONNECTIONS, keepalive_expiry=30.0),
            follow_redirects=False,
        )
        self.requests = 0  # sent to the server (cache hits not counted)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get(
        self, path: str, params: dict[str, str] | None = None, *, cached: bool = True
    ) -> dict[str, Any] | None:
        """The JSON object at ``path`` (``None``: 404). Raises ``ProviderUnavailable`` or
        ``ProviderAnswerError``."""
        query = sorted((params or {}).items())
        key = f"{path}?{urlencode(query)}" if query else path
        if cached and self.cache is not None:
            hit = await self.cache.get(key)
            if hit is not None:
                return hit[1] if hit[0] == 200 else None
        try:
            async with asyncio.timeout(self.timeout):
                status, body, cache_control = await self._fetch(path, dict(query))
        except TimeoutError:
            raise ProviderUnavailable(f"TMDb {path}: no answer within {self.timeout:g}s") from None
        if cached and self.cache is not None:
            try:
                await self.cache.put(key, status, body, lifetime(cache_control, self.default_ttl))
            except psycopg.DataError:  # e.g. a NUL character jsonb cannot hold: not kept
                log.warning("TMDb %s: answer not cacheable", path)
        return body if status == 200 else None

    async def _fetch(self, path: str, params: dict[str, str]) -> tuple[int, Any, str | None]:
        url = self.base_url + path
        delay = _BACKOFF
        started = time.monotonic()
        for attempt in range(_ATTEMPTS):
            last = attempt == _ATTEMPTS - 1
            await self.limiter.acquire()
            self.requests += 1
            try:
                async with self._http.stream(
                    "GET", url, params={**params, **self._auth_query}
                ) as reply:
                    status = reply.status_code
                    if status == 429:
                        wait = retry_after(reply.headers.get("retry-after")) or 1.0
                        left = self.timeout - (time.monotonic() - started)
                        if last or wait >= left:
                            raise ProviderUnavailable(
                                f"TMDb {path}: rate limited (429)", retry_after=wait
                            )
                        log.info("TMDb %s: 429, retrying after %.3gs", path, wait)
                        await asyncio.sleep(wait)
                        continue
                    if status >= 500:
                        if last:
                            raise ProviderUnavailable(f"TMDb {path}: server error {status}")
                        await asyncio.sleep(delay)
                        delay *= 2
                        continue
                    if status in (401, 403):
                        raise ProviderUnavailable(
                            f"TMDb {path}: the API key was refused ({status})"
                        )
                    if status == 404:
                        return 404, {}, reply.headers.get("cache-control")
                    if status != 200:
                        raise ProviderAnswerError(f"TMDb {path}: unexpected status {status}")
                    body = await _read_json(reply, path)
                    return 200, body, reply.headers.get("cache-control")
            except httpx.TransportError as exc:  # connect refused, reset, read timeout...
                if last:
                    raise ProviderUnavailable(f"TMDb {path}: {type(exc).__name__}") from None
                await asyncio.sleep(delay)
                delay *= 2
        raise ProviderUnavailable(f"TMDb {path}: gave up after {_ATTEMPTS} attempts")


async def _read_json(reply: httpx.Response, path: str) -> dict[str, Any]:
    try:
        data = await read_body(reply, types=_JSON, limit=MAX_BODY)
    except BodyRefused as exc:
        raise ProviderAnswerError(f"TMDb {path}: answer refused, {exc}") from None
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ProviderAnswerError(f"TMDb {path}: malformed JSON") from None
    if not isinstance(body, dict):
        raise ProviderAnswerError(f"TMDb {path}: not a JSON object")
    return body
