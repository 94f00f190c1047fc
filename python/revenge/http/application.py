"""The HTTP application: one dispatcher behind two faces, RSGI (Granian's native) and ASGI.

``granian revenge.app`` serves the RSGI face; ``granian --interface asgi revenge.app:app``,
uvicorn and test clients use the ASGI face. Start-up and shutdown run through
``__rsgi_init__`` / ``__rsgi_del__`` or the ASGI lifespan protocol; both start and stop
the one :class:`Lifecycle` the app was given (the application's runtime).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from time import perf_counter, time
from typing import Any, Protocol

from revenge.http.access import AccessLog
from revenge.http.errors import (
    INTERNAL_ERROR,
    Problem,
    domain_problem,
    invalid_path,
    method_not_allowed,
    not_found,
    service_unavailable,
)
from revenge.http.quoting import quoted
from revenge.http.request import IncompleteBody, Principal, Request, RsgiRequest
from revenge.http.response import Response
from revenge.http.router import Router
from revenge.http.sending import send_asgi, send_rsgi
from revenge.runtime.errors import DomainError, ServiceUnavailable

log = logging.getLogger("revenge.http")

Authenticate = Callable[[Request], Awaitable[Principal]]
"""``await authenticate(request)``: the caller's Principal, or raise a 401 :class:`Problem`.

An authenticator may also offer ``cached(request) -> Principal | None``: the answer
when it is known without waiting (a cache hit), else ``None``. The dispatcher asks
it first and awaits the authenticator only on ``None``: a hit then costs no
coroutine. Its ``Problem`` (a malformed header, say) is the answer too.
"""


class Lifecycle(Protocol):
    """What starts before the first request and stops after the last (``revenge.runtime.Runtime``)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


ASGIScope = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _deny(request: Request) -> Principal:
    raise Problem(401, "unauthenticated", "Authentication required")


def _not_cached(request: Request) -> Principal | None:
    return None


class HttpApp:
    """Routes a request, authenticates it unless its route is public, turns errors into problems."""

    def __init__(
        self,
        router: Router,
        *,
        authenticator: Authenticate = _deny,
        lifecycle: Lifecycle | None = None,
        max_body_bytes: int = 1 << 20,
        body_timeout: float = 30.0,
        access: AccessLog | None = None,
    ) -> None:
        self.router = router
        self.access = access if access is not None else AccessLog()
        self._match = router.match
        self.authenticator = authenticator
        self._cached: Callable[[Request], Principal | None] = getattr(
            authenticator, "cached", _not_cached
        )
        self.lifecycle = lifecycle
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self._error_map: dict[type[BaseException], Callable[[BaseException], Problem]] = {}
        self._started = False

    # -- the one dispatcher -------------------------------------------------

    def map_exception(
        self, kind: type[BaseException], to_problem: Callable[[BaseException], Problem]
    ) -> None:
        """Answer ``kind`` (and its subclasses) escaping a handler with ``to_problem(exc)``.

        The app registers what lower layers raise for bad input (a database's refusal
        of a value, say) without this package importing them.
        """
        self._error_map[kind] = to_problem

    async def handle(self, request: Request) -> Response:
        """The response to ``request``, with its ``X-Request-Id``; its access line written."""
        access = self.access
        sink = access.sink
        started = perf_counter() if sink.enabled else 0.0
        if access.trusts_proxies:
            rid = access.request_id(request.headers.get("x-request-id"), request.client)
        else:
            rid = access.new_id()
        request.request_id = rid
        route = None
        try:
            match = self._match(request.method, request.path)
            route = match.route
            if route is None:
                if match.invalid:
                    raise invalid_path()
                if match.allowed:
                    raise method_not_allowed(request.method, match.allowed)
                raise not_found(request.path)
            request.path_params = match.params
            if route.public:
                response = await route.handler(request)
            else:
                principal = self._cached(request)
                if principal is None:
                    principal = await self.authenticator(request)
                request.principal = principal
                response = await route.handler(request)
            response.headers += route.tail  # nosniff, and the route's Cache-Control
        except Problem as problem:
            response = problem.to_response(request.path, rid)
        except DomainError as error:
            response = domain_problem(error).to_response(request.path, rid)
        except ServiceUnavailable as exc:
            log.warning(
                "%s %s: %s", request.method, quoted(request.path), exc, extra={"request_id": rid}
            )
            response = service_unavailable(exc.code, str(exc), exc.retry_after).to_response(
                request.path, rid
            )
        except Exception as exc:
            response = self._unexpected(request, exc, rid)
        response.headers.append(("x-request-id", rid))
        if sink.enabled:  # the tuple only: the sink formats and writes it off this path
            principal = request.principal
            sink.add(
                (
                    time(),
                    rid,
                    request.method,
                    None if route is None else route.path,
                    response.status,
                    perf_counter() - started,
                    None if principal is None else principal.user_id,
                )
            )
        return response

    def _unexpected(self, request: Request, exc: Exception, rid: str) -> Response:
        for kind in type(exc).__mro__:
            to_problem = self._error_map.get(kind)
            if to_problem is not None:
                log.info(
                    "%s %s: %s answered as a problem", request.method, quoted(request.path),
                    kind.__name__, extra={"request_id": rid},
                )  # fmt: skip
                return to_problem(exc).to_response(request.path, rid)
        log.exception(
            "unhandled error in %s %s",
            request.method,
            quoted(request.path),
            extra={"request_id": rid},
        )
        return INTERNAL_ERROR.to_response(request.path, rid)

    # -- lifecycle ----------------------------------------------------------

    async def startup(self) -> None:
        """Start the lifecycle (it undoes its own partial start when it fails)."""
        if self.lifecycle is not None and not self._started:
            await self.lifecycle.start()
            self._started = True

    async def shutdown(self) -> None:
        """Stop the lifecycle; a failing stop is logged, not raised. The last access lines
        are written (for up to 2 s) before the process goes."""
        if self.lifecycle is not None and self._started:
            self._started = False
            try:
                await self.lifecycle.stop()
            except Exception:
                log.exception("stopping the application failed")
        await asyncio.to_thread(self.access.sink.close)

    # -- RSGI face ----------------------------------------------------------

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.startup())
        # What start-up built lives as long as the worker: move it out of the
        # collector's sight, so a full collection walks only what came after
        # (~27 ms for the ~75k objects of a started app, ~0 ms once frozen).
        # Garbage goes first, so none of it is frozen. The ASGI face leaves the
        # collector alone: an embedding host owns its process.
        gc.collect()
        gc.freeze()

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.shutdown())

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return  # websockets are not served; granian closes the connection
        request = RsgiRequest(scope, protocol, self.max_body_bytes, self.body_timeout)
        response = await self.handle(request)
        if response.__class__ is Response:
            protocol.response_bytes(response.status, response.headers, response.body)
        else:
            await send_rsgi(response, protocol, request.method)

    # -- ASGI face ----------------------------------------------------------

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._asgi_http(scope, receive, send)
        elif kind == "lifespan":
            await self._asgi_lifespan(receive, send)

    async def _asgi_http(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        async def stream() -> AsyncIterator[bytes]:
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise IncompleteBody  # the peer went away before the body's end
                yield message.get("body", b"")
                more = message.get("more_body", False)

        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", ())
        }
        client = scope.get("client")
        request = Request(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            headers,
            client[0] if client else "",
            scope.get("scheme", "http"),
            stream(),
            self.max_body_bytes,
            self.body_timeout,
        )
        response = await self.handle(request)
        await send_asgi(response, scope, receive, send, request.method)

    async def _asgi_lifespan(self, receive: ASGIReceive, send: ASGISend) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
