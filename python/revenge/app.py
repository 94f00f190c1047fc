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
    return HttpApp(router, max_body_bytes=settings.server.max_body_bytes)


app = build_app(load_settings())
