"""The embedded default: no ``database.url`` -> a private PostgreSQL in the data folder.

Both backends run for real: the machine's PostgreSQL 15 binaries and pgserver's
bundled PostgreSQL 16.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from revenge.config import load_settings
from revenge.infra.db import (
    Database,
    MigrationError,
    migrate,
    resolve_url,
    resolve_url_sync,
    start_embedded,
    system_pg,
)
from revenge.infra.db.embedded import cluster_path
from revenge.wiring import migrations

SHIPPED = migrations(load_settings(env={}))

pytestmark = pytest.mark.integration

needs_system_pg = pytest.mark.skipif(
    not system_pg.find_binaries(), reason="no PostgreSQL binaries installed on this machine"
)
# As root pgserver would create an OS user and open folders to everyone, so Revenge refuses
# it there (tests/integration/test_database_embedded_private.py checks the refusal).
needs_pgserver = pytest.mark.skipif(
    os.geteuid() == 0, reason="Revenge refuses the pgserver fallback as root; run as a user"
)
BACKENDS = [
    pytest.param("system", marks=needs_system_pg),
    pytest.param("pgserver", marks=needs_pgserver),
]


@pytest.fixture(autouse=True)
def _relocated_clusters(tmp_path: Path) -> Iterator[None]:
    """Run as root, a cluster may live outside tmp_path (see cluster_path): none is left from
    an earlier run of the same test, and none stays after it."""

    def remove() -> None:
        for data_dir in (tmp_path, tmp_path / "data"):
            cluster = cluster_path(data_dir)
            if not cluster.is_relative_to(tmp_path):
                shutil.rmtree(cluster.parent, ignore_errors=True)

    remove()
    yield
    remove()


def _postmaster_pid(data_dir: Path) -> int | None:
    pid_file = cluster_path(data_dir) / "postmaster.pid"
    if not pid_file.exists():
        return None
    return int(pid_file.read_text().splitlines()[0])


def _exits(pid: int, within: float = 15.0) -> bool:
    """``pg_ctl stop -w`` returns once the pid file is gone; the process itself may take a
    moment more to exit on a loaded machine. Generous: it proves the stop, not its speed."""
    deadline = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    """Running and not a zombie (PID 1 of a container may reap late or never)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("backend", BACKENDS)
async def test_starts_serves_and_restarts_on_the_same_folder(tmp_path: Path, backend: str) -> None:
    first = start_embedded(tmp_path, backend)  # type: ignore[arg-type]
    assert (first.backend, first.stops_server) == (backend, True)
    assert first.url.startswith("postgresql://") and "/revenge?" in first.url
    try:
        async with Database(first.url) as db:
            assert await db.fetch_one("SELECT current_database()") == ("revenge",)
            await db.execute("CREATE TABLE kept (n int)")
            await db.execute("INSERT INTO kept VALUES (7)")
        pid = _postmaster_pid(tmp_path)
        assert pid is not None and _alive(pid)
    finally:
        first.stop()
        first.stop()  # idempotent
    assert _exits(pid)

    # Second start reuses the folder: the data is still there, nothing is re-initialised.
    again = start_embedded(tmp_path, "auto")
    try:
        assert (again.backend, again.stops_server, again.url) == (backend, True, first.url)
        async with Database(again.url) as db:
            assert await db.fetch_one("SELECT n FROM kept") == (7,)
    finally:
        again.stop()


@needs_system_pg
async def test_default_resolution_runs_the_packaged_migrations(tmp_path: Path) -> None:
    settings = load_settings(env={"REVENGE_SERVER__DATA_DIR": str(tmp_path)})
    url, stop = await resolve_url(settings)
    assert stop is not None
    try:
        applied = await migrate(url, SHIPPED)
        assert applied and applied[0] == "core/0001_init.sql"
    finally:
        stop()
    url2, stop2 = await resolve_url(settings)
    assert stop2 is not None
    try:
        assert url2 == url
        assert await migrate(url2, SHIPPED) == []
    finally:
        stop2()


