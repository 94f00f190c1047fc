"""``GET /api/v1/images/{id}`` over real HTTP: ``granian revenge.app`` on a free port, its
in-process worker running the real ``library_scan`` and ``images_process`` jobs on posters
made by ffmpeg. Checks the nearest variant (WebP), the strong ETag and 304, ``immutable``
and ``private``, 404 for an image of a library the user was not granted (the same answer
as an id that does not exist), 401 without a credential, 422 for a bad width, and that
variants live in the data folder while the media tree is never written."""

from __future__ import annotations

import asyncio
import io
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from PIL import Image

from revenge.wiring import migrate
from tests.e2e.conftest import free_port, granian_argv, run_server

pytestmark = pytest.mark.e2e

PASSWORD = "e2e admin password"


def poster(path: Path, size: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}",
         "-frames:v", "1", str(path)],
        check=True,
    )  # fmt: skip


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def wait_images(url: str, count: int, timeout: float = 60.0) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT g.id, i.library_id, g.status FROM images g JOIN items i"
                " ON i.id = g.item_id ORDER BY i.library_id"
            ).fetchall()
        if len(rows) == count and all(r[2] != "pending" for r in rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"images not processed in {timeout}s: {rows}")
        time.sleep(0.2)


def test_images_are_served_cached_and_hidden_from_ungranted_users(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    asyncio.run(migrate(fresh_pg_url))
    shared, hidden, data = tmp_path / "shared", tmp_path / "hidden", tmp_path / "data"
    poster(shared / "Up (2009)" / "poster.jpg", "500x750")
    (shared / "Up (2009)" / "Up (2009).mkv").write_bytes(b"")
    poster(hidden / "Heat (1995)" / "poster.jpg", "400x600")
    (hidden / "Heat (1995)" / "Heat (1995).mkv").write_bytes(b"")
    before = snapshot(shared) | snapshot(hidden)
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": fresh_pg_url,
        "REVENGE_SERVER__DATA_DIR": str(data),
        "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        "REVENGE_AUTH__ARGON2_MEMORY_KIB": "8192",
        "REVENGE_AUTH__ARGON2_TIME_COST": "1",
    }
    with run_server(granian_argv(port), port, tmp_path, env) as server:
        client = httpx.Client(base_url=server.base_url, timeout=10)
        token = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
        ).json()["token"]
        admin = {"authorization": f"Bearer {token}"}
        client.cookies.clear()
        libraries = []
        for root in (shared, hidden):
            made = client.post(
                "/api/v1/libraries",
                json={"name": root.name, "kind": "movies", "roots": [str(root)]},
                headers=admin,
            )
            assert made.status_code == 201, made.text
            libraries.append(made.json()["id"])
            assert (
                client.post(
                    f"/api/v1/libraries/{made.json()['id']}/scan", headers=admin
                ).status_code
                == 202
            )
        created = client.post(
            "/api/v1/users",
            json={"username": "viewer", "password": "viewer password 1"},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        with psycopg.connect(fresh_pg_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO library_grants (user_id, library_id) VALUES (%s, %s)",
                (created.json()["id"], libraries[0]),
            )
        login = client.post(
            "/api/v1/auth/login", json={"username": "viewer", "password": "viewer password 1"}
        )
        viewer = {"authorization": f"Bearer {login.json()['token']}"}
        client.cookies.clear()
        rows = wait_images(fresh_pg_url, 2)
        (mine, _, status), (theirs, _, _) = rows
        assert status == "ok"

        with psycopg.connect(fresh_pg_url) as conn:
            version = conn.execute(
                "SELECT encode(substr(content_hash, 1, 8), 'hex') FROM images WHERE id = %s",
                (mine,),
            ).fetchone()[0]  # type: ignore[index]
        reply = client.get(
            f"/api/v1/images/{mine}", params={"w": 200, "v": version}, headers=viewer
        )
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"] == "image/webp"
        with Image.open(io.BytesIO(reply.content)) as img:
            assert img.size == (240, 360)  # the narrowest variant at least 200 wide
        etag = reply.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        caching = reply.headers["cache-control"]
        assert caching == "private, max-age=31536000, immutable"
        assert reply.headers.get_list("cache-control") == [caching]  # one, not two
        again = client.get(
            f"/api/v1/images/{mine}", params={"w": 200}, headers={**viewer, "if-none-match": etag}
        )
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        # a bare id (or a stale version) may change content: revalidated, not immutable
        for params in ({"w": 9000}, {"w": 9000, "v": "0123456789abcdef"}):
            bare = client.get(f"/api/v1/images/{mine}", params=params, headers=viewer)
            assert bare.headers["cache-control"] == "private, no-cache"
            assert bare.headers.get_list("cache-control") == ["private, no-cache"]
        widest = client.get(f"/api/v1/images/{mine}", params={"w": 9000}, headers=viewer)
        with Image.open(io.BytesIO(widest.content)) as img:
            assert img.size == (500, 750)
        assert widest.headers["etag"] != etag
        assert client.head(f"/api/v1/images/{mine}", headers=viewer).status_code == 200

        # not granted: the same 404 as an id that does not exist; the admin sees it
        for image_id in (theirs, 999_999_999, "x1"):
            denied = client.get(f"/api/v1/images/{image_id}", headers=viewer)
            assert denied.status_code == 404, denied.text
            assert denied.headers["content-type"] == "application/problem+json"
            assert denied.json()["code"] == "image_not_found"
            assert "immutable" not in denied.headers.get("cache-control", "")
        assert client.get(f"/api/v1/images/{theirs}", headers=admin).status_code == 200
        assert client.get(f"/api/v1/images/{mine}").status_code == 401
        bad = client.get(f"/api/v1/images/{mine}", params={"w": 0}, headers=viewer)
        assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"
        client.close()
    assert list(data.glob("images/*/*/*.webp"))
    assert snapshot(shared) | snapshot(hidden) == before
