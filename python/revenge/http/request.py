"""The request as handlers see it, independent of RSGI or ASGI underneath."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import parse_qs

import orjson

from revenge.http.errors import Problem


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: set by the authenticator before a protected handler runs."""

    user_id: int
    username: str
    role: Literal["admin", "user"]
    via: Literal["session", "api_key"]
    credential_id: str
    """Hash of the session token or id of the API key: identifies, never authenticates."""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


_NO_PARAMS: Mapping[str, str] = MappingProxyType({})


class IncompleteBody(Exception):
    """The body ended before its end: fewer bytes than declared, a bad chunk, a hang-up."""


class Request:
    """One HTTP request. Header names are lower-case; the body is read at most once."""

    __slots__ = (
        "_body",
        "_client",
        "_cookies",
        "_query",
        "_query_string",
        "_scheme",
        "_stream",
        "body_timeout",
        "headers",
        "max_body",
        "method",
        "path",
        "path_params",
        "principal",
        "request_id",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: Mapping[str, str],
        client: str,
        scheme: str,
        body_source: AsyncIterable[bytes],
        max_body: int,
        body_timeout: float = 30.0,
    ) -> None:
        self.method = method
        self.path = path
        self._query_string = query_string
        self.headers = headers
        self._client = client
        self._scheme = scheme
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.path_params: Mapping[str, str] = _NO_PARAMS
        self.principal: Principal | None = None
        self.request_id = ""  # set by the dispatcher (X-Request-Id)
        self._stream = body_source
        self._body: bytes | None = None
        self._query: dict[str, list[str]] | None = None
        self._cookies: dict[str, str] | None = None

    @property
    def query_string(self) -> str:
        return self._query_string

    @property
    def client(self) -> str:
        """The peer's address (no port): the proxy's, when behind one."""
        return self._client

    @property
    def scheme(self) -> str:
        return self._scheme

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.query_string, keep_blank_values=True)
        return self._query

    def query_value(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            jar: SimpleCookie = SimpleCookie()
            # A malformed cookie header means no cookies, not a failed request.
            with contextlib.suppress(CookieError):
                jar.load(self.headers.get("cookie", ""))
            self._cookies = {key: morsel.value for key, morsel in jar.items()}
        return self._cookies

    @property
    def principal_or_raise(self) -> Principal:
        if self.principal is None:
            raise Problem(401, "unauthenticated", "Authentication required")
        return self.principal

    async def body(self) -> bytes:
        """The whole body, read within ``body_timeout`` seconds (else a 408 problem).

        413 past ``max_body`` bytes, checked while reading; 400 when the body ends
        before it is complete (fewer bytes than its Content-Length, a broken chunk).
        """
        if self._body is not None:
            return self._body
        declared = self.headers.get("content-length")
        expected: int | None = None
        if declared is not None:
            if not declared.isascii() or not declared.isdigit():
                raise Problem(400, "bad_content_length", "Bad Content-Length header")
            expected = int(declared)
            if expected > self.max_body:
                raise _too_large(self.max_body)
        chunks: list[bytes] = []
        size = 0
        ended = False
        try:
            async with asyncio.timeout(self.body_timeout):
                async for chunk in self._stream:
                    if ended:
                        # Granian's RSGI body yields b"" at its end; a failed read (a
                        # truncated or malformed body) yields one b"" more before it.
                        raise IncompleteBody
                    if not chunk:
                        ended = True
                        continue
                    size += len(chunk)
                    if size > self.max_body:
                        raise _too_large(self.max_body)
                    chunks.append(chunk)
        except TimeoutError:
            raise Problem(
                408,
                "body_timeout",
                "Request body timeout",
                f"the body was not received within {self.body_timeout:g} s",
                headers=[("connection", "close")],
            ) from None
        except IncompleteBody:
            raise _incomplete() from None
        if expected is not None and size != expected:
            raise _incomplete()
        self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        """The body parsed as JSON: 415 for another content type, 400 when malformed."""
        content_type = self.headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise Problem(
                415,
                "unsupported_media_type",
                "Unsupported media type",
                f"expected application/json, got {media_type or 'no content type'}",
            )
        raw = await self.body()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Problem(400, "malformed_json", "Malformed JSON", str(exc)) from None


class RsgiRequest(Request):
    """A request read from Granian's RSGI scope; what most requests never use is read late.

    Every scope attribute is a Rust getter that builds a new ``str`` on each read
    (``client`` formats the socket address: ~0.3 us, as much as routing a request),
    so the query string, peer and scheme are read from the scope on first use only.
    """

    __slots__ = ("_scope",)

    def __init__(
        self, scope: Any, protocol: AsyncIterable[bytes], max_body: int, body_timeout: float = 30.0
    ) -> None:
        # Not Request.__init__: the slots it fills from arguments are properties here.
        self._scope = scope
        self.method = scope.method
        self.path = scope.path
        self.headers = scope.headers
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.path_params = _NO_PARAMS
        self.principal = None
        self.request_id = ""
        self._stream = protocol  # iterated at most once: granian allows one body read
        self._body = None
        self._query = None
        self._cookies = None

    @property
    def query_string(self) -> str:
        query: str = self._scope.query_string
        return query

    @property
    def client(self) -> str:
        client: str = self._scope.client
        return client.rsplit(":", 1)[0] if client else ""

    @property
    def scheme(self) -> str:
        scheme: str = self._scope.scheme
        return scheme


def _too_large(limit: int) -> Problem:
    return Problem(
        413, "payload_too_large", "Payload too large", f"the body may be at most {limit} bytes"
    )


def _incomplete() -> Problem:
    return Problem(
        400,
        "incomplete_body",
        "Incomplete request body",
        "the body ended before its declared end",
        headers=[("connection", "close")],
    )
