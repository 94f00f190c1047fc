"""``/api/v1/libraries`` on the real app: admin-only changes, root problems, scans as jobs
(run by the app's in-process worker), two scan requests at once, grants on reads."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from revenge.wiring import migrate

from .test_api_search import RunningApp, assert_problem, bearer, running_app

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

BASE = "/api/v1/libraries"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(pg_url: str, data_dir: Path) -> AsyncIterator[RunningApp]:
    await migrate(pg_url)
    async with running_app(pg_url, REVENGE_SERVER__DATA_DIR=str(data_dir)) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin(api: RunningApp) -> dict[str, str]:
    return bearer(await api.token(admin=True))


def tree(root: Path, *names: str) -> Path:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return root


async def create(api: RunningApp, admin: dict[str, str], root: Path, kind: str = "movies") -> Any:
    reply = await api.client.post(
        BASE,
        json={"name": f"lib {os.urandom(3).hex()}", "kind": kind, "roots": [str(root)]},
        headers=admin,
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


async def wait_job(api: RunningApp, admin: dict[str, str], job_id: int) -> dict[str, Any]:
    for _ in range(300):
        reply = await api.client.get(f"/api/v1/jobs/{job_id}", headers=admin)
        body: dict[str, Any] = reply.json()
        if body["state"] in ("succeeded", "failed"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {body}")


async def test_admin_creates_lists_changes_and_deletes(
    api: RunningApp, admin: dict[str, str], tmp_path: Path
) -> None:
    lib = await create(api, admin, tree(tmp_path / "a", "Up (2009)/Up (2009).mkv"))
    assert lib["kind"] == "movies" and lib["roots"] == [str(tmp_path / "a")]
    listed = (await api.client.get(BASE, headers=admin)).json()["items"]
    assert lib["id"] in [x["id"] for x in listed]
    (tmp_path / "b").mkdir()
    reply = await api.client.patch(
        f"{BASE}/{lib['id']}",
        json={
            "name": "Films",
            "roots": [str(tmp_path / "b")],
            "settings": {"missing_grace_days": 3},
        },
        headers=admin,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["roots"] == [str(tmp_path / "b")] and reply.json()["name"] == "Films"
    assert (await api.client.delete(f"{BASE}/{lib['id']}", headers=admin)).status_code == 204
    assert_problem(
        await api.client.get(f"{BASE}/{lib['id']}", headers=admin), 404, "library_not_found"
    )
    assert (tmp_path / "a" / "Up (2009)" / "Up (2009).mkv").exists()  # media files untouched


async def test_roots_are_refused_with_clear_problems(
    api: RunningApp, admin: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    (tmp_path / "file.mkv").write_bytes(b"")
    taken = await create(api, admin, tree(tmp_path / "taken", "X (2000)/X (2000).mkv"))
    cases = [
        ("media/movies", 422, "validation_failed"),  # the schema's pattern: absolute
        (str(tmp_path / "nope"), 409, "root_missing"),
        (str(tmp_path / "file.mkv"), 409, "root_not_directory"),
        (str(data_dir), 409, "root_in_data_dir"),
        (str(tmp_path / "taken" / "X (2000)"), 409, "root_overlaps"),  # inside another's
        (str(tmp_path), 409, "root_overlaps"),  # around another's
    ]
    for root, status, code in cases:
        reply = await api.client.post(
            BASE, json={"name": f"n{os.urandom(3).hex()}", "kind": "movies", "roots": [root]},
            headers=admin,
        )  # fmt: skip
        assert_problem(reply, status, code)
    reply = await api.client.post(
        BASE, json={"name": taken["name"].upper(), "kind": "tv", "roots": [str(tmp_path / "nope2")]},
        headers=admin,
    )  # fmt: skip
    assert reply.status_code in (409, 422)
    (tmp_path / "other").mkdir()
    reply = await api.client.post(
        BASE, json={"name": taken["name"].upper(), "kind": "tv", "roots": [str(tmp_path / "other")]},
        headers=admin,
    )  # fmt: skip
    assert_problem(reply, 409, "library_name_taken")
    for body in ({"name": "x", "kind": "music", "roots": ["/"]}, {"name": "", "kind": "tv"}, [1]):
        assert_problem(
            await api.client.post(BASE, json=body, headers=admin), 422, "validation_failed"
        )
    if os.geteuid() != 0:  # root reads through permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o000)
        reply = await api.client.post(
            BASE, json={"name": "l", "kind": "tv", "roots": [str(locked)]}, headers=admin
        )
        assert_problem(reply, 409, "root_unreadable")


async def test_users_see_only_granted_libraries_and_change_none(
    api: RunningApp, admin: dict[str, str], tmp_path: Path
) -> None:
    lib = await create(api, admin, tree(tmp_path, "Up (2009)/Up (2009).mkv"))
    token = await api.token()
    user = bearer(token)
    assert_problem(await api.client.post(BASE, json={}, headers=user), 403, "admin_required")
    assert_problem(
        await api.client.delete(f"{BASE}/{lib['id']}", headers=user), 403, "admin_required"
    )
    assert_problem(
        await api.client.post(f"{BASE}/{lib['id']}/scan", headers=user), 403, "admin_required"
    )
    assert_problem(
        await api.client.get(f"{BASE}/{lib['id']}", headers=user), 404, "library_not_found"
    )
    me = (await api.client.get("/api/v1/me", headers=user)).json()
    from revenge.infra.db import Database, PoolConfig

    db = Database(api.url, PoolConfig(min_conns=1, max_conns=1))
    await db.start()
    try:
        await db.execute(
            "INSERT INTO library_grants (user_id, library_id) VALUES (%s, %s)",
            (me["id"], lib["id"]),
        )
    finally:
        await db.close()
    shown = (await api.client.get(f"{BASE}/{lib['id']}", headers=user)).json()
    assert shown == {"id": lib["id"], "name": lib["name"], "kind": "movies"}  # no roots
    assert [x["id"] for x in (await api.client.get(BASE, headers=user)).json()["items"]] == [
        lib["id"]
    ]
    assert (await api.client.get(BASE)).status_code == 401


async def test_a_scan_runs_as_a_job_and_a_second_request_is_told(
    api: RunningApp, admin: dict[str, str], tmp_path: Path
) -> None:
    names = [f"Film {n} ({1950 + n})/Film {n} ({1950 + n}).mkv" for n in range(40)]
    lib = await create(api, admin, tree(tmp_path, *names))
    first, second = await asyncio.gather(
        api.client.post(f"{BASE}/{lib['id']}/scan", headers=admin),
        api.client.post(f"{BASE}/{lib['id']}/scan", headers=admin),
    )
    assert first.status_code == second.status_code == 202
    answers = sorted([first.json()["already"], second.json()["already"]])
    job_ids = {first.json()["job_id"], second.json()["job_id"]}
    assert len(job_ids) == 1 and answers == [False, True]  # one runs, the other is told
    job = await wait_job(api, admin, job_ids.pop())
    assert job["state"] == "succeeded", job
    assert job["progress"]["message"].startswith("done: 40 files")
    shown = (await api.client.get(f"{BASE}/{lib['id']}", headers=admin)).json()
    assert shown["last_scan"]["new"] == 40 and shown["last_scan"]["outcome"] == "done"
    hits = await api.client.get("/api/v1/search", params={"q": "Film 7"}, headers=admin)
    assert hits.status_code == 200 and any(h["title"] == "Film 7" for h in hits.json()["hits"])
    again = (await api.client.post(f"{BASE}/{lib['id']}/scan", headers=admin)).json()
    assert again["already"] is False and again["job_id"] != job["id"]
    job = await wait_job(api, admin, again["job_id"])
    shown = (await api.client.get(f"{BASE}/{lib['id']}", headers=admin)).json()
    assert shown["last_scan"]["unchanged"] == 40
    cancel = await api.client.delete(f"{BASE}/{lib['id']}/scan", headers=admin)
    assert cancel.status_code == 202


async def test_bad_ids_are_problems(api: RunningApp, admin: dict[str, str]) -> None:
    for bad in ("x", "99999999999999999999", "-1", "\uff11"):  # fullwidth 1: isdigit, not ASCII
        assert_problem(
            await api.client.get(f"{BASE}/{bad}", headers=admin), 404, "library_not_found"
        )
    assert_problem(
        await api.client.post(f"{BASE}/424242/scan", headers=admin), 404, "library_not_found"
    )
    reply = await api.client.post(
        BASE, content=b"{", headers={**admin, "content-type": "application/json"}
    )
    assert_problem(reply, 400, "malformed_json")


async def test_a_title_from_the_files_tags_reaches_search(
    api: RunningApp, admin: dict[str, str], tmp_path: Path
) -> None:
    """media_probe (run by the app's worker after the scan) gives the item the container's
    title, and the search index follows."""
    import subprocess

    clip = tmp_path / "Vid (2011)" / "Vid (2011).mkv"
    clip.parent.mkdir()
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1",
         "-metadata", "title=Quintessential Voyage", "-c:v", "libx264", "-preset", "ultrafast",
         str(clip)],
        check=True,
    )  # fmt: skip
    lib = await create(api, admin, tmp_path)
    job = (await api.client.post(f"{BASE}/{lib['id']}/scan", headers=admin)).json()
    assert (await wait_job(api, admin, job["job_id"]))["state"] == "succeeded"
    for _ in range(300):
        hits = await api.client.get(
            "/api/v1/search", params={"q": "Quintessential Voyage"}, headers=admin
        )
        if any(h["title"] == "Quintessential Voyage" for h in hits.json()["hits"]):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the probed title never reached search")


async def test_an_admin_edits_and_locks_metadata_and_search_follows(
    api: RunningApp, admin: dict[str, str], tmp_path: Path
) -> None:
    lib = await create(api, admin, tree(tmp_path, "Blue (1993)/Blue (1993).mkv"))
    job = (await api.client.post(f"{BASE}/{lib['id']}/scan", headers=admin)).json()
    assert (await wait_job(api, admin, job["job_id"]))["state"] == "succeeded"
    listed = await api.client.get("/api/v1/movies", params={"library": lib["id"]}, headers=admin)
    item_id = listed.json()["items"][0]["id"]
    url = f"/api/v1/items/{item_id}/metadata"
    reply = await api.client.patch(
        url, json={"title": "Trois Couleurs Bleu", "genres": ["Drama"], "rating": 7.5},
        headers=admin,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["title"] == "Trois Couleurs Bleu" and body["genres"] == ["Drama"]
    assert body["locked_fields"] == ["genres", "rating", "title"]
    assert body["field_sources"]["title"] == "user"
    shown = (await api.client.get(f"/api/v1/items/{item_id}", headers=admin)).json()
    assert shown["title"] == "Trois Couleurs Bleu"
    hits = await api.client.get("/api/v1/search", params={"q": "Couleurs Bleu"}, headers=admin)
    assert any(h["title"] == "Trois Couleurs Bleu" for h in hits.json()["hits"])
    # a rescan of the unchanged tree keeps the edit
    job = (await api.client.post(f"{BASE}/{lib['id']}/scan", headers=admin)).json()
    assert (await wait_job(api, admin, job["job_id"]))["state"] == "succeeded"
    shown = (await api.client.get(f"/api/v1/items/{item_id}", headers=admin)).json()
    assert shown["title"] == "Trois Couleurs Bleu"
    # unlock all
    reply = await api.client.patch(url, json={"locked_fields": []}, headers=admin)
    assert reply.status_code == 200 and reply.json()["locked_fields"] == []
    # refusals: the field named, an unknown item, a user
    for bad, field in (
        ({"year": 1066}, "year"),
        ({"rating": 11}, "rating"),
        ({"title": None}, "title"),
        ({"locked_fields": ["nonsense"]}, "locked_fields.0"),
    ):
        problem = assert_problem(
            await api.client.patch(url, json=bad, headers=admin), 422, "validation_failed"
        )
        assert problem["field"] == field, problem
    assert_problem(
        await api.client.patch("/api/v1/items/4242424242/metadata", json={}, headers=admin),
        404,
        "item_not_found",
    )
    user = bearer(await api.token())
    assert_problem(
        await api.client.patch(url, json={"title": "x"}, headers=user), 403, "admin_required"
    )
