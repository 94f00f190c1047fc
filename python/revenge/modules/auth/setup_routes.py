"""First run: ``GET /api/v1/setup`` (is a first administrator needed?) and ``POST`` (create it).

Both are public: nobody can sign in yet. Creating the administrator is allowed to a
browser on the server's own machine, or to anyone who types the one-time setup code
that the server printed to its log, so nobody else on the network can claim a fresh
server. "This machine" means a loopback peer, no proxy in between (no forwarding
header) and a loopback host name: a page of another site whose name was re-pointed
at 127.0.0.1 (DNS rebinding) names its own host, and is refused.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from revenge.http import Input, Output, Request, Response, Router, model_response, text
from revenge.modules.auth.authenticator import CSRF_HEADER, csrf_refused
from revenge.modules.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from revenge.modules.auth.routes import LoginOut, UserOut, invalid_value
from revenge.modules.auth.service import MAX_USERNAME_LENGTH, AuthService
from revenge.modules.auth.throttle import ClientAddress

_TAGS = ("setup",)
_FORWARDING = ("forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host")


class SetupOut(Output):
    needed: bool
    """No user exists yet: the web client shows the setup page."""
    local: bool
    """This caller is on the server's machine: no setup code is asked."""


class SetupBody(Input):
    username: Annotated[str, text(max_length=MAX_USERNAME_LENGTH)]
    password: Annotated[str, text(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]
    code: Annotated[str, text(max_length=64)] | None = None
    """The setup code from the server's log; needed unless the caller is ``local``."""


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """The name part of a ``Host`` header.

    >>> host_name("localhost:8000"), host_name("[::1]:80"), host_name("127.0.0.1")
    ('localhost', '::1', '127.0.0.1')
    """
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_local(request: Request) -> bool:
    if not _loopback(request.client):
        return False
    if any(name in request.headers for name in _FORWARDING):
        return False
    name = host_name(request.headers.get("host", ""))
    return name == "localhost" or name.endswith(".localhost") or _loopback(name)


def add_setup_routes(router: Router, service: AuthService, addresses: ClientAddress) -> None:
    cookie_name = service.settings.cookie_name
    cookie_max_age = int(service.settings.session_ttl)

    async def setup_state(request: Request) -> Response:
        """Whether the server still needs its first administrator, and whether this caller
        may create it without the setup code."""
        return model_response(
            SetupOut(needed=await service.setup_needed(), local=is_local(request))
        )

    async def create_admin(request: Request, *, body: SetupBody) -> Response:
        """Create the first administrator and sign in as it (session token and cookie)."""
        if CSRF_HEADER not in request.headers:
            raise csrf_refused()
        try:
            await service.create_first_admin(
                body.username, body.password, code=body.code, local=is_local(request)
            )
        except ValueError as exc:
            raise invalid_value(str(exc), "username") from None
        client = request.headers.get("user-agent", "")
        result = await service.login(body.username, body.password, addresses.of(request), client)
        response = model_response(
            LoginOut(
                token=result.token,
                session_id=result.session.id,
                expires_at=result.session.expires_at,
                user=UserOut(
                    id=result.user.id, username=result.user.username, role=result.user.role
                ),
            ),
            201,
        )
        response.set_cookie(
            cookie_name, result.token, max_age=cookie_max_age, secure=addresses.is_tls(request)
        )
        return response

    router.add(
        "GET", "/api/v1/setup", setup_state, public=True, tags=_TAGS, response=SetupOut,
        cache_control="no-store",
    )  # fmt: skip
    router.add(
        "POST",
        "/api/v1/setup",
        create_admin,
        public=True,
        tags=_TAGS,
        cache_control="no-store",
        body=SetupBody,
        response=LoginOut,
        status=201,
        problems=(403, 409, 422),  # no code or a wrong one; done already; a refused name
    )
