"""Every route of the real app refuses a caller without credentials — so a new route cannot forget.

The route table is read from ``revenge.app.build_app`` (what ``granian revenge.app``
serves); each route is then called over a real socket on a real server. Only the
routes the design makes public may answer without a session or API key.

Then who may do what, as a matrix (issue 15 item 5): every route is called as an
anonymous client, a user without the library, a user with it, a parental-limited user
and an administrator, and the status each gets is asserted. A new route without an
entry in ``MATRIX`` fails, and the failure prints the entry to add.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from revenge.app import build_app
from revenge.config import load_settings
from revenge.http import Route
from revenge.modules.auth.admin import create_user
from revenge.modules.auth.authenticator import CSRF_HEADER
from revenge.modules.playback.routes import GUARDED_PATHS
from revenge.wiring import migrate
from tests.e2e.conftest import free_port, granian_argv, run_server
from tests.e2e.playback_support import small_clip

pytestmark = pytest.mark.e2e

LOGIN = "/api/v1/auth/login"
PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


GUARDED = {"/health", "/metrics", *GUARDED_PATHS}
"""Public to the router (a scrape token or a signed media URL is no session), guarded by their
handlers."""


SIGN_IN = {
    ("POST", LOGIN),
    ("POST", "/api/v1/auth/device"),  # a TV asks for a code to show
    ("POST", "/api/v1/auth/device/token"),  # and polls with its secret for its session
    ("POST", "/api/v1/invitations/accept"),  # an invited person has no account yet
    # single sign-on: the providers to offer, the start of a sign-in and its callback
    ("GET", "/api/v1/oidc/providers"),
    ("GET", "/api/v1/oidc/{provider}/login"),
    ("GET", "/api/v1/oidc/{provider}/callback"),
    ("POST", "/api/v1/auth/password-reset"),  # someone who forgot their password
    ("POST", "/api/v1/auth/password-reset/confirm"),  # and follows the e-mailed link
    # first run: nobody can sign in yet; creating the admin needs loopback or the setup code
    ("GET", "/api/v1/setup"),
    ("POST", "/api/v1/setup"),
}
WEB_CLIENT = {"/", "/static/{build}/{file}", "/static/{build}/vendor/{package}/{file}"}
"""The web client's code (no data: it asks the API, with a credential, for that)."""


def allowed_public(method: str, path: str) -> bool:
    """The design's public surface: the live and ready probes, sign-in (and first-run setup),
    the guarded two, and the web client's files."""
    if path in ("/health/live", "/health/ready") or path in GUARDED:
        return True
    if method == "GET" and path in WEB_CLIENT:
        return True
    return (method, path) in SIGN_IN


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", PLACEHOLDER, path)


@pytest.fixture(scope="module")
def routes(pg_url: str) -> list[Route]:
    settings = load_settings(env={"REVENGE_DATABASE__URL": pg_url})
    return list(build_app(settings).router)


