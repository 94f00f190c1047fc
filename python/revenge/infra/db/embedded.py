"""The embedded default: with no ``database.url``, run PostgreSQL in the data folder.

It is `pgserver` (PostgreSQL 16 binaries inside a pip wheel), so a fresh
machine needs nothing from its package manager. The cluster lives in
``<server.data_dir>/postgres`` and listens only on a Unix socket there (no TCP
port to collide with); Revenge uses a database named ``revenge`` in it. Run as
root, pgserver creates an OS user ``pgserver`` that owns the cluster and runs
the server (PostgreSQL refuses to run as root), and makes the folders above the
data folder traversable for it.

Sharing: pgserver serialises start-up with an inter-process file lock and keeps
a list of the processes using the cluster; the server stops when the last of
them lets go. Still, resolve once in the serving parent and hand the URL to the
workers through ``REVENGE_DATABASE__URL`` (see :func:`resolve_url_sync`): then
one process owns the server and its shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from revenge.infra.db.errors import EmbeddedDatabaseError

if TYPE_CHECKING:
    from revenge.config import Settings

log = logging.getLogger(__name__)

DATABASE_NAME = "revenge"
CLUSTER_DIR = "postgres"
_CREATE_LOCK = 0x5245_5645_4E47_4501  # "REVENGE" + 1: creating the embedded database

Stop = Callable[[], None]

_lock = threading.Lock()
_handles: dict[Path, tuple[Any, int]] = {}  # cluster -> (pgserver handle, users in this process)


def cluster_path(data_dir: Path) -> Path:
    return data_dir.expanduser().resolve() / CLUSTER_DIR


def start_embedded(data_dir: Path) -> tuple[str, Stop]:
    """Start (or join) the cluster in ``data_dir``; its URL and a stop callable. Blocking.

    The stop callable is idempotent; the server stops when the last user in any
    process has stopped.
    """
    pgdata = cluster_path(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with _lock:
        server, users = _handles.get(pgdata, (None, 0))
        if server is None:
            server = _get_server(pgdata)
        _handles[pgdata] = (server, users + 1)
    try:
        url = _ensure_database(server.get_uri())
    except Exception:
        _release(pgdata)
        raise
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            _release(pgdata)

    return url, stop


def _get_server(pgdata: Path) -> Any:
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, containers)
            # and falls back to /tmp, which is fine for pgserver's lock file.
            warnings.simplefilter("ignore")
            import pgserver

            return pgserver.get_server(  # type: ignore[attr-defined]
                pgdata, cleanup_mode="stop"
            )
    except Exception as exc:
        log_file = pgdata / "log"
        tail = ""
        if log_file.exists():
            tail = "\n" + "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
        raise EmbeddedDatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}{tail}"
        ) from exc


def _release(pgdata: Path) -> None:
    with _lock:
        server, users = _handles.get(pgdata, (None, 0))
        if server is None:
            return
        if users > 1:
            _handles[pgdata] = (server, users - 1)
            return
        del _handles[pgdata]
    server.cleanup()


def _ensure_database(admin_url: str) -> str:
    """Create the ``revenge`` database on first start; the URL that reaches it."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # Processes sharing the cluster start together: one creates, the others wait here.
        conn.execute("SELECT pg_advisory_lock(%s)", (_CREATE_LOCK,))
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
    prefix, _, query = admin_url.partition("?")
    base = prefix.rsplit("/", 1)[0]
    return f"{base}/{DATABASE_NAME}" + (f"?{query}" if query else "")


def resolve_url_sync(settings: Settings) -> tuple[str, Stop | None]:
    """The database URL to use: ``database.url`` if set, else the embedded server's.

    Returns ``(url, stop)``; ``stop`` is None for an external server. Blocking:
    call it before the event loop starts (the serving parent) or use
    :func:`resolve_url`.
    """
    configured = settings.database.url.get_secret_value()
    if configured:
        return configured, None
    url, stop = start_embedded(settings.server.data_path)
    log.info("embedded PostgreSQL ready in %s", cluster_path(settings.server.data_path))
    return url, stop


async def resolve_url(settings: Settings) -> tuple[str, Stop | None]:
    """:func:`resolve_url_sync` in a thread, so the event loop keeps running."""
    return await asyncio.to_thread(resolve_url_sync, settings)
