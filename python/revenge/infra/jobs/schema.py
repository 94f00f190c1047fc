"""The job tables: pgqueuer's own schema (through its installer) plus our progress table.

Installed idempotently under a PostgreSQL advisory lock, so several workers or
``revenge serve`` processes starting together never race. pgqueuer's schema is
converged with its own upgrade planner when already present, so a library upgrade
that adds a column or index is applied here too.
"""

from __future__ import annotations

import psycopg
from pgqueuer import Queries
from pgqueuer.adapters.drivers.psycopg import PsycopgDriver

from revenge.infra.db.errors import DatabaseUnreachable, redact_url

#: ``pg_advisory_lock`` key reserved for the job schema (any fixed bigint unique to it).
SCHEMA_LOCK_KEY = 0x2F9A_51C3_0B7E_44D1

PROGRESS_TABLE = "revenge_job_progress"

_PROGRESS_DDL = f"""
CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (
    job_id   bigint PRIMARY KEY,
    kind     text NOT NULL,
    done     bigint NOT NULL DEFAULT 0 CHECK (done >= 0),
    total    bigint CHECK (total >= 0),
    message  text NOT NULL DEFAULT '',
    updated  timestamptz NOT NULL DEFAULT now()
)
"""
_PROGRESS_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {PROGRESS_TABLE}_updated_idx ON {PROGRESS_TABLE} (updated)"
)


async def install_schema(conninfo: str) -> None:
    """Create or upgrade the job tables; safe to call from every process at start-up.

    Raises :class:`~revenge.infra.db.errors.DatabaseUnreachable` (URL redacted) when
    PostgreSQL cannot be reached, so ``revenge worker`` can exit saying which and why.
    """
    try:
        # One dedicated connection: a session advisory lock binds only the connection that took it.
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().replace(conninfo, redact_url(conninfo))
        raise DatabaseUnreachable(conninfo, reason) from None
    async with conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            queries = Queries(PsycopgDriver(conn))
            if await queries.schema_is_installed():
                plan = await queries.plan_upgrade()
                if plan.statements:
                    await queries.apply_upgrade()
            else:
                await queries.install()
            await conn.execute(_PROGRESS_DDL)
            await conn.execute(_PROGRESS_INDEX)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
