"""HTTP face of single sign-on. Every route here is public: they are how one signs in.

* ``GET /api/v1/oidc/providers``: the configured providers (for a sign-in page's buttons);
* ``GET /api/v1/oidc/{provider}/login?return_to=/path``: 303 to the provider, with a
  cookie binding the sign-in to this browser;
* ``GET /api/v1/oidc/{provider}/callback``: where the provider sends the browser back;
  303 to ``return_to`` with the session cookie of a password login.

A provider that cannot be reached answers 503 ``oidc_provider_unavailable`` (with
Retry-After), one that answers nonsense 502 ``oidc_provider_invalid``; nothing else
of Revenge (password sign-in included) depends on it.
"""

from __future__ import annotations

from typing import Annotated

from revenge.http import Input, Output, Problem, Request, Response, Router, model_response, text
from revenge.modules.auth import ClientAddress
from revenge.modules.oidc.errors import ProviderInvalid, ProviderUnavailable
from revenge.modules.oidc.service import Finished, SingleSignOn

_TAGS = ("oidc",)
_NAME = r"^[a-z0-9][a-z0-9_-]{0,31}$"
_PARAM = r"^[^\x00]*$"


class ProviderPath(Input):
    provider: Annotated[str, text(max_length=32, pattern=_NAME)]


class LoginQuery(Input):
    return_to: Annotated[str, text(max_length=2048)] | None = None
    """A path on this server to land on afterwards (default ``/``)."""


class CallbackQuery(Input):
    code: Annotated[str, text(max_length=2048, pattern=_PARAM)] | None = None
    state: Annotated[str, text(max_length=512, pattern=_PARAM)] | None = None
    error: Annotated[str, text(max_length=256, pattern=_PARAM)] | None = None
    error_description: Annotated[str, text(max_length=2048, pattern=_PARAM)] | None = None
    iss: Annotated[str, text(max_length=1024, pattern=_PARAM)] | None = None


class ProviderOut(Output):
    name: str
    display_name: str
    login_url: str
    """Relative: ``/api/v1/oidc/<name>/login`` (add ``?return_to=/path``)."""


class ProvidersOut(Output):
    providers: list[ProviderOut]


def _provider_problem(exc: ProviderUnavailable | ProviderInvalid) -> Problem:
    if isinstance(exc, ProviderUnavailable):
        return Problem(
            503,
            "oidc_provider_unavailable",
            "The sign-in provider cannot be reached",
            f"{exc}; sign in with a password, or try again later",
            headers=(("retry-after", "30"),),
            extra={"provider": exc.provider},
        )
    return Problem(
        502,
        "oidc_provider_invalid",
        "The sign-in provider answered wrongly",
        str(exc),
        extra={"provider": exc.provider},
    )


def add_routes(
    router: Router, service: SingleSignOn, addresses: ClientAddress, cookie_name: str, ttl: float
) -> None:
    async def providers(request: Request) -> Response:
        """The providers one may sign in with."""
        return model_response(
            ProvidersOut(
                providers=[
                    ProviderOut(
                        name=p.name,
                        display_name=p.display_name or p.name,
                        login_url=f"/api/v1/oidc/{p.name}/login",
                    )
                    for p in service.providers.values()
                ]
            )
        )

    async def login(request: Request, *, params: ProviderPath, query: LoginQuery) -> Response:
        """Start signing in with a provider: 303 to its authorization page."""
        try:
            started = await service.begin(params.provider, query.return_to)
        except (ProviderUnavailable, ProviderInvalid) as exc:
            raise _provider_problem(exc) from None
        provider = service.provider(params.provider)
        response = Response(303, b"", [("location", started.authorization_url)])
        response.set_cookie(
            started.cookie_name,
            started.binding,
            max_age=int(service.settings.flow_ttl),
            path="/api/v1/oidc/",
            secure=service.secure_cookies(provider),
        )
        return response

    async def callback(request: Request, *, params: ProviderPath, query: CallbackQuery) -> Response:
        """The provider's answer: 303 to the return path, signed in (the session cookie set)."""
        try:
            done: Finished = await service.finish(
                params.provider,
                state=query.state,
                code=query.code,
                error=query.error,
                issuer=query.iss,
                binding=lambda name: request.cookies.get(name),
                ip=addresses.of(request),
                client=request.headers.get("user-agent", ""),
            )
        except (ProviderUnavailable, ProviderInvalid) as exc:
            raise _provider_problem(exc) from None
        provider = service.provider(params.provider)
        secure = service.secure_cookies(provider)
        response = Response(303, b"", [("location", done.return_to)])
        response.set_cookie(cookie_name, done.login.token, max_age=int(ttl), secure=secure)
        response.set_cookie(done.cookie_name, "", max_age=0, path="/api/v1/oidc/", secure=secure)
        return response

    router.add(
        "GET",
        "/api/v1/oidc/providers",
        providers,
        public=True,
        summary="Single sign-on providers",
        tags=_TAGS,
        response=ProvidersOut,
    )
    router.add(
        "GET",
        "/api/v1/oidc/{provider}/login",
        login,
        public=True,
        summary="Start single sign-on (303 to the provider)",
        tags=_TAGS,
        params=ProviderPath,
        query=LoginQuery,
        status=303,
        problems=(404, 422),
        cache_control="no-store",
    )
    router.add(
        "GET",
        "/api/v1/oidc/{provider}/callback",
        callback,
        public=True,
        summary="Finish single sign-on (303 to the return path, signed in)",
        tags=_TAGS,
        params=ProviderPath,
        query=CallbackQuery,
        status=303,
        problems=(401, 403, 404, 410, 422),
        cache_control="no-store",
    )
