"""Shared fixtures: the machine's real PostgreSQL (127.0.0.1:5432, trust) and Redis (127.0.0.1:6379).

Each test session gets its own throw-away database so runs never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

PG_ADMIN_URL = os.environ.get(
    "REVENGE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("REVENGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _fresh_database(prefix: str) -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def _drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of an empty database that lives for the whole test session."""
    name, url = _fresh_database("revenge_test")
    yield url
    _drop_database(name)


@pytest.fixture(scope="session")
def migrated_url(pg_url: str) -> str:
    """``pg_url`` with every migration applied (idempotent, so suites may share it)."""
    import asyncio

    from revenge.wiring import migrate

    asyncio.run(migrate(pg_url))
    return pg_url


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """URL of an empty database for one test (migrations, destructive tests)."""
    name, url = _fresh_database("revenge_t")
    yield url
    _drop_database(name)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The machine's Redis, database 15, emptied before and after the test."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture(scope="session", autouse=True)
def _relocated_clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run as root, embedded clusters of unreachable data folders live in /var/lib/revenge:
    remove the ones this session's temporary folders left there."""
    yield
    import shutil

    from revenge.infra.db.embedded import ROOT_CLUSTERS, relocated_from

    base = tmp_path_factory.getbasetemp().resolve()
    for home in ROOT_CLUSTERS.glob("*") if ROOT_CLUSTERS.is_dir() else ():
        origin = relocated_from(home)
        if origin is not None and origin.is_relative_to(base):
            shutil.rmtree(home, ignore_errors=True)
