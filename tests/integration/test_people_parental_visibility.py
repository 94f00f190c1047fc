"""Parental limits everywhere a user reaches items: a real Granian server, real PostgreSQL.

One library holds movies rated across the systems (MPAA, BBFC, FSK, none) and two series
(TV-MA and TV-PG) whose seasons and episodes carry no rating of their own. A user limited
to PG-13 sees only what suits 13: in lists and their totals, item detail, seasons and
episodes, next up, continue watching, recently added, images and playback. Blocking
unrated items hides those too; administrators are never limited; a change applies at once.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from revenge.modules.playback import repository as playback_repository
from tests.integration.test_library_browse import Site, site  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration

MOVIES = {"Family": "G", "Teen": "PG-13", "Brit": "gb:15", "German": "de:FSK 12",
          "Adult": "Rated R", "Nobody rated": None}  # fmt: skip
SEEN_BY_PG13 = {"Family", "Teen", "German", "Nobody rated"}


def titles(reply: Any) -> set[str]:
    assert reply.status_code == 200, reply.text
    return {item["title"] for item in reply.json()["items"]}


def set_limit(where: Site, user_id: int, body: dict[str, Any]) -> None:
    reply = where.client.put(f"/api/v1/users/{user_id}/parental", json=body, headers=where.admin)
    assert reply.status_code == 200, reply.text


def item(where: Site, library_id: int, kind: str, title: str, **values: Any) -> int:
    columns = ["library_id", "kind", "key", "title", "sort_title", *values]
    row = where.db.execute(
        f"INSERT INTO items ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
        " RETURNING id",
        [library_id, kind, f"{kind}:{uuid.uuid4().hex}", title, title.lower(), *values.values()],
    ).fetchone()
    assert row is not None
    return int(row[0])


def series(where: Site, library_id: int, title: str, rating: str) -> tuple[int, int, int]:
    """A series rated ``rating`` with one season and one episode, neither rated."""
    show = item(where, library_id, "series", title, content_rating=rating)
    season = item(where, library_id, "season", f"{title} S1", parent_id=show, series_id=show,
                  season_number=1)  # fmt: skip
    episode = item(where, library_id, "episode", f"{title} E1", parent_id=season,
                   series_id=show, season_number=1, episode_number=1)  # fmt: skip
    return show, season, episode


def add_file(where: Site, library_id: int, item_id: int) -> None:
    root = where.db.execute(
        "SELECT id FROM library_roots WHERE library_id = %s", (library_id,)
    ).fetchone()
    assert root is not None
    path = f"/media/{uuid.uuid4().hex}.mkv"
    where.db.execute(
        "INSERT INTO media_files (item_id, library_id, root_id, path, path_text, size,"
        " mtime_ns, inode, device, probe_status) VALUES (%s, %s, %s, %s, %s, 1, 1, 1, 1, 'ok')",
        (item_id, library_id, root[0], path.encode(), path),
    )


def playable(where: Site, user_id: int, item_id: int) -> bool:
    async def ask() -> bool:
        url = where.db.info.dsn
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            found = await playback_repository.playable_file(conn, user_id, False, item_id, None)
        return found is not None

    return asyncio.run(ask())


def test_a_limited_user_sees_nothing_above_the_limit_anywhere(site: Site) -> None:  # noqa: F811
    movies_lib, tv_lib = site.library("movies"), site.library("tv")
    ids = {title: item(site, movies_lib, "movie", title, content_rating=rating)
           for title, rating in MOVIES.items()}  # fmt: skip
    mature, mature_season, mature_episode = series(site, tv_lib, "Mature show", "TV-MA")
    _, _, kids_episode = series(site, tv_lib, "Kids show", "TV-PG")
    for movie in ("Adult", "Teen"):
        add_file(site, movies_lib, ids[movie])
    image = site.db.execute(
        "INSERT INTO images (item_id, kind, source, source_url, status)"
        " VALUES (%s, 'poster', 'remote', 'https://images.invalid/adult.jpg', 'ok') RETURNING id",
        (ids["Adult"],),
    ).fetchone()

    limited_id, limited = site.user()
    free_id, free = site.user()
    for library_id in (movies_lib, tv_lib):
        site.grant(library_id, limited_id)
        site.grant(library_id, free_id)
    # Progress on the R movie and the TV-MA episode before the limit was set.
    for who in (limited, free):
        for watched in (ids["Adult"], mature_episode, kids_episode):
            reply = site.client.put(
                f"/api/v1/items/{watched}/state", json={"position_ms": 60_000}, headers=who
            )
            assert reply.status_code == 200, reply.text
    set_limit(site, limited_id, {"max_rating": "PG-13"})

    scope = {"library": movies_lib}
    movies = site.client.get("/api/v1/movies", params=scope, headers=limited)
    assert titles(movies) == SEEN_BY_PG13
    assert movies.json()["total"] == len(SEEN_BY_PG13)  # the count follows the list
    assert titles(site.client.get("/api/v1/movies", params=scope, headers=free)) == set(MOVIES)
    shows = site.client.get("/api/v1/series", params={"library": tv_lib}, headers=limited)
    assert titles(shows) == {"Kids show"}
    for hidden in (ids["Adult"], ids["Brit"], mature, mature_season, mature_episode):
        reply = site.client.get(f"/api/v1/items/{hidden}", headers=limited)
        assert reply.status_code == 404, (hidden, reply.text)
        assert site.client.get(f"/api/v1/items/{hidden}", headers=free).status_code == 200
    assert site.client.get(f"/api/v1/items/{kids_episode}", headers=limited).status_code == 200
    seasons = site.client.get(f"/api/v1/series/{mature}/seasons", headers=limited)
    episodes = site.client.get(f"/api/v1/seasons/{mature_season}/episodes", headers=limited)
    assert seasons.status_code == 404 and episodes.status_code == 404
    state = site.client.put(
        f"/api/v1/items/{ids['Adult']}/state", json={"played": True}, headers=limited
    )
    assert state.status_code == 404
    resumed = titles(site.client.get("/api/v1/continue-watching", headers=limited))
    assert "Adult" not in resumed and "Mature show E1" not in resumed
    assert {"Adult", "Mature show E1"} <= titles(
        site.client.get("/api/v1/continue-watching", headers=free)
    )
    recent = titles(site.client.get("/api/v1/recently-added", headers=limited))
    assert recent and not recent & {"Adult", "Brit", "Mature show", "Mature show E1"}
    next_up = titles(site.client.get("/api/v1/next-up", headers=limited))
    assert not next_up & {"Mature show E1"}
    assert image is not None
    poster = site.client.get(f"/api/v1/images/{image[0]}", headers=limited)
    seen = site.client.get(f"/api/v1/images/{image[0]}", headers=free)
    # (no variant was made: the free user hears "not ready", the limited one "no such image")
    assert poster.json()["code"] == "image_not_found" and seen.json()["code"] == "image_not_ready"
    # playback: the file of the R movie is no file for the limited user
    assert playable(site, free_id, ids["Adult"]) and not playable(site, limited_id, ids["Adult"])
    assert playable(site, limited_id, ids["Teen"])

    # Blocking unrated items hides them too; lifting the limit shows everything at once.
    set_limit(site, limited_id, {"max_rating": "PG-13", "unrated": "block"})
    movies = site.client.get("/api/v1/movies", params=scope, headers=limited)
    assert titles(movies) == SEEN_BY_PG13 - {"Nobody rated"}
    set_limit(site, limited_id, {"max_rating": None})
    movies = site.client.get("/api/v1/movies", params=scope, headers=limited)
    assert titles(movies) == set(MOVIES)
    assert site.client.get(f"/api/v1/items/{mature_episode}", headers=limited).status_code == 200


def test_administrators_are_never_limited(site: Site) -> None:  # noqa: F811
    library_id = site.library("movies")
    adult = item(site, library_id, "movie", "Admin adult", content_rating="NC-17")
    me = site.client.get("/api/v1/me", headers=site.admin).json()
    set_limit(site, me["id"], {"max_rating": "G", "unrated": "block"})
    try:
        listed = site.client.get(
            "/api/v1/movies", params={"library": library_id}, headers=site.admin
        )
        assert titles(listed) == {"Admin adult"}
        assert site.client.get(f"/api/v1/items/{adult}", headers=site.admin).status_code == 200
    finally:
        set_limit(site, me["id"], {"max_rating": None})


def test_a_limited_total_follows_ratings_added_changed_and_removed(site: Site) -> None:  # noqa: F811
    """The limited total comes from per-rating counts kept by triggers: they must not drift."""
    library_id = site.library("movies")
    ids = {title: item(site, library_id, "movie", title, content_rating=rating)
           for title, rating in MOVIES.items()}  # fmt: skip
    user_id, user = site.user()
    site.grant(library_id, user_id)
    set_limit(site, user_id, {"max_rating": "PG-13"})

    def total() -> int:
        reply = site.client.get("/api/v1/movies", params={"library": library_id}, headers=user)
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["items"]) == reply.json()["total"]  # one page: the same count
        return int(reply.json()["total"])

    assert total() == len(SEEN_BY_PG13)
    site.db.execute("UPDATE items SET content_rating = 'PG' WHERE id = %s", (ids["Adult"],))
    assert total() == len(SEEN_BY_PG13) + 1
    site.db.execute("UPDATE items SET content_rating = 'TV-MA' WHERE id = %s", (ids["Family"],))
    site.db.execute("UPDATE items SET title = 'Renamed' WHERE id = %s", (ids["Teen"],))
    assert total() == len(SEEN_BY_PG13)
    site.db.execute("DELETE FROM items WHERE id = %s", (ids["German"],))
    item(site, library_id, "movie", "New", content_rating="FSK 6")
    assert total() == len(SEEN_BY_PG13)
    set_limit(site, user_id, {"max_rating": "PG-13", "unrated": "block"})
    assert total() == len(SEEN_BY_PG13) - 1


def test_search_finds_only_what_the_caller_may_see(site: Site) -> None:  # noqa: F811
    library_id = site.library("movies")
    word = f"zebra{uuid.uuid4().hex[:6]}"
    ids = {rating: item(site, library_id, "movie", f"{word} {rating}", content_rating=rating)
           for rating in ("G", "R")}  # fmt: skip
    for rating, item_id in ids.items():  # as the library indexes an item: its id and kind
        site.db.execute(
            "INSERT INTO search_documents (id, kind, title) VALUES (%s, 'movie', %s)",
            (str(item_id), f"{word} {rating}"),
        )
    limited_id, limited = site.user()
    free_id, free = site.user()
    _, stranger = site.user()
    for user_id in (limited_id, free_id):
        site.grant(library_id, user_id)
    set_limit(site, limited_id, {"max_rating": "PG-13"})

    def found(headers: dict[str, str]) -> set[str]:
        reply = site.client.get("/api/v1/search", params={"q": word}, headers=headers)
        assert reply.status_code == 200, reply.text
        return {hit["title"] for hit in reply.json()["hits"]}

    assert found(free) == {f"{word} G", f"{word} R"}
    assert found(site.admin) == {f"{word} G", f"{word} R"}
    assert found(limited) == {f"{word} G"}
    assert found(stranger) == set()  # no grant: no hit (this held for no one before)