@pytest.fixture(scope="module")
def base_url(migrated_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {"REVENGE_DATABASE__URL": migrated_url}
    tmp: Path = tmp_path_factory.mktemp("route-table")
    with run_server(granian_argv(port), port, tmp, env) as server:
        yield server.base_url


def test_the_auth_routes_are_in_the_table(routes: list[Route]) -> None:
    paths = {(r.method, r.path) for r in routes}
    assert ("GET", "/api/v1/me") in paths and ("POST", LOGIN) in paths


def test_only_the_designed_routes_are_public(routes: list[Route]) -> None:
    strays = [
        f"{r.method} {r.path}" for r in routes if r.public and not allowed_public(r.method, r.path)
    ]
    assert strays == [], "public routes outside the design's list"


def test_every_protected_route_answers_401_problem(routes: list[Route], base_url: str) -> None:
    protected = [r for r in routes if not r.public or r.path in GUARDED]
    assert protected, "the table has no protected route at all"
    failures = []
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for route in protected:
            for headers in (
                {},
                {"authorization": "Bearer not-a-valid-token"},
            ):  # no scrape token set
                reply = client.request(route.method, concrete(route.path), headers=headers)
                ok = (
                    reply.status_code == 401
                    and reply.headers.get("content-type") == "application/problem+json"
                    and reply.json().get("code") == "unauthenticated"
                )
                if not ok:
                    failures.append(f"{route.method} {route.path} {headers}: {reply.status_code}")
    assert failures == []


def test_login_is_public_but_validates(base_url: str) -> None:
    reply = httpx.post(base_url + LOGIN, json={}, timeout=10)
    assert reply.status_code == 422
    assert reply.json()["code"] == "validation_failed"


# -- who may do what: every route, as five callers --------------------------------------------
#
# Each route of the app has an entry in MATRIX: the status each caller gets, in the order of
# CALLERS. The helpers below name the usual rows; a route whose answers depend on a library
# or on an item's rating uses library() or adult_item(). A route without an entry, or an
# entry for a route that is gone, fails test_every_route_answers_each_caller_as_the_matrix_says
# with the line to add.

CALLERS = ("anonymous", "without", "with", "limited", "admin")
"""No credential; a user without the world's library; a user granted it; a user granted it
with a parental limit (PG-13) that hides its R-rated movie; an administrator."""

Expect = tuple[int, int, int, int, int]


def public(ok: int) -> Expect:
    return (ok, ok, ok, ok, ok)


def signed_in(ok: int) -> Expect:
    return (401, ok, ok, ok, ok)


def admin_only(ok: int) -> Expect:
    return (401, 403, 403, 403, ok)


def library(ok: int) -> Expect:
    """The world's library (or something in it that every rating allows): 404 without a grant."""
    return (401, 404, ok, ok, ok)


def adult_item(ok: int) -> Expect:
    """The world's R-rated movie: 404 without the library and for the PG-13-limited user."""
    return (401, 404, ok, 404, ok)


@dataclass
class World:
    base_url: str
    db_url: str
    names: dict[str, str]
    """Caller -> username (anonymous has none)."""
    library_id: int
    adult_item_id: int
    family_item_id: int
    job_id: int
    root: Path
    adult_series_id: int = 0
    adult_season_id: int = 0
    variant: tuple[str, str] = ("", "")
    """A variant playlist of an HLS session: (variant, name)."""
    foreign_session: str = ""
    """The administrator's playback session, asked about by callers who may not play."""


@dataclass
class Call:
    """One request about to be made: who makes it, and their fresh session token."""

    world: World
    caller: str
    token: str | None

    def headers(self) -> dict[str, str]:
        return {} if self.token is None else {"authorization": f"Bearer {self.token}"}

    def as_admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = login(self.world.base_url, self.world.names["admin"])
        return request(self.world.base_url, method, path, token, **kwargs)


Value = Callable[[Call], Any]


@dataclass(frozen=True)
class Entry:
    expect: Expect
    body: Value | None = None
    """The JSON body (one valid for whoever may call the route), made for each call."""
    params: Mapping[str, Value] = field(default_factory=dict)
    """Path parameters this route fills its own way (else PARAMS, by name)."""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


MATRIX_PASSWORD = "matrix caller password"


def login(base_url: str, username: str) -> str:
    reply = httpx.post(
        base_url + LOGIN, json={"username": username, "password": MATRIX_PASSWORD}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["token"])


def request(
    base_url: str,
    method: str,
    path: str,
    token: str | None,
    headers: Mapping[str, str] = {},
    **kwargs: Any,
) -> httpx.Response:
    headers = {**headers, **({} if token is None else {"authorization": f"Bearer {token}"})}
    with httpx.Client(base_url=base_url, timeout=30) as client:  # no cookie carried over
        return client.request(method, path, headers=headers, **kwargs)


def fresh_user(call: Call) -> str:
    """A user made for this call (one an administrator may change, reset or delete)."""
    reply = call.as_admin(
        "POST", "/api/v1/users", json={"username": unique("m"), "password": MATRIX_PASSWORD}
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def fresh_folder(call: Call) -> str:
    """A folder of its own beside the world's media (a library root may not overlap another)."""
    folder = call.world.root / unique("lib")
    folder.mkdir()
    return str(folder)


def fresh_library(call: Call) -> str:
    reply = call.as_admin(
        "POST",
        "/api/v1/libraries",
        json={"name": unique("Library "), "kind": "movies", "roots": [fresh_folder(call)]},
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def own_session(call: Call) -> str:
    """Another session of the caller's (anonymous: any id)."""
    if call.caller == "anonymous":
        return PLACEHOLDER
    other = login(call.world.base_url, call.world.names[call.caller])
    sessions = request(call.world.base_url, "GET", "/api/v1/auth/sessions", other)
    return str(next(s["id"] for s in sessions.json()["sessions"] if s["current"]))


def own_key(call: Call) -> str:
    if call.caller == "anonymous":
        return "0" * 16
    made = request(
        call.world.base_url, "POST", "/api/v1/auth/api-keys", call.token, json={"name": "m"}
    )
    return str(made.json()["id"])


def device_code(call: Call) -> dict[str, str]:
    reply = httpx.post(call.world.base_url + "/api/v1/auth/device", timeout=30)
    assert reply.status_code == 201, reply.text
    body: dict[str, str] = reply.json()
    return body


def approved_device(call: Call) -> dict[str, str]:
    code = device_code(call)
    approved = call.as_admin(
        "POST", "/api/v1/auth/device/approve", json={"user_code": code["user_code"]}
    )
    assert approved.status_code == 200, approved.text
    return {"device_secret": code["device_secret"]}


def web_build(call: Call) -> str:
    """The build the web client's page links its files under."""
    page = httpx.get(call.world.base_url + "/", timeout=30)
    found = re.search(r"/static/([A-Za-z0-9._-]+)/", page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


PLAY = "/api/v1/playback/sessions"


def play_body(call: Call) -> dict[str, Any]:
    """Play the world's R-rated movie (a real H.264/AAC clip) as HLS (no direct container)."""
    return {
        "item_id": call.world.adult_item_id,
        "capabilities": {"video": [{"codec": "h264"}], "audio": [{"codec": "aac"}]},
    }


def playback_session(call: Call, *, direct: bool = False) -> str:
    """The caller's own playback session of the R-rated movie; for callers that may not play
    it, the administrator's (so they ask about a session that exists and is not theirs)."""
    if call.caller not in ("with", "admin"):
        return call.world.foreign_session
    body = play_body(call)
    if direct:
        body["capabilities"]["containers"] = ["mp4"]
    made = request(call.world.base_url, "POST", PLAY, call.token, json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def hls_variant(call: Call) -> str:
    return call.world.variant[0]


def hls_name(call: Call) -> str:
    return call.world.variant[1]


def invitation(call: Call) -> dict[str, str]:
    made = call.as_admin("POST", "/api/v1/invitations", json={})
    assert made.status_code == 201, made.text
    return {"token": made.json()["token"], "username": unique("i"), "password": MATRIX_PASSWORD}


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


PARAMS: dict[str, Value] = {
    "user_id": fresh_user,
    "library_id": lambda call: str(call.world.library_id),
    "item_id": lambda call: str(call.world.adult_item_id),
    "session_id": own_session,
    "key_id": own_key,
    "job_id": lambda call: str(call.world.job_id),
    "series_id": lambda call: str(call.world.adult_series_id),
    "season_id": lambda call: str(call.world.adult_season_id),
    "image_id": lambda call: "9" * 18,  # no image is stored in this world
    "build": web_build,
    "file": lambda call: "app.js",
}
"""How to fill each path parameter by name; a route may fill one its own way (Entry.params)."""

MATRIX: dict[str, Entry] = {
    # sign-in, and one's own sessions, keys, password and preferences
    "POST /api/v1/auth/login": Entry(
        public(200),
        body=lambda call: {"username": call.world.names["with"], "password": MATRIX_PASSWORD},
    ),
    "POST /api/v1/auth/logout": Entry(signed_in(204)),
    "GET /api/v1/auth/sessions": Entry(signed_in(200)),
    "DELETE /api/v1/auth/sessions": Entry(signed_in(200)),
    "DELETE /api/v1/auth/sessions/{session_id}": Entry(signed_in(204)),
    "POST /api/v1/auth/api-keys": Entry(signed_in(201), body=lambda call: {"name": "matrix"}),
    "GET /api/v1/auth/api-keys": Entry(signed_in(200)),
    "DELETE /api/v1/auth/api-keys/{key_id}": Entry(signed_in(204)),
    "GET /api/v1/me": Entry(signed_in(200)),
    "POST /api/v1/me/password": Entry(
        signed_in(200),
        body=lambda call: {"current_password": MATRIX_PASSWORD, "new_password": MATRIX_PASSWORD},
    ),
    "PUT /api/v1/me/email": Entry(
        signed_in(200),
        body=lambda call: {
            "email": f"{unique('me')}@example.org",
            "current_password": MATRIX_PASSWORD,
        },
    ),
    # password reset by e-mail: this server has no SMTP server (409 email_disabled for
    # everyone, the same answer whoever asks); an unknown token is 404 for everyone
    "POST /api/v1/auth/password-reset": Entry(
        public(409), body=lambda call: {"email": "someone@example.org"}
    ),
    "POST /api/v1/auth/password-reset/confirm": Entry(
        public(404), body=lambda call: {"token": "x" * 43, "password": MATRIX_PASSWORD}
    ),
    "GET /api/v1/me/preferences": Entry(signed_in(200)),
    "PUT /api/v1/me/preferences": Entry(
        signed_in(200), body=lambda call: {"audio_languages": ["en"]}
    ),
    "POST /api/v1/auth/device": Entry(public(201)),
    "POST /api/v1/auth/device/token": Entry(public(200), body=approved_device),
    "POST /api/v1/auth/device/approve": Entry(
        signed_in(200), body=lambda call: {"user_code": device_code(call)["user_code"]}
    ),
    # user administration
    "POST /api/v1/invitations": Entry(admin_only(201), body=lambda call: {"role": "user"}),
    "POST /api/v1/invitations/accept": Entry(public(200), body=invitation),
    "GET /api/v1/users": Entry(admin_only(200)),
    "POST /api/v1/users": Entry(
        admin_only(201),
        body=lambda call: {"username": unique("n"), "password": MATRIX_PASSWORD},
    ),
    "GET /api/v1/users/{user_id}": Entry(admin_only(200)),
    "PATCH /api/v1/users/{user_id}": Entry(admin_only(200), body=lambda call: {"role": "user"}),
    "DELETE /api/v1/users/{user_id}": Entry(admin_only(204)),
    "POST /api/v1/users/{user_id}/password": Entry(
        admin_only(200), body=lambda call: {"password": MATRIX_PASSWORD}
    ),
    "PUT /api/v1/users/{user_id}/email": Entry(
        admin_only(200), body=lambda call: {"email": f"{unique('u')}@example.org"}
    ),
    "GET /api/v1/users/{user_id}/parental": Entry(admin_only(200)),
    "PUT /api/v1/users/{user_id}/parental": Entry(
        admin_only(200), body=lambda call: {"max_rating": "PG"}
    ),
    # libraries and jobs
    "GET /api/v1/libraries": Entry(signed_in(200)),
    "POST /api/v1/libraries": Entry(
        admin_only(201),
        body=lambda call: {
            "name": unique("New "),
            "kind": "movies",
            "roots": [fresh_folder(call)],
        },
    ),
    "GET /api/v1/libraries/{library_id}": Entry(library(200)),
    "PATCH /api/v1/libraries/{library_id}": Entry(admin_only(200), body=lambda call: {}),
    "DELETE /api/v1/libraries/{library_id}": Entry(
        admin_only(204), params={"library_id": fresh_library}
    ),
    "POST /api/v1/libraries/{library_id}/scan": Entry(
        admin_only(202), params={"library_id": fresh_library}
    ),
    "DELETE /api/v1/libraries/{library_id}/scan": Entry(
        admin_only(202), params={"library_id": fresh_library}
    ),
    "GET /api/v1/jobs/{job_id}": Entry(admin_only(200)),
    "GET /api/v1/search": Entry(signed_in(200), query={"q": "matrix"}),
    # first run (this server has users: setup is over) and the web client's files
    "GET /api/v1/setup": Entry(public(200)),
    "POST /api/v1/setup": Entry(
        public(409),
        body=lambda call: {"username": unique("s"), "password": MATRIX_PASSWORD},
        headers={CSRF_HEADER: "1"},  # a browser's page sends it; a cross-site form cannot
    ),
    # single sign-on (this server has no provider configured: each name is unknown)
    "GET /api/v1/oidc/providers": Entry(public(200)),
    "GET /api/v1/oidc/{provider}/login": Entry(public(404), params={"provider": lambda c: "corp"}),
    "GET /api/v1/oidc/{provider}/callback": Entry(
        public(404), params={"provider": lambda c: "corp"}
    ),
    "GET /": Entry(public(200)),
    "GET /static/{build}/{file}": Entry(public(200)),
    "GET /static/{build}/vendor/{package}/{file}": Entry(
        public(200), params={"package": lambda call: "hls.js", "file": lambda call: "hls.min.js"}
    ),
    "GET /api/v1/images/{image_id}": Entry((401, 404, 404, 404, 404)),
    # browse: the R-rated movie is hidden from the PG-13-limited user
    "GET /api/v1/movies": Entry(signed_in(200)),
    "GET /api/v1/series": Entry(signed_in(200)),
    "GET /api/v1/next-up": Entry(signed_in(200)),
    "GET /api/v1/continue-watching": Entry(signed_in(200)),
    "GET /api/v1/recently-added": Entry(signed_in(200)),
    "GET /api/v1/items/{item_id}": Entry(adult_item(200)),
    "PUT /api/v1/items/{item_id}/state": Entry(
        adult_item(200), body=lambda call: {"favourite": True}
    ),
    # an administrator's edit (admin_only: a user is refused before the id is looked up)
    "PATCH /api/v1/items/{item_id}/metadata": Entry(
        admin_only(200), body=lambda call: {"tagline": "Edited by the matrix", "lock": False}
    ),
    "GET /api/v1/series/{series_id}/seasons": Entry(adult_item(200)),
    "GET /api/v1/seasons/{season_id}/episodes": Entry(adult_item(200)),
    "GET /api/v1/libraries/{library_id}/grants": Entry(admin_only(200)),
    "PUT /api/v1/libraries/{library_id}/grants/{user_id}": Entry(admin_only(204)),
    "DELETE /api/v1/libraries/{library_id}/grants/{user_id}": Entry(admin_only(204)),
    # playback of the R-rated movie (a session of another user is not found)
    "POST /api/v1/playback/sessions": Entry(adult_item(201), body=play_body),
    "GET /api/v1/playback/sessions/{session_id}": Entry(
        adult_item(200), params={"session_id": playback_session}
    ),
    "DELETE /api/v1/playback/sessions/{session_id}": Entry(
        adult_item(204), params={"session_id": playback_session}
    ),
    "POST /api/v1/playback/sessions/{session_id}/progress": Entry(
        adult_item(200),
        params={"session_id": playback_session},
        body=lambda call: {"position_ms": 1000},
    ),
    "GET /api/v1/playback/sessions/{session_id}/direct": Entry(
        adult_item(200), params={"session_id": lambda call: playback_session(call, direct=True)}
    ),
    "GET /api/v1/playback/sessions/{session_id}/hls/master.m3u8": Entry(
        adult_item(200), params={"session_id": playback_session}
    ),
    "GET /api/v1/playback/sessions/{session_id}/hls/{variant}/{name}": Entry(
        adult_item(200),
        params={"session_id": playback_session, "variant": hls_variant, "name": hls_name},
    ),
    # operators
    "GET /api/v1/admin/runtime": Entry(admin_only(200)),
    "GET /health/live": Entry(public(200)),
    "GET /health/ready": Entry(public(200)),
    "GET /health": Entry((401, 403, 403, 403, 200)),
    "GET /metrics": Entry((401, 403, 403, 403, 200)),
    "GET /api/v1/openapi.json": Entry(signed_in(200)),
}


def missing_entry(route: Route) -> str:
    key = f"{route.method} {route.path}"
    guess = (
        "admin_only"
        if route.declared.admin
        else "public"
        if route.public
        else "library"
        if "{library_id}" in route.path
        else "adult_item"
        if "{item_id}" in route.path
        else "signed_in"
    )
    body = ", body=lambda call: {...}" if route.declared.body is not None else ""
    return (
        f"{key} has no entry in MATRIX (tests/e2e/test_route_table.py). Add:\n"
        f'    "{key}": Entry({guess}({route.declared.status}){body}),\n'
        "with the status each caller gets: anonymous, a user without the library, a user "
        "with it, a parental-limited user (PG-13), an administrator (helpers public, "
        "signed_in, admin_only, library, adult_item, or a tuple of five); a path parameter "
        f"not in PARAMS ({', '.join(sorted(PARAMS))}) needs a resolver there or in "
        "Entry(params=...)."
    )


@pytest.fixture
def world(fresh_pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A server with one movie library holding an R-rated and a G-rated movie, and the callers."""
    asyncio.run(migrate(fresh_pg_url))
    tmp: Path = tmp_path_factory.mktemp("matrix")
    settings = load_settings(env={"REVENGE_DATABASE__URL": fresh_pg_url, **FAST_HASHING})
    names = {caller: unique(caller[:4]) for caller in CALLERS[1:]}
    for caller, name in names.items():
        asyncio.run(
            create_user(fresh_pg_url, settings, name, MATRIX_PASSWORD, admin=caller == "admin")
        )
    root = tmp / "media"
    root.mkdir()
    with psycopg.connect(fresh_pg_url, autocommit=True) as conn:
        library_id = one(conn, "INSERT INTO libraries (name, kind) VALUES ('World', 'movies') "
                         "RETURNING id")  # fmt: skip
        conn.execute(
            "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, %s)",
            (library_id, os.fsencode(root), str(root)),
        )
        items = {}
        for key, rating in (("adult", "R"), ("family", "G")):
            items[key] = one(
                conn,
                "INSERT INTO items (library_id, kind, key, title, sort_title, content_rating) "
                "VALUES (%s, 'movie', %s, %s, %s, %s) RETURNING id",
                (library_id, key, key.title(), key, rating),
            )
        clip = small_clip(root)  # the R-rated movie's file: a real H.264/AAC clip
        info = clip.stat()
        conn.execute(
            "INSERT INTO media_files (item_id, library_id, root_id, path, path_text, size,"
            " mtime_ns, inode, device, probe_status) SELECT %s, %s, r.id, %s, %s, %s, %s, %s,"
            " %s, 'ok' FROM library_roots r WHERE r.library_id = %s",
            (items["adult"], library_id, os.fsencode(clip), str(clip), info.st_size,
             info.st_mtime_ns, info.st_ino, info.st_dev, library_id),
        )  # fmt: skip
        tv_id = one(conn, "INSERT INTO libraries (name, kind) VALUES ('World TV', 'tv') "
                    "RETURNING id")  # fmt: skip
        show = one(conn, "INSERT INTO items (library_id, kind, key, title, sort_title,"
                   " content_rating) VALUES (%s, 'series', 'show', 'Show', 'show', 'TV-MA')"
                   " RETURNING id", (tv_id,))  # fmt: skip
        season = one(conn, "INSERT INTO items (library_id, kind, key, title, sort_title,"
                     " parent_id, series_id, season_number) VALUES (%s, 'season', 's1',"
                     " 'Season 1', 'season 1', %s, %s, 1) RETURNING id",
                     (tv_id, show, show))  # fmt: skip
        jobs_id = one(conn, "INSERT INTO libraries (name, kind) VALUES ('Jobs', 'movies') "
                      "RETURNING id")  # fmt: skip
        (tmp / "jobs").mkdir()
        conn.execute(
            "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, %s)",
            (jobs_id, os.fsencode(tmp / "jobs"), str(tmp / "jobs")),
        )
        for caller in ("with", "limited"):
            for granted in (library_id, tv_id):
                conn.execute(
                    "INSERT INTO library_grants (user_id, library_id) "
                    "SELECT id, %s FROM users WHERE username = %s",
                    (granted, names[caller]),
                )
    port = free_port()
    env = {"REVENGE_DATABASE__URL": fresh_pg_url, **FAST_HASHING}
    with run_server(granian_argv(port), port, tmp, env) as server:
        admin = login(server.base_url, names["admin"])
        limited = request(server.base_url, "GET", "/api/v1/users", admin).json()["users"]
        limited_id = next(u["id"] for u in limited if u["username"] == names["limited"])
        set_limit = request(
            server.base_url,
            "PUT",
            f"/api/v1/users/{limited_id}/parental",
            admin,
            json={"max_rating": "PG-13"},
        )
        assert set_limit.status_code == 200, set_limit.text
        scan = request(server.base_url, "POST", f"/api/v1/libraries/{jobs_id}/scan", admin)
        assert scan.status_code == 202, scan.text
        world = World(
            server.base_url,
            fresh_pg_url,
            names,
            library_id,
            items["adult"],
            items["family"],
            int(scan.json()["job_id"]),
            tmp,
            show,
            season,
        )
        session = playback_session(Call(world, "admin", admin))
        master = request(server.base_url, "GET", f"{PLAY}/{session}/hls/master.m3u8", admin)
        assert master.status_code == 200, master.text
        uri = next(line for line in master.text.splitlines() if line and line[0] != "#")
        variant, name = uri.split("?")[0].split("/")[-2:]
        world.variant = (variant, name)
        world.foreign_session = session
        yield world


FAST_HASHING = {"REVENGE_AUTH__ARGON2_MEMORY_KIB": "8192", "REVENGE_AUTH__ARGON2_TIME_COST": "1"}


def one(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> int:
    row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])


def test_every_route_answers_each_caller_as_the_matrix_says(
    routes: list[Route], world: World
) -> None:
    table = {f"{r.method} {r.path}": r for r in routes}
    problems = [missing_entry(table[key]) for key in table if key not in MATRIX]
    problems += [
        f"{key} is in MATRIX but the app has no such route: remove its entry"
        for key in MATRIX
        if key not in table
    ]
    for key, entry in MATRIX.items():
        route = table.get(key)
        if route is None:
            continue
        for caller, expected in zip(CALLERS, entry.expect, strict=True):
            name = world.names.get(caller)
            token = None if name is None else login(world.base_url, name)
            call = Call(world, caller, token)
            path = route.path
            for param in re.findall(r"\{(\w+)\}", route.path):
                fill = entry.params.get(param) or PARAMS.get(param)
                if fill is None:
                    problems.append(f"{key}: no resolver for {{{param}}} in PARAMS or the entry")
                    break
                path = path.replace(f"{{{param}}}", fill(call))
            else:
                kwargs: dict[str, Any] = {"params": dict(entry.query), "headers": entry.headers}
                if entry.body is not None:
                    kwargs["json"] = entry.body(call)
                reply = request(world.base_url, route.method, path, token, **kwargs)
                if reply.status_code != expected:
                    problems.append(
                        f"{key} as {caller}: {reply.status_code} (expected {expected}) "
                        f"{reply.text[:200]}"
                    )
    assert problems == [], "\n".join(problems)
