"""``app``: what ``granian revenge.app`` serves (RSGI) and ``--interface asgi`` too.

Importing this module reads the configuration (a bad one fails here, loudly) and
builds the route table; nothing connects until the server starts the app.
"""

from __future__ import annotations

from revenge.config import Settings, load_settings
from revenge.http import HttpApp, Router, json_response
from revenge.http.request import Request
from revenge.http.response import Response


def build_app(settings: Settings) -> HttpApp:
    """Wire the application for ``settings``: routes, authentication, start-up phases."""
    router = Router()

    async def live(request: Request) -> Response:
        """Liveness: the process answers."""
        return json_response({"status": "alive"})

    async def ready(request: Request) -> Response:
        """Readiness: critical services are up."""
        return json_response({"status": "healthy"})

    router.add("GET", "/health/live", live, public=True, tags=("health",))
    router.add("GET", "/health/ready", ready, public=True, tags=("health",))
    if settings.database.url.get_secret_value():
        return _with_auth(router, settings)
    return HttpApp(router, max_body_bytes=settings.server.max_body_bytes)


def _with_auth(router: Router, settings: Settings) -> HttpApp:
    """Auth (issue 6): users, sessions, API keys on PostgreSQL; revocations over Redis too."""
    from revenge.http import Phase
    from revenge.infra.cache import Cache
    from revenge.infra.database import Database
    from revenge.modules.auth import install as install_auth

    db = Database.from_settings(settings.database.url.get_secret_value(), settings.database)
    phases = [Phase("database", db.start, db.close)]
    cache = None
    if settings.cache.url.get_secret_value():
        cache = Cache.from_settings(settings.cache)
        phases.append(Phase("cache", cache.start, cache.close))
    auth = install_auth(router, settings, db, pubsub=cache)
    return HttpApp(
        router,
        authenticator=auth.authenticator,
        phases=[*phases, *auth.phases],
        max_body_bytes=settings.server.max_body_bytes,
    )


app = build_app(load_settings())
