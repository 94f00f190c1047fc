"""Nothing outlives ``revenge serve``: SIGKILL the parent, count what is left after 2 s.

A supervisor that restarts a killed ``revenge serve`` must not find the old
generation still serving the port (SO_REUSEPORT would let both run) or the
embedded PostgreSQL still up.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from revenge.infra.db.embedded import cluster_path
from tests.e2e.conftest import free_port, run_server

pytestmark = pytest.mark.e2e

GRACE = 2.0


def alive(processes: list[psutil.Process]) -> list[str]:
    left = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return left


def kill_parent_and_count(parent: psutil.Process) -> list[str]:
    family = parent.children(recursive=True)
    assert family, "the server spawned nothing"
    os.kill(parent.pid, signal.SIGKILL)
    time.sleep(GRACE)
    return alive(family)


def test_workers_exit_when_serve_is_killed(migrated_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": migrated_url,
        "REVENGE_SERVER__DATA_DIR": str(tmp_path / "data"),
        "REVENGE_SERVER__PORT": str(port),
    }
    argv = [sys.executable, "-m", "revenge.cli", "serve", "--workers", "2"]
    with run_server(argv, port, tmp_path, env=env) as server:
        parent = psutil.Process(server.process.pid)
        workers = parent.children(recursive=True)
        try:
            assert len(workers) >= 2
            left = kill_parent_and_count(parent)
            assert left == [], f"left behind {GRACE:g}s after SIGKILL: {left}"
            with pytest.raises(httpx.TransportError):
                httpx.get(server.base_url + "/health/live", timeout=2)
        finally:
            for worker in workers:
                if worker.is_running():
                    worker.kill()


def test_the_embedded_postgres_stops_when_serve_is_killed(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = {"REVENGE_SERVER__DATA_DIR": str(data), "REVENGE_SERVER__PORT": str(port)}
    env_without_url = {"REVENGE_DATABASE__URL": ""}
    argv = [sys.executable, "-m", "revenge.cli", "serve"]
    with run_server(
        argv,
        port,
        tmp_path,
        env={**env, **env_without_url},
        ready_path="/health/ready",
        timeout=120,
    ) as server:
        parent = psutil.Process(server.process.pid)
        postmaster_pid = int((cluster_path(data) / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(postmaster_pid)
        family = [*parent.children(recursive=True), postmaster, *postmaster.children()]
        try:
            os.kill(parent.pid, signal.SIGKILL)
            time.sleep(GRACE)
            left = alive(family)
            assert left == [], f"left behind {GRACE:g}s after SIGKILL: {left}"
        finally:
            for process in family:
                if process.is_running():
                    process.kill()
            if not cluster_path(data).is_relative_to(tmp_path):  # as root: elsewhere
                shutil.rmtree(cluster_path(data).parent, ignore_errors=True)
