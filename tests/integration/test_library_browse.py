"""The browse API over real HTTP: a Granian server (``revenge.app:app``) on a real socket,
real PostgreSQL. Rows are written by SQL directly (browse is tested, not scanning); users
are created through the admin API and sign in over HTTP.

Covers keyset pages (no duplicate, no miss, while rows are inserted), every sort with
NULLs, filters and totals (capped), grants (404 for what is not granted), item detail,
series/seasons/episodes, next up, continue watching, recently added and state changes.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

import httpx
import psycopg
import pytest
from pydantic import BaseModel

from revenge.modules.library.browse_routes import (
    ItemDetailOut,
    ItemList,
    ItemPage,
    SeasonList,
    StateOut,
)
from tests.conftest import _drop_database, _fresh_database
from tests.e2e.conftest import free_port, granian_argv, run_server

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "browse admin password"
PASSWORD = "browse user password"
FAST_ARGON2 = {
    "REVENGE_AUTH__ARGON2_TIME_COST": "1",
    "REVENGE_AUTH__ARGON2_MEMORY_KIB": "8192",
    "REVENGE_AUTH__ARGON2_PARALLELISM": "1",
}


@dataclass
class Site:
    client: httpx.Client
    db: psycopg.Connection[Any]
    admin: dict[str, str]
    url: str = ""
    last_username: str = ""

    def user(self) -> tuple[int, dict[str, str]]:
        """A new (non-admin) user, signed in: its id and auth header."""
        name = f"u{uuid.uuid4().hex[:10]}"
        made = self.client.post(
            "/api/v1/users", json={"username": name, "password": PASSWORD}, headers=self.admin
        )
        assert made.status_code == 201, made.text
        self.last_username = name
        login = self.client.post(
            "/api/v1/auth/login", json={"username": name, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        self.client.cookies.clear()
        return int(made.json()["id"]), {"authorization": f"Bearer {login.json()['token']}"}

    def grant(self, library_id: int, user_id: int) -> None:
        reply = self.client.put(
            f"/api/v1/libraries/{library_id}/grants/{user_id}", headers=self.admin
        )
        assert reply.status_code == 204, reply.text

    def library(self, kind: str = "movies") -> int:
        name = f"lib {uuid.uuid4().hex[:8]}"
        row = self.db.execute(
            "INSERT INTO libraries (name, kind) VALUES (%s, %s) RETURNING id", (name, kind)
        ).fetchone()
        assert row is not None
        library_id = int(row[0])
        root = f"/media/{uuid.uuid4().hex}"
        self.db.execute(
            "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, %s)",
            (library_id, root.encode(), root),
        )
        return library_id

    def movie(self, library_id: int, title: str, **values: Any) -> int:
        columns = ["library_id", "kind", "key", "title", "sort_title", *values]
        row = self.db.execute(
            f"INSERT INTO items ({', '.join(columns)}) VALUES"
            f" ({', '.join(['%s'] * len(columns))}) RETURNING id",
            [library_id, "movie", f"movie:{uuid.uuid4().hex}", title, title.lower(),
             *values.values()],
        ).fetchone()  # fmt: skip
        assert row is not None
        return int(row[0])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    import asyncio

    from revenge.wiring import migrate

    name, url = _fresh_database("revenge_browse")
    try:
        asyncio.run(migrate(url))
        port = free_port()
        env = {
            "REVENGE_DATABASE__URL": url,
            "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            **FAST_ARGON2,
        }
        tmp: Path = tmp_path_factory.mktemp("browse")
        with (
            run_server(granian_argv(port), port, tmp, env) as server,
            httpx.Client(base_url=server.base_url, timeout=30) as client,
            psycopg.connect(url, autocommit=True) as db,
        ):
            login = client.post(
                "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
            )
            assert login.status_code == 200, login.text
            client.cookies.clear()
            yield Site(client, db, {"authorization": f"Bearer {login.json()['token']}"}, url)
            assert "Traceback" not in server.output(), server.output()[-5000:]
    finally:
        _drop_database(name)


def conforms(model: type[BaseModel], body: Any) -> Any:
    """``body`` is what the OpenAPI document promises: the declared model accepts it, and
    every object has exactly the model's keys (nothing undocumented, nothing missing)."""
    model.model_validate(body)
    _same_keys(model, body)
    return body


