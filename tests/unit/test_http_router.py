"""The route table: prefix mounts, the segment trie, NUL bytes."""

from __future__ import annotations

import pytest

from revenge.http import Request, Response, Router, json_response


async def handler(request: Request) -> Response:
    return json_response({})


def test_include_mounts_every_route_under_a_prefix() -> None:
    movies = Router()
    movies.add("GET", "/", handler, tags=("movies",))
    movies.add("GET", "/{movie_id}", handler, public=True)
    movies.add("DELETE", "/{movie_id}", handler)
    api = Router()
    api.include("/api/v1/movies", movies)
    assert api.match("GET", "/api/v1/movies").route is not None
    found = api.match("GET", "/api/v1/movies/7")
    assert found.route is not None and found.route.public and found.params == {"movie_id": "7"}
    assert api.match("PUT", "/api/v1/movies/7").allowed == ("DELETE", "GET", "HEAD")
    assert [r.path for r in api] == [
        "/api/v1/movies",
        "/api/v1/movies/{movie_id}",
        "/api/v1/movies/{movie_id}",
    ]
    for bad in ("api", "/api/"):
        with pytest.raises(ValueError, match="prefix"):
            api.include(bad, movies)
    with pytest.raises(ValueError, match="twice"):
        api.include("/api/v1/movies", movies)
    bare = Router()
    bare.include("", movies)  # no prefix: the routes as they are
    assert bare.match("GET", "/7").params == {"movie_id": "7"}


def test_literal_segments_win_and_the_walk_backtracks() -> None:
    router = Router()
    router.add("GET", "/a/{x}/c", handler)
    router.add("GET", "/a/b/{y}", handler)
    router.add("GET", "/a/b", handler)
    router.add("GET", "/a/{x}", handler)
    assert router.match("GET", "/a/b/c").params == {"y": "c"}  # literal b first
    assert router.match("GET", "/a/z/c").params == {"x": "z"}
    assert router.match("GET", "/a/b/d").params == {"y": "d"}
    assert router.match("GET", "/a/q").params == {"x": "q"}
    assert router.match("GET", "/a/b").params == {}
    # literal b leads nowhere for /a/b/c/d: no route has four segments
    assert router.match("GET", "/a/b/c/d").route is None
    assert router.match("GET", "/a//c").route is None  # an empty segment is no value


def test_parameter_names_must_agree_at_one_place() -> None:
    router = Router()
    router.add("GET", "/users/{user_id}", handler)
    with pytest.raises(ValueError, match="parameters"):
        router.add("DELETE", "/users/{id}", handler)


def test_hundreds_of_routes_match_by_their_own_segments() -> None:
    router = Router()
    for index in range(300):
        router.add("GET", f"/api/v1/r{index}/{{item_id}}/parts/{{part}}", handler)
    found = router.match("GET", "/api/v1/r299/42/parts/7")
    assert found.route is not None and found.route.path.startswith("/api/v1/r299/")
    assert found.params == {"item_id": "42", "part": "7"}


def test_a_nul_byte_in_the_path_is_invalid_not_missing() -> None:
    router = Router()
    router.add("DELETE", "/api/v1/auth/sessions/{session_id}", handler)
    assert router.match("DELETE", "/api/v1/auth/sessions/a\x00b").invalid
    assert router.match("GET", "/nowhere\x00").invalid
    assert not router.match("DELETE", "/api/v1/auth/sessions/ab").invalid
