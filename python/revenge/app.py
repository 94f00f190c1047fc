"""``app``: what ``granian revenge.app`` serves (RSGI) and ``--interface asgi`` too.

Importing this module reads the configuration (a bad one fails here, loudly) and
builds the application from the module list (:mod:`revenge.wiring`); nothing
connects until the server starts the app. Start-up is the runtime's: its services
start by tier (hot, warm, then background: the embedded PostgreSQL when no URL is
configured, the pool, the cache, each module's services, the job worker, the
runtime's own loops) and stop in reverse.
"""

from __future__ import annotations

# The metrics mode (one process, or shared files for Granian's workers) must be
# chosen before anything imports prometheus_client.
from revenge.runtime import metrics as runtime_metrics

runtime_metrics.setup_process()

from revenge import wiring  # noqa: E402
from revenge.config import Settings, load_settings  # noqa: E402
from revenge.http import HttpApp  # noqa: E402


def build_app(settings: Settings) -> HttpApp:
    """The HTTP application for ``settings``, built from the module list."""
    return wiring.build(settings, role="serve").http_app()


app = build_app(load_settings())
