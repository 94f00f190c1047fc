"""Single sign-on with OpenID Connect providers (cold): authorization code flow with PKCE.

``MODULE`` installs:

* the routes (:mod:`.routes`): the provider list, the start of a sign-in and the callback;
* ``oidc`` (cold, when ``oidc.providers`` is set): :class:`.client.OidcClient`, the HTTP
  client and each provider's discovery document and keys, built on the first sign-in,
  offloaded after ``offload.idle_ttl`` (its connections closed, its documents dropped).
  ``/health`` shows it cold, ready, offloaded, or degraded while a provider fails;
  with no provider configured it says ``disabled``;
* the ``oidc_flows`` cleanup step and ``migrations/`` (identities, sign-ins in flight).

A signed-in person gets the session of a password login, made by auth's
:class:`~revenge.modules.auth.ExternalSignIn`: revoked, listed and expired the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING

from revenge.contract import Module, ModuleContext, ServiceKey, Tier
from revenge.modules.auth import AUTH, ClientAddress, ExternalSignIn
from revenge.modules.oidc import repository

if TYPE_CHECKING:
    from revenge.modules.oidc.client import OidcClient

__all__ = ["MODULE", "OIDC", "install"]

OIDC: ServiceKey[OidcClient] = ServiceKey("oidc", Tier.COLD)


def install(ctx: ModuleContext) -> None:
    settings = ctx.settings
    # The JOSE and HTTP libraries load only where single sign-on is configured.
    from revenge.modules.oidc.routes import add_routes
    from revenge.modules.oidc.service import SingleSignOn

    configured = bool(settings.oidc.providers)
    if configured:
        from revenge.infra.http_client import load_tls_context
        from revenge.modules.oidc.client import OidcClient

        # Loaded here, at start, not on the first sign-in (it is most of a first use's cost).
        oidc_settings, tls = settings.oidc, load_tls_context()
        ctx.provide(
            OIDC,
            lambda: OidcClient(oidc_settings, tls),
            close=lambda client: client.close(),
            health=lambda client: client.check(),
        )
    else:
        ctx.disabled(OIDC, "no provider in oidc.providers")

    @asynccontextmanager
    async def use_client() -> AsyncIterator[OidcClient]:
        async with ctx.services.lazy(OIDC).use() as client:
            yield client

    service = SingleSignOn(
        ctx.database,
        settings.oidc,
        lambda: ExternalSignIn(ctx.services.get(AUTH)),
        use_client,
    )
    add_routes(
        ctx.router,
        service,
        ClientAddress(settings.server.trusted_proxies),
        settings.auth.cookie_name,
        settings.auth.session_ttl,
    )
    ctx.cleanup_step("oidc_flows", repository.delete_expired_flows)
    ctx.migrations(resources.files(__name__) / "migrations")


MODULE = Module("oidc", install)
