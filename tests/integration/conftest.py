"""Fixtures the integration suites share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from revenge.infra.db import Database, PoolConfig


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def db(migrated_url: str) -> AsyncIterator[Database]:
    """A pool on the migrated session database, one per test module (whose tests run on the
    module's event loop: ``pytest.mark.asyncio(loop_scope="module")``). Small, because the
    machine's PostgreSQL is shared by every suite."""
    database = Database(migrated_url, PoolConfig(min_conns=1, max_conns=4))
    await database.start()
    yield database
    await database.close()
