"""Helpers shared by the backup tests: every table's rows, and the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

import psycopg
from psycopg import sql

from tests.cheap_settings import FAST_ARGON2


def table_rows(url: str) -> dict[str, list[str]]:
    """Every row of every table outside the system schemas, as sorted JSON text."""
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') "
            "ORDER BY 1, 2"
        ).fetchall()
        rows: dict[str, list[str]] = {}
        for schema, name in tables:
            query = sql.SQL("SELECT row_to_json(t)::text FROM {}.{} AS t").format(
                sql.Identifier(schema), sql.Identifier(name)
            )
            rows[f"{schema}.{name}"] = sorted(str(r[0]) for r in conn.execute(query).fetchall())
    return rows


def databases(admin_url: str, prefix: str) -> set[str]:
    with psycopg.connect(admin_url) as conn:
        found = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchall()
    return {str(row[0]) for row in found}


def revenge(
    *args: str, url: str, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **FAST_ARGON2, "REVENGE_DATABASE__URL": url, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "revenge.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full,
        timeout=300,
        check=False,
    )
