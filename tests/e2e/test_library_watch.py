"""The folder watcher on a real server: ``granian revenge.app`` with ``library.watch`` on,
real inotify (watchfiles), the real job queue and PostgreSQL.

* a file copied into a watched library becomes searchable by itself, a new folder too, and a
  deleted folder's file is marked missing, without anyone asking for a scan;
* with the kernel's inotify watch limit reached, ``/health`` says so (degraded, naming the
  sysctl) and periodic scans still find new files. The limit is real: the server runs in a
  user namespace of its own (``unshare --user``) whose ``max_inotify_watches`` is set to 3,
  which touches nothing outside that namespace.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from revenge.wiring import migrate
from tests.cheap_settings import FAST_ARGON2
from tests.e2e.conftest import free_port, granian_argv, run_server

pytestmark = pytest.mark.e2e

PASSWORD = "e2e admin password"


def env_for(url: str, data: Path, **extra: str) -> dict[str, str]:
    return {
        "REVENGE_DATABASE__URL": url,
        "REVENGE_SERVER__DATA_DIR": str(data),
        "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        **FAST_ARGON2,
        "REVENGE_LIBRARY__WATCH": "true",
        "REVENGE_LIBRARY__WATCH_DEBOUNCE": "0.2",
        **extra,
    }


def admin_client(base_url: str) -> tuple[httpx.Client, dict[str, str]]:
    client = httpx.Client(base_url=base_url, timeout=10)
    login = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
    client.cookies.clear()
    return client, {"authorization": f"Bearer {login.json()['token']}"}


def make_library(client: httpx.Client, admin: dict[str, str], root: Path) -> int:
    made = client.post(
        "/api/v1/libraries",
        json={"name": root.name, "kind": "movies", "roots": [str(root)]},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    library = int(made.json()["id"])
    job = client.post(f"/api/v1/libraries/{library}/scan", headers=admin).json()["job_id"]
    deadline = time.monotonic() + 60
    while client.get(f"/api/v1/jobs/{job}", headers=admin).json()["state"] != "succeeded":
        assert time.monotonic() < deadline, "the first scan did not finish"
        time.sleep(0.1)
    return library


def wait_for(what: Any, timeout: float = 30.0) -> float:
    """Seconds until ``what()`` is true (fails past ``timeout``)."""
    started = time.monotonic()
    while not what():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s: {what.__doc__}")
        time.sleep(0.05)
    return time.monotonic() - started


def searchable(client: httpx.Client, admin: dict[str, str], title: str) -> bool:
    hits = client.get("/api/v1/search", params={"q": title}, headers=admin).json()["hits"]
    return any(h["title"] == title for h in hits)


def missing(url: str, key: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT missing_since IS NOT NULL FROM items WHERE key = %s", (key,)
        ).fetchone()
    return bool(row and row[0])


def test_new_files_become_searchable_by_themselves(fresh_pg_url: str, tmp_path: Path) -> None:
    asyncio.run(migrate(fresh_pg_url))
    root = tmp_path / "films"
    for name in ("Alien (1979)", "Heat (1995)"):
        (root / name).mkdir(parents=True)
        (root / name / f"{name}.mkv").write_bytes(b"")
    port = free_port()
    with run_server(
        granian_argv(port), port, tmp_path, env_for(fresh_pg_url, tmp_path / "d")
    ) as server:
        client, admin = admin_client(server.base_url)
        library = make_library(client, admin, root)
        health = client.get("/health", headers=admin).json()
        assert health["services"]["library_watcher"]["healthy"] is True, health
        assert searchable(client, admin, "Alien") and not searchable(client, admin, "Brazil")
        wait_for(lambda: _scans(fresh_pg_url, library) >= 2)  # watched: its catch-up scan ran
        # a file into an existing folder, written as a copy would be
        (root / "Alien (1979)" / "Alien (1979) - Director's Cut.mkv").write_bytes(b"x" * 4096)
        wait_for(lambda: _versions(fresh_pg_url, "movie:alien:1979") == 2)
        # a new folder with its film
        (root / "Brazil (1985)").mkdir()
        (root / "Brazil (1985)" / "Brazil (1985).mkv").write_bytes(b"")
        took = wait_for(lambda: searchable(client, admin, "Brazil"))
        print(f"file created -> searchable: {took:.2f} s")
        # a poster dropped beside an unchanged video is found too (the folder is re-read)
        poster = root / "Alien (1979)" / "poster.jpg"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=200x300",
             "-frames:v", "1", str(poster)],
            check=True,
        )  # fmt: skip
        wait_for(lambda: _poster_ok(fresh_pg_url, "movie:alien:1979"))
        shutil.rmtree(root / "Heat (1995)")
        wait_for(lambda: missing(fresh_pg_url, "movie:heat:1995"))
        assert not missing(fresh_pg_url, "movie:alien:1979")
        client.close()


def _scans(url: str, library: int) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pgqueuer_log WHERE entrypoint = 'library_scan'"
            " AND status = 'successful'"
        ).fetchone()
    return int(row[0]) if row else 0


def _poster_ok(url: str, key: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT g.status FROM images g JOIN items i ON i.id = g.item_id"
            " WHERE i.key = %s AND g.kind = 'poster'",
            (key,),
        ).fetchone()
    return row == ("ok",)


def _versions(url: str, key: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM media_files f JOIN items i ON i.id = f.item_id WHERE i.key = %s",
            (key,),
        ).fetchone()
    return int(row[0]) if row else 0


def _can_limit_watches() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "sh", "-c",
         "echo 3 > /proc/sys/user/max_inotify_watches"],
        capture_output=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


@pytest.mark.skipif(
    not _can_limit_watches(),
    reason="needs unshare --user with a writable /proc/sys/user/max_inotify_watches"
    " (Linux >= 5.11 user namespaces) to lower the limit for the server alone",
)
def test_the_watch_limit_is_reported_and_periodic_scans_take_over(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    asyncio.run(migrate(fresh_pg_url))
    root = tmp_path / "films"
    for n in range(8):  # 9 folders to watch, 3 allowed
        (root / f"Film {n} ({2000 + n})").mkdir(parents=True)
        (root / f"Film {n} ({2000 + n})" / f"Film {n} ({2000 + n}).mkv").write_bytes(b"")
    port = free_port()
    argv = [
        "unshare", "--user", "--map-root-user", "sh", "-c",
        'echo 3 > /proc/sys/user/max_inotify_watches && exec "$@"', "sh",
        *granian_argv(port),
    ]  # fmt: skip
    env = env_for(fresh_pg_url, tmp_path / "d", REVENGE_LIBRARY__WATCH_FALLBACK_INTERVAL="1s")
    with run_server(argv, port, tmp_path, env) as server:
        client, admin = admin_client(server.base_url)
        make_library(client, admin, root)

        def reported() -> bool:
            """/health names the watch limit"""
            report = client.get("/health", headers=admin).json()
            watcher = report["services"]["library_watcher"]
            return report["status"] == "degraded" and not watcher["healthy"]

        wait_for(reported)
        error = client.get("/health", headers=admin).json()["services"]["library_watcher"]["error"]
        assert "watch limit" in error and "max_user_watches" in error
        (root / "Zulu (1964)").mkdir()
        (root / "Zulu (1964)" / "Zulu (1964).mkv").write_bytes(b"")
        wait_for(lambda: searchable(client, admin, "Zulu"))
        assert "watch limit" in server.output()
        client.close()