@needs_pgserver
async def test_pgserver_lacks_contrib_extensions(tmp_path: Path) -> None:
    """Why pgserver is only the fallback: no pg_trgm in its bundle, so search's migration fails."""
    server = start_embedded(tmp_path, "pgserver")
    try:
        with psycopg.connect(server.url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'"
            ).fetchone()
        assert row == (0,)
        if any(m.module == "search" for m in SHIPPED):
            with pytest.raises(MigrationError, match="pg_trgm"):
                await migrate(server.url, SHIPPED)
    finally:
        server.stop()


def test_configured_url_wins(pg_url: str, tmp_path: Path) -> None:
    settings = load_settings(
        env={"REVENGE_DATABASE__URL": pg_url, "REVENGE_SERVER__DATA_DIR": str(tmp_path)}
    )
    assert resolve_url_sync(settings) == (pg_url, None)
    assert not cluster_path(tmp_path).exists()


_CHILD = """
import json, sys
from pathlib import Path
from revenge.infra.db import start_embedded
from revenge.infra.db.embedded import cluster_path
server = start_embedded(Path(sys.argv[1]), sys.argv[2])
pid = int((cluster_path(Path(sys.argv[1])) / "postmaster.pid").read_text().split()[0])
print(json.dumps({"url": server.url, "pid": pid, "stops": server.stops_server}), flush=True)
sys.stdin.readline()
server.stop()
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_several_processes_share_one_server(tmp_path: Path, backend: str) -> None:
    """Workers that each resolve the embedded URL start one server between them."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(tmp_path), backend],
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
        if backend == "system":
            # One started it and stops it; the ones that joined never stop it.
            assert [s["stops"] for s in seen].count(True) == 1
            starter = next(c for c, s in zip(children, seen, strict=True) if s["stops"])
            for child in children:
                if child is not starter:
                    child.communicate("\n", timeout=30)
                    assert _alive(server)
            starter.communicate("\n", timeout=30)
        else:
            # pgserver counts its users: the last one out stops it, whoever started it.
            for child in children[:-1]:
                child.communicate("\n", timeout=30)
                assert _alive(server)
            children[-1].communicate("\n", timeout=30)
        assert _exits(server)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()


def _guard_counts(children: list[psutil.Process]) -> list[int]:
    return [" ".join(g.cmdline()).count("revenge.infra.db.guard") for g in children]


@needs_system_pg
def test_server_of_a_killed_starter_is_adopted(tmp_path: Path) -> None:
    """The parent that started the server died without stopping it, and so did its guard
    (which would have stopped the server): the next one takes over."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path), "system"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    guards: list[psutil.Process] = []
    try:
        seen = json.loads(child.stdout.readline())  # type: ignore[union-attr]
        assert seen["stops"] is True
        # Under load the guard may still be a fork that has not exec'd its own command line.
        deadline = time.monotonic() + 30
        guards = psutil.Process(child.pid).children()
        while time.monotonic() < deadline and _guard_counts(guards) != [1]:
            time.sleep(0.05)
            guards = psutil.Process(child.pid).children()
        assert _guard_counts(guards) == [1]
    finally:
        for guard in guards:
            guard.kill()  # SIGKILL both: no stop(), no atexit, no guard
        child.kill()
        child.wait()
    assert _alive(seen["pid"])
    server = start_embedded(tmp_path, "system")
    assert server.stops_server and server.url == seen["url"]
    assert _postmaster_pid(tmp_path) == seen["pid"]
    server.stop()
    assert _exits(seen["pid"])


@needs_system_pg
def test_the_guard_stops_the_server_of_a_killed_starter(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path), "system"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen = json.loads(child.stdout.readline())  # type: ignore[union-attr]
    child.kill()
    child.wait()
    deadline = time.monotonic() + 30
    while _alive(seen["pid"]):
        assert time.monotonic() < deadline, "the server outlived its killed starter"
        time.sleep(0.05)
    again = start_embedded(tmp_path, "system")  # and it starts again (WAL replayed)
    again.stop()
