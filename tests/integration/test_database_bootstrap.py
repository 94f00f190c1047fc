"""``prepare_database``: what the serving parent does before starting the workers."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from revenge.config import load_settings
from revenge.infra.db import (
    DatabaseUnreachable,
    applied_migrations,
    prepare_database,
    system_pg,
)
from revenge.wiring import migrations

SHIPPED = migrations(load_settings(env={}))

pytestmark = pytest.mark.integration


async def test_configured_server_is_migrated_and_exported(fresh_pg_url: str) -> None:
    settings = load_settings(env={"REVENGE_DATABASE__URL": fresh_pg_url})
    environ: dict[str, str] = {}
    # prepare_database runs its own event loop (it is meant for the CLI, before
    # Granian starts); from a test's loop it has to run in a thread.
    prepared = await asyncio.to_thread(prepare_database, settings, SHIPPED, environ=environ)
    assert prepared.url == fresh_pg_url and prepared.stop is None and not prepared.embedded
    assert prepared.applied == [m.ident for m in SHIPPED]
    assert environ == {"REVENGE_DATABASE__URL": fresh_pg_url}
    assert sorted(await applied_migrations(fresh_pg_url)) == sorted(m.key for m in SHIPPED)
    again = await asyncio.to_thread(prepare_database, settings, SHIPPED, environ=environ)
    assert again.applied == []


def test_unreachable_server_fails_fast_with_the_redacted_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://revenge:s3cret@127.0.0.1:{port}/revenge"
    settings = load_settings(env={"REVENGE_DATABASE__URL": url})
    environ: dict[str, str] = {}
    with pytest.raises(DatabaseUnreachable) as caught:
        prepare_database(settings, SHIPPED, environ=environ)
    assert f"revenge:***@127.0.0.1:{port}" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert environ == {}


@pytest.mark.skipif(not system_pg.find_binaries(), reason="no PostgreSQL binaries installed")
def test_embedded_default_is_started_migrated_and_exported(tmp_path: Path) -> None:
    settings = load_settings(env={"REVENGE_SERVER__DATA_DIR": str(tmp_path)})
    environ: dict[str, str] = {}
    prepared = prepare_database(settings, SHIPPED, environ=environ)
    try:
        assert prepared.embedded and prepared.stop is not None
        assert prepared.applied == [m.ident for m in SHIPPED]
        assert environ["REVENGE_DATABASE__URL"] == prepared.url
        # A worker reading that environment uses the same server, starting none.
        worker = load_settings(env=environ)
        assert worker.database.url.get_secret_value() == prepared.url
    finally:
        prepared.stop()
