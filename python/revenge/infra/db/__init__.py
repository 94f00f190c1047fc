"""PostgreSQL for Revenge: the warm pool, migrations and the embedded server.

* :class:`Database` — the warm pool (psycopg_pool): ``start()`` fails fast with
  :class:`DatabaseUnreachable`; ``connection()`` / ``transaction()`` and the
  ``execute`` / ``fetch_*`` helpers raise
  :class:`~revenge.runtime.errors.ServiceUnavailable` instead of hanging;
  ``check()`` / ``health()`` / ``stats()`` for the runtime.
* :func:`migrate` — apply the modules' ``migrations/NNNN_name.sql`` under an
  advisory lock (identity: module and version).
* :func:`resolve_url` / :func:`resolve_url_sync` — ``database.url``, or the
  embedded PostgreSQL in the data folder when it is empty.
* :func:`prepare_database` — for the serving parent: resolve, migrate, export
  ``REVENGE_DATABASE__URL`` for the workers.
"""

from __future__ import annotations

from revenge.infra.db.bootstrap import PreparedDatabase, prepare_database
from revenge.infra.db.embedded import EmbeddedServer, resolve_url, resolve_url_sync, start_embedded
from revenge.infra.db.errors import (
    DatabaseNewerThanCode,
    DatabaseUnreachable,
    EmbeddedDatabaseError,
    MigrationChecksumMismatch,
    MigrationError,
    MigrationOutOfOrder,
    redact_url,
)
from revenge.infra.db.metrics import export_pool_metrics
from revenge.infra.db.migrate import (
    Migration,
    applied_migrations,
    core_migrations,
    load_migrations,
    migrate,
)
from revenge.infra.db.pool import Connection, Database, DatabaseHealth, PoolConfig
from revenge.runtime.pools import PoolStats

__all__ = [
    "Connection",
    "Database",
    "DatabaseHealth",
    "DatabaseNewerThanCode",
    "DatabaseUnreachable",
    "EmbeddedDatabaseError",
    "EmbeddedServer",
    "Migration",
    "MigrationChecksumMismatch",
    "MigrationError",
    "MigrationOutOfOrder",
    "PoolConfig",
    "PoolStats",
    "PreparedDatabase",
    "applied_migrations",
    "core_migrations",
    "export_pool_metrics",
    "load_migrations",
    "migrate",
    "prepare_database",
    "redact_url",
    "resolve_url",
    "resolve_url_sync",
    "start_embedded",
]
