"""The embedded default: no ``database.url`` -> pgserver's PostgreSQL in the data folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import psycopg
import pytest

from revenge.config import load_settings
from revenge.infra.database import Database, migrate, resolve_url, resolve_url_sync
from revenge.infra.db.embedded import cluster_path

pytestmark = pytest.mark.integration


def _postmaster_pid(data_dir: Path) -> int | None:
    pid_file = cluster_path(data_dir) / "postmaster.pid"
    if not pid_file.exists():
        return None
    return int(pid_file.read_text().splitlines()[0])


def _alive(pid: int) -> bool:
    """Running and not a zombie (PID 1 of a container may reap late or never)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_starts_serves_and_restarts_on_the_same_folder(tmp_path: Path) -> None:
    settings = load_settings(env={"REVENGE_SERVER__DATA_DIR": str(tmp_path)})
    url, stop = await resolve_url(settings)
    assert stop is not None
    assert url.startswith("postgresql://") and "/revenge?" in url
    assert (cluster_path(tmp_path) / "PG_VERSION").read_text().strip() == "16"
    try:
        async with Database(url) as db:
            assert await db.fetch_one("SELECT 1") == (1,)
            assert await db.fetch_one("SELECT current_database()") == ("revenge",)
        assert await migrate(url)  # the packaged migrations apply to the embedded server
        first_pid = _postmaster_pid(tmp_path)
        assert first_pid is not None and _alive(first_pid)
    finally:
        stop()
        stop()  # idempotent
    assert not _alive(first_pid)

    # Second start reuses the folder: the data is still there, nothing is re-initialised.
    url2, stop2 = await resolve_url(settings)
    assert stop2 is not None
    try:
        assert url2 == url
        async with Database(url2) as db:
            assert await db.fetch_one("SELECT count(*) > 0 FROM schema_migrations") == (True,)
        assert await migrate(url2) == []
    finally:
        stop2()


def test_configured_url_wins(pg_url: str, tmp_path: Path) -> None:
    settings = load_settings(
        env={"REVENGE_DATABASE__URL": pg_url, "REVENGE_SERVER__DATA_DIR": str(tmp_path)}
    )
    assert resolve_url_sync(settings) == (pg_url, None)
    assert not cluster_path(tmp_path).exists()


_CHILD = """
import json, sys, time
from revenge.infra.db.embedded import start_embedded
from pathlib import Path
url, stop = start_embedded(Path(sys.argv[1]))
pid = int((Path(sys.argv[1]) / "postgres" / "postmaster.pid").read_text().split()[0])
print(json.dumps({"url": url, "pid": pid}), flush=True)
sys.stdin.readline()
stop()
"""


def test_several_processes_share_one_server(tmp_path: Path) -> None:
    """Workers that each resolve the embedded URL get one server, stopped by the last one."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        seen = [json.loads(child.stdout.readline()) for child in children]  # type: ignore[union-attr]
        assert len({s["pid"] for s in seen}) == 1
        assert len({s["url"] for s in seen}) == 1
        with psycopg.connect(seen[0]["url"]) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        server = seen[0]["pid"]
        for child in children[:-1]:
            child.communicate("\n", timeout=30)
            assert _alive(server)  # others still use it
        children[-1].communicate("\n", timeout=30)
        assert not _alive(server)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