def _same_keys(model: type[BaseModel], body: Any) -> None:
    assert isinstance(body, dict) and set(body) == set(model.model_fields), (model, body)
    for name, field in model.model_fields.items():
        inner = _model_of(field.annotation)
        value = body[name]
        if inner is None or value is None:
            continue
        for element in value if isinstance(value, list) else [value]:
            _same_keys(inner, element)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def problem(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    assert body["code"] == code
    return body


def walk(
    site: Site, headers: dict[str, str], path: str = "/api/v1/movies", **params: Any
) -> list[dict[str, Any]]:
    """Every page of a list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10_000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        reply = site.client.get(path, params=query, headers=headers)
        assert reply.status_code == 200, reply.text
        body = conforms(ItemPage, reply.json())
        assert (body["total"] is None) == (cursor is not None)
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


SORT_COLUMN = {"title": "title", "year": "year", "rating": "rating", "runtime": "runtime_seconds",
               "date_added": "date_added"}  # fmt: skip


def sort_key(item: dict[str, Any], sort: str, desc: bool) -> tuple[Any, ...]:
    """NULLs last in both directions, then by id in the same direction."""
    value = item[SORT_COLUMN[sort]]
    if sort == "title":
        value = value.lower()
    if sort == "date_added":
        value = datetime.fromisoformat(value).timestamp()
    sign = -1 if desc else 1
    if value is None:
        return (1, 0, sign * item["id"])
    if isinstance(value, str):
        return (0, value, sign * item["id"]) if not desc else (0, _inverted(value), -item["id"])
    return (0, sign * value, sign * item["id"])


def _inverted(text: str) -> tuple[int, ...]:
    return (*(-b for b in text.encode()), 1)


# -- tests ------------------------------------------------------------------------------------


def test_pages_cover_every_movie_once_in_every_order_while_movies_are_added(site: Site) -> None:
    lib = site.library()
    rng = random.Random(10)
    before = set()
    for _ in range(300):
        before.add(
            site.movie(
                lib, f"Film {rng.randrange(60):03d}",  # repeated titles: ties broken by id
                year=rng.choice([None, *range(1990, 2000)]),
                rating=rng.choice([None, 5.5, 7.25, 8.0]),
                runtime_seconds=rng.choice([None, 5400, 6000]),
            )
        )  # fmt: skip
    uid, user = site.user()
    site.grant(lib, uid)
    stop = threading.Event()
    added: list[int] = []

    def insert() -> None:
        with psycopg.connect(site.db.info.dsn, autocommit=True) as conn:
            other = Site(site.client, conn, site.admin)
            while not stop.is_set():
                added.append(other.movie(lib, f"Film {rng.randrange(60):03d}",
                                         year=rng.choice([None, 1995]), rating=None))  # fmt: skip

    writer = threading.Thread(target=insert)
    writer.start()
    walks = {}
    try:
        for sort in ("title", "year", "rating", "runtime", "date_added"):
            for order in ("asc", "desc"):
                walks[sort, order] = walk(site, user, sort=sort, order=order, limit=23)
    finally:
        stop.set()
        writer.join()
    assert added, "the writer added nothing while the pages were read"
    for (sort, order), items in walks.items():
        ids = [i["id"] for i in items]
        assert len(ids) == len(set(ids)), f"{sort} {order}: duplicates"
        assert before <= set(ids), f"{sort} {order}: missed {before - set(ids)}"
        assert set(ids) <= before | set(added)
        keys = [sort_key(i, sort, order == "desc") for i in items]
        assert keys == sorted(keys), f"{sort} {order}: out of order"
    first = site.client.get("/api/v1/movies", params={"limit": 1}, headers=user).json()
    assert first["total"] == 300 + len(added) and not first["total_capped"]


def test_null_values_come_last_in_both_directions(site: Site) -> None:
    lib = site.library()
    a = site.movie(lib, "A", year=2001, rating=7.3)
    b = site.movie(lib, "B", year=None, rating=None)
    c = site.movie(lib, "C", year=1999, rating=9.0)
    d = site.movie(lib, "D", year=None, rating=7.3)
    e = site.movie(lib, "E", year=2001, rating=None)
    uid, user = site.user()
    site.grant(lib, uid)
    expected = {
        ("year", "asc"): [c, a, e, b, d],
        ("year", "desc"): [e, a, c, d, b],
        ("rating", "asc"): [a, d, c, b, e],
        ("rating", "desc"): [c, d, a, e, b],
        ("title", "asc"): [a, b, c, d, e],
        ("title", "desc"): [e, d, c, b, a],
    }
    for (sort, order), ids in expected.items():
        for limit in (1, 2, 5):  # page ends inside, at and across the NULL boundary
            got = [i["id"] for i in walk(site, user, sort=sort, order=order, limit=limit)]
            assert got == ids, (sort, order, limit)
    shown = site.client.get("/api/v1/movies", params={"sort": "rating"}, headers=user).json()
    assert [i["rating"] for i in shown["items"]] == [9.0, 7.3, 7.3, None, None]  # no 7.30000019
    added = walk(site, user, sort="date_added", order="asc", limit=2)
    assert [i["id"] for i in added] == [a, b, c, d, e]  # added in that order


def test_filters_and_their_totals(site: Site) -> None:
    lib = site.library()
    uid, user = site.user()
    site.grant(lib, uid)
    drama = site.movie(lib, "Drama 1990", year=1990, genres=["Drama"])
    both = site.movie(lib, "Drama Crime 1995", year=1995, genres=["Drama", "Crime"])
    crime = site.movie(lib, "Crime 2005", year=2005, genres=["Crime"])
    none = site.movie(lib, "Unknown", genres=[])
    root = site.db.execute("SELECT id FROM library_roots WHERE library_id = %s", (lib,)).fetchone()
    assert root is not None
    for item, width, height in ((drama, 3840, 1600), (both, 1920, 800), (crime, 720, 576)):
        path = f"/media/{uuid.uuid4().hex}.mkv"
        site.db.execute(
            "INSERT INTO media_files (item_id, library_id, root_id, path, path_text, size,"
            " mtime_ns, inode, device, probe_status, width, height)"
            " VALUES (%s, %s, %s, %s, %s, 1, 0, 1, 1, 'ok', %s, %s)",
            (item, lib, root[0], path.encode(), path, width, height),
        )

    def ids(**params: Any) -> tuple[list[int], int]:
        reply = site.client.get("/api/v1/movies", params=params, headers=user)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        return [i["id"] for i in body["items"]], body["total"]

    assert ids(genre="Drama") == ([drama, both], 2)
    assert ids(genre=["Drama", "Crime"]) == ([both], 1)
    assert ids(year_min=1991, year_max=2005) == ([crime, both], 2)
    assert ids(year_min=2006, year_max=1990) == ([], 0)  # an empty range matches nothing
    assert ids(resolution="4k") == ([drama], 1)  # 3840x1600: 4K by its width
    assert ids(resolution="1080p") == ([both], 1)  # scope 1920x800
    assert ids(resolution="sd") == ([crime], 1)
    put = site.client.put(f"/api/v1/items/{crime}/state", json={"played": True}, headers=user)
    assert put.status_code == 200, put.text
    site.client.put(f"/api/v1/items/{none}/state", json={"favourite": True}, headers=user)
    assert ids(watched="true") == ([crime], 1)
    assert ids(watched="false", sort="title") == ([drama, both, none], 3)
    assert ids(favourite="true") == ([none], 1)
    assert ids(library=lib, sort="title", limit=2)[1] == 4
    problem(
        site.client.get("/api/v1/movies", params={"limit": 0}, headers=user),
        422, "validation_failed",
    )  # fmt: skip
    problem(
        site.client.get("/api/v1/movies", params={"sort": "colour"}, headers=user),
        422, "validation_failed",
    )  # fmt: skip


def test_a_filtered_total_stops_counting_at_ten_thousand(site: Site) -> None:
    lib = site.library()
    site.db.execute(
        "INSERT INTO items (library_id, kind, key, title, sort_title, genres)"
        " SELECT %s, 'movie', 'm' || g, 'M ' || g, 'm ' || g, ARRAY['Bulk']"
        " FROM generate_series(1, 10050) g",
        (lib,),
    )
    uid, user = site.user()
    site.grant(lib, uid)
    body = site.client.get("/api/v1/movies", params={"limit": 5}, headers=user).json()
    assert (body["total"], body["total_capped"]) == (10050, False)  # item_counts
    body = site.client.get(
        "/api/v1/movies", params={"limit": 5, "genre": "Bulk"}, headers=user
    ).json()
    assert (body["total"], body["total_capped"]) == (10000, True)
    assert len(body["items"]) == 5 and body["next_cursor"]


def test_what_is_not_granted_is_not_found(site: Site) -> None:
    lib = site.library()
    movie = site.movie(lib, "Secret")
    uid, user = site.user()
    empty = site.client.get("/api/v1/movies", headers=user).json()
    assert empty == {"items": [], "next_cursor": None, "total": 0, "total_capped": False}
    problem(site.client.get(f"/api/v1/items/{movie}", headers=user), 404, "item_not_found")
    problem(
        site.client.put(f"/api/v1/items/{movie}/state", json={"played": True}, headers=user),
        404, "item_not_found",
    )  # fmt: skip
    problem(
        site.client.get("/api/v1/movies", params={"library": lib}, headers=user),
        404, "library_not_found",
    )  # fmt: skip
    problem(
        site.client.get("/api/v1/recently-added", params={"library": lib}, headers=user),
        404, "library_not_found",
    )  # fmt: skip
    # only administrators grant
    problem(
        site.client.put(f"/api/v1/libraries/{lib}/grants/{uid}", headers=user),
        403, "admin_required",
    )  # fmt: skip
    site.grant(lib, uid)
    site.grant(lib, uid)  # idempotent
    assert site.client.get(f"/api/v1/items/{movie}", headers=user).json()["title"] == "Secret"
    listed = site.client.get(f"/api/v1/libraries/{lib}/grants", headers=site.admin).json()
    assert [g["user_id"] for g in listed["items"]] == [uid]
    gone = site.client.delete(f"/api/v1/libraries/{lib}/grants/{uid}", headers=site.admin)
    assert gone.status_code == 204
    problem(site.client.get(f"/api/v1/items/{movie}", headers=user), 404, "item_not_found")
    problem(
        site.client.put(f"/api/v1/libraries/{lib}/grants/999999999", headers=site.admin),
        404, "user_not_found",
    )  # fmt: skip
    problem(
        site.client.put(f"/api/v1/libraries/999999999/grants/{uid}", headers=site.admin),
        404, "library_not_found",
    )  # fmt: skip
    problem(site.client.get("/api/v1/items/999999999", headers=site.admin), 404, "item_not_found")
    problem(site.client.get("/api/v1/items/abc", headers=site.admin), 422, "validation_failed")
    # the administrator sees everything without a grant
    assert site.client.get(f"/api/v1/items/{movie}", headers=site.admin).status_code == 200


def test_state_changes_and_their_validation(site: Site) -> None:
    lib = site.library()
    movie = site.movie(lib, "Stateful", runtime_seconds=6000)
    uid, user = site.user()
    site.grant(lib, uid)
    url = f"/api/v1/items/{movie}/state"
    for bad, field in (
        ({"position_ms": -1}, "position_ms"),
        ({"position_ms": "12"}, "position_ms"),  # a body's JSON types are strict
        ({"played": "yes"}, "played"),
        ({}, ""),
        ({"position_ms": 10**15}, "position_ms"),
    ):
        body = problem(site.client.put(url, json=bad, headers=user), 422, "validation_failed")
        assert body["field"] == field, body
    state = conforms(
        StateOut, site.client.put(url, json={"position_ms": 120_000}, headers=user).json()
    )
    assert state["position_ms"] == 120_000 and not state["played"] and state["last_played_at"]
    resume = conforms(ItemList, site.client.get("/api/v1/continue-watching", headers=user).json())[
        "items"
    ]
    assert [i["id"] for i in resume] == [movie] and resume[0]["user"]["position_ms"] == 120_000
    state = site.client.put(url, json={"played": True}, headers=user).json()
    assert (state["played"], state["position_ms"], state["play_count"]) == (True, 0, 1)
    state = site.client.put(url, json={"played": True, "favourite": True}, headers=user).json()
    assert (state["play_count"], state["favourite"]) == (1, True)  # already played: no +1
    assert site.client.get("/api/v1/continue-watching", headers=user).json()["items"] == []
    state = site.client.put(url, json={"played": False}, headers=user).json()
    assert (state["played"], state["play_count"], state["favourite"]) == (False, 1, True)
    # someone else's state is theirs
    other_id, other = site.user()
    site.grant(lib, other_id)
    detail = site.client.get(f"/api/v1/items/{movie}", headers=other).json()
    assert detail["user"] == {
        "position_ms": 0, "played": False, "favourite": False, "play_count": 0,
        "last_played_at": None,
    }  # fmt: skip


def _show(site: Site, lib: int, title: str, seasons: int, episodes: int) -> dict[str, Any]:
    key = f"series:{uuid.uuid4().hex}"
    row = site.db.execute(
        "INSERT INTO items (library_id, kind, key, title, sort_title, year)"
        " VALUES (%s, 'series', %s, %s, %s, 2010) RETURNING id",
        (lib, key, title, title.lower()),
    ).fetchone()
    assert row is not None
    series = int(row[0])
    out: dict[str, Any] = {"id": series, "seasons": {}, "episodes": {}}
    for s in range(1, seasons + 1):
        row = site.db.execute(
            "INSERT INTO items (library_id, kind, key, title, sort_title, parent_id, series_id,"
            " season_number) VALUES (%s, 'season', %s, %s, %s, %s, %s, %s) RETURNING id",
            (lib, f"{key}:s{s}", f"Season {s}", f"season {s}", series, series, s),
        ).fetchone()
        assert row is not None
        out["seasons"][s] = int(row[0])
        for e in range(1, episodes + 1):
            row = site.db.execute(
                "INSERT INTO items (library_id, kind, key, title, sort_title, parent_id,"
                " series_id, season_number, episode_number)"
                " VALUES (%s, 'episode', %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (lib, f"{key}:s{s}:e{e}", f"Ep {e}", f"ep {e}", out["seasons"][s], series, s, e),
            ).fetchone()
            assert row is not None
            out["episodes"][(s, e)] = int(row[0])
    return out


def test_series_seasons_episodes_and_next_up(site: Site) -> None:
    lib = site.library("tv")
    uid, user = site.user()
    site.grant(lib, uid)
    lost = _show(site, lib, "Lost", 2, 3)
    dark = _show(site, lib, "Dark", 1, 2)
    series = site.client.get("/api/v1/series", params={"library": lib}, headers=user).json()
    assert [s["title"] for s in series["items"]] == ["Dark", "Lost"] and series["total"] == 2
    seasons = site.client.get(f"/api/v1/series/{lost['id']}/seasons", headers=user).json()
    conforms(SeasonList, seasons)
    assert [(s["season_number"], s["episode_count"]) for s in seasons["items"]] == [(1, 3), (2, 3)]
    episodes = site.client.get(f"/api/v1/seasons/{lost['seasons'][2]}/episodes", headers=user)
    assert [e["episode_number"] for e in episodes.json()["items"]] == [1, 2, 3]
    assert episodes.json()["items"][0]["series_title"] == "Lost"
    problem(site.client.get(f"/api/v1/series/{lost['seasons'][1]}/seasons", headers=user),
            404, "item_not_found")  # fmt: skip
    detail = conforms(
        ItemDetailOut, site.client.get(f"/api/v1/items/{lost['id']}", headers=user).json()
    )
    assert [s["id"] for s in detail["seasons"]] == [lost["seasons"][1], lost["seasons"][2]]
    detail = site.client.get(f"/api/v1/items/{lost['seasons'][1]}", headers=user).json()
    assert [e["episode_number"] for e in detail["episodes"]] == [1, 2, 3]

    assert site.client.get("/api/v1/next-up", headers=user).json()["items"] == []

    def play(item: int) -> None:
        reply = site.client.put(f"/api/v1/items/{item}/state", json={"played": True}, headers=user)
        assert reply.status_code == 200, reply.text

    def next_up(**params: Any) -> list[tuple[str | None, int | None, int | None]]:
        reply = site.client.get("/api/v1/next-up", params=params, headers=user)
        assert reply.status_code == 200, reply.text
        conforms(ItemList, reply.json())
        return [(i["series_title"], i["season_number"], i["episode_number"])
                for i in reply.json()["items"]]  # fmt: skip

    play(lost["episodes"][(1, 1)])
    assert next_up() == [("Lost", 1, 2)]
    play(dark["episodes"][(1, 1)])
    assert next_up() == [("Dark", 1, 2), ("Lost", 1, 2)]  # latest watched first
    play(lost["episodes"][(1, 3)])  # skipped one: next is after the latest played
    assert next_up() == [("Lost", 2, 1), ("Dark", 1, 2)]
    play(lost["episodes"][(2, 2)])
    play(lost["episodes"][(1, 3)])  # a rewatch of an earlier one: it is now the latest
    assert next_up(series=lost["id"]) == [("Lost", 2, 1)]
    play(dark["episodes"][(1, 2)])  # Dark finished: nothing next
    assert next_up(limit=5) == [("Lost", 2, 1)]
    reply = site.client.put(
        f"/api/v1/items/{dark['episodes'][(1, 2)]}/state", json={"played": False}, headers=user
    )
    assert reply.status_code == 200, reply.text
    assert next_up() == [("Lost", 2, 1), ("Dark", 1, 2)]  # back to the one played before
    # another writer of user_item_state (playback's progress) moves next up as well
    site.db.execute(
        "UPDATE user_item_state SET played = true, last_played_at = now()"
        " WHERE user_id = %s AND item_id = %s",
        (uid, dark["episodes"][(1, 2)]),
    )
    assert next_up() == [("Lost", 2, 1)]
    # a whole season marked played
    reply = site.client.put(
        f"/api/v1/items/{lost['seasons'][2]}/state", json={"played": True}, headers=user
    )
    assert reply.status_code == 200, reply.text
    seasons = site.client.get(f"/api/v1/series/{lost['id']}/seasons", headers=user).json()
    assert [s["played_count"] for s in seasons["items"]] == [2, 3]
    problem(
        site.client.put(f"/api/v1/items/{lost['id']}/state", json={"position_ms": 5},
                        headers=user),
        422, "state_invalid",
    )  # fmt: skip
    recent = site.client.get(
        "/api/v1/recently-added", params={"kind": "episode", "limit": 3}, headers=user
    ).json()["items"]
    newest = sorted(dark["episodes"].values(), reverse=True)[:2]
    assert [i["id"] for i in recent] == [*newest, max(lost["episodes"].values())]


def test_item_detail_has_files_streams_chapters_images_and_people(site: Site) -> None:
    lib = site.library()
    movie = site.movie(
        lib, "Heat", year=1995, overview="A heist.",
        people='[{"name": "Al Pacino", "role": "Vincent Hanna", "type": "actor", "order": 0}]',
    )  # fmt: skip
    root = site.db.execute("SELECT id FROM library_roots WHERE library_id = %s", (lib,)).fetchone()
    assert root is not None
    path = f"/media/{uuid.uuid4().hex}/Heat (1995).mkv"
    row = site.db.execute(
        "INSERT INTO media_files (item_id, library_id, root_id, path, path_text, size, mtime_ns,"
        " inode, device, probe_status, container, duration, width, height, video_codec)"
        " VALUES (%s, %s, %s, %s, %s, 1000, 0, 7, 1, 'ok', 'matroska', 10227.5, 1920, 1080,"
        " 'h264') RETURNING id",
        (movie, lib, root[0], path.encode(), path),
    ).fetchone()
    assert row is not None
    file_id = int(row[0])
    site.db.execute(
        "INSERT INTO media_streams (file_id, index, kind, codec, language, is_default, channels)"
        " VALUES (%s, 0, 'video', 'h264', NULL, true, NULL), (%s, 1, 'audio', 'aac', 'eng',"
        " true, 6)",
        (file_id, file_id),
    )
    site.db.execute(
        'INSERT INTO media_chapters (file_id, index, start, "end", title)'
        " VALUES (%s, 0, 0, 600, 'Opening')",
        (file_id,),
    )
    poster = site.db.execute(
        "INSERT INTO images (item_id, kind, source, source_path, status, blurhash)"
        " VALUES (%s, 'poster', 'sidecar', %s, 'ok', 'LEHV6n') RETURNING id",
        (movie, b"/media/poster.jpg"),
    ).fetchone()
    assert poster is not None
    uid, user = site.user()
    site.grant(lib, uid)
    detail = conforms(ItemDetailOut, site.client.get(f"/api/v1/items/{movie}", headers=user).json())
    assert detail["overview"] == "A heist." and detail["people"][0]["name"] == "Al Pacino"
    [file] = detail["files"]
    assert file["name"] == "Heat (1995).mkv" and file["path"] is None  # no server path to users
    assert [s["kind"] for s in file["streams"]] == ["video", "audio"]
    assert file["streams"][1]["channels"] == 6 and file["chapters"][0]["title"] == "Opening"
    assert detail["images"][0]["url"] == f"/api/v1/images/{poster[0]}"
    assert detail["poster"] == {
        "id": poster[0],
        "blurhash": "LEHV6n",
        "url": detail["images"][0]["url"],
    }
    admin_view = site.client.get(f"/api/v1/items/{movie}", headers=site.admin).json()
    assert admin_view["files"][0]["path"] == path


def test_bad_cursors_are_refused(site: Site) -> None:
    lib = site.library()
    for n in range(3):
        site.movie(lib, f"C{n}", year=2000 + n)
    first = site.client.get(
        "/api/v1/movies", params={"limit": 1, "sort": "year"}, headers=site.admin
    ).json()
    cursor = first["next_cursor"]
    for params in (
        {"cursor": cursor, "sort": "title"},  # another sort's cursor
        {"cursor": cursor, "sort": "year", "order": "asc"},  # another order's
        {"cursor": "bm90LWEtY3Vyc29y"},
        {"cursor": "x"},
    ):
        problem(
            site.client.get("/api/v1/movies", params=params, headers=site.admin),
            422, "cursor_invalid",
        )  # fmt: skip
    problem(
        site.client.get("/api/v1/movies", params={"cursor": "a b"}, headers=site.admin),
        422, "validation_failed",
    )  # fmt: skip


def test_the_cli_grants_and_revokes(site: Site) -> None:
    lib = site.library()
    movie = site.movie(lib, "Granted by the CLI")
    uid, user = site.user()
    env = {**os.environ, "REVENGE_DATABASE__URL": site.url}
    env = {k: v for k, v in env.items() if not k.startswith("REVENGE_TEST_")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from revenge.cli import main; raise SystemExit(main())",
             "library", *args],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    done = cli("grant", str(lib), site.last_username)
    assert done.returncode == 0, done.stderr
    assert f"granted to user {uid}" in done.stdout
    assert site.client.get(f"/api/v1/items/{movie}", headers=user).status_code == 200
    assert "already" in cli("grant", str(lib), str(uid)).stdout
    done = cli("revoke", str(lib), str(uid))
    assert done.returncode == 0 and f"revoked from user {uid}" in done.stdout, done.stderr
    problem(site.client.get(f"/api/v1/items/{movie}", headers=user), 404, "item_not_found")
    done = cli("grant", str(lib), "nobody-by-this-name")
    assert done.returncode != 0 and "user_not_found" in done.stderr
