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

import multiprocessing  # noqa: E402

from revenge import wiring  # noqa: E402
from revenge.config import Settings, load_settings  # noqa: E402
from revenge.http import HttpApp  # noqa: E402
from revenge.runtime import logs  # noqa: E402
from revenge.runtime.orphans import watch_parent  # noqa: E402


def build_app(settings: Settings) -> HttpApp:
    """The HTTP application for ``settings``, built from the module list."""
    return wiring.build(settings, role="serve").http_app()


_spawner = multiprocessing.parent_process()
if _spawner is not None and _spawner.pid is not None:
    # A Granian worker: it must not go on serving the port after its parent is gone. One
    # second to stop gracefully; a supervisor is about to start the next generation.
    watch_parent(_spawner.pid, grace=1.0)

_settings = load_settings()
# Each Granian worker writes its own lines (one per request) in the configured format.
logs.configure(_settings.log.level, _settings.log.format)
app = build_app(_settings)
