"""``GET /api/v1/search`` on the real app: ``build_app`` with its whole start-up, real PostgreSQL.

Users are created with ``revenge user create``'s function and log in over HTTP;
documents are indexed through a ``SearchService`` on its own pool (the app's
search reads the same table). Typesense is not configured, so PostgreSQL answers.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from revenge.app import build_app
from revenge.config import Settings, load_settings
from revenge.http import HttpApp
from revenge.infra.db import Database, PoolConfig
from revenge.infra.search import PostgresSearch, SearchDocument, SearchService
from revenge.modules.auth.admin import create_user
from revenge.wiring import migrate
from tests.cheap_settings import FAST_ARGON2

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

PASSWORD = "correct horse battery"
SEARCH = "/api/v1/search"
SCRAPE_TOKEN = "scrape-token-for-tests"


@dataclass
class RunningApp:
    """The started app, an HTTP client on it, and the settings it was built from."""

    app: HttpApp
    client: httpx.AsyncClient
    settings: Settings
    url: str

    async def token(self, *, admin: bool = False) -> str:
        """A new user, logged in over HTTP: its bearer token."""
        name = f"u{uuid.uuid4().hex[:10]}"
        await create_user(self.url, self.settings, name, PASSWORD, admin=admin)
        reply = await self.client.post(
            "/api/v1/auth/login", json={"username": name, "password": PASSWORD}
        )
        assert reply.status_code == 200, reply.text
        # Login also sets a session cookie; requests here must carry only what a test gives.
        self.client.cookies.clear()
        return str(reply.json()["token"])


@asynccontextmanager
async def running_app(url: str, **env: str) -> AsyncIterator[RunningApp]:
    """``build_app`` as ``granian revenge.app`` builds it, started and stopped here."""
    settings = load_settings(
        env={
            "REVENGE_DATABASE__URL": url,
            "REVENGE_METRICS__SCRAPE_TOKEN": SCRAPE_TOKEN,
            **FAST_ARGON2,
            **env,
        }
    )
    app = build_app(settings)
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield RunningApp(app, client, settings, url)
    finally:
        await app.shutdown()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_problem(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    assert body["code"] == code and body["status"] == status
    return body


CATALOGUE = [
    SearchDocument("m-matrix", "movie", "The Matrix", year=1999, people=("Keanu Reeves",)),
    SearchDocument("m-reloaded", "movie", "The Matrix Reloaded", year=2003),
    SearchDocument("m-heat", "movie", "Heat", year=1995, people=("Al Pacino",)),
    SearchDocument("s-matrix", "series", "Matrix: The Animated Series", year=2021),
    SearchDocument("s-bad", "series", "Breaking Bad", year=2008),
    SearchDocument("p-keanu", "person", "Keanu Reeves"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(pg_url: str) -> AsyncIterator[RunningApp]:
    await migrate(pg_url)
    # The session database is shared with other search tests: start from an empty
    # index (as they do) and leave it empty.
    db = Database(pg_url, PoolConfig(min_conns=1, max_conns=2))
    await db.start()
    try:
        await db.execute("DELETE FROM search_documents")
        await SearchService(PostgresSearch(db)).index(CATALOGUE)
        async with running_app(pg_url) as running:
            yield running
    finally:
        await db.execute("DELETE FROM search_documents")
        await db.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def auth(api: RunningApp) -> dict[str, str]:
    return bearer(await api.token())


async def search(api: RunningApp, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    reply = await api.client.get(SEARCH, params=params, headers=auth)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    body: dict[str, Any] = reply.json()
    return body


async def test_a_typo_finds_the_title_and_says_which_backend_answered(
    api: RunningApp, auth: dict[str, str]
) -> None:
    body = await search(api, auth, q="matirx")
    assert body["backend"] == "postgres"
    assert body["query"] == "matirx" and body["kinds"] is None
    assert (body["limit"], body["offset"]) == (20, 0)
    first = body["hits"][0]
    assert set(first) == {"id", "kind", "title", "year", "score"}
    assert (first["id"], first["kind"], first["title"], first["year"]) == (
        "m-matrix",
        "movie",
        "The Matrix",
        1999,
    )
    ids = [hit["id"] for hit in body["hits"]]
    assert "m-heat" not in ids and "s-bad" not in ids
    scores = [hit["score"] for hit in body["hits"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (["series"], {"series"}),
        (["movie", "series"], {"movie", "series"}),
        (["movie,series"], {"movie", "series"}),
        (["person"], {"person"}),
    ],
)
async def test_kind_filters_hits(
    api: RunningApp, auth: dict[str, str], kinds: list[str], expected: set[str]
) -> None:
    body = await search(
        api, auth, q="matrix keanu" if kinds == ["person"] else "matrix", kind=kinds
    )
    assert body["hits"], body
    assert {hit["kind"] for hit in body["hits"]} <= expected
    assert sorted(body["kinds"]) == sorted(expected)


async def test_limit_and_offset_page_through_the_same_order(
    api: RunningApp, auth: dict[str, str]
) -> None:
    whole = [hit["id"] for hit in (await search(api, auth, q="matrix"))["hits"]]
    assert len(whole) >= 3
    pages = [
        [hit["id"] for hit in (await search(api, auth, q="matrix", limit=1, offset=i))["hits"]]
        for i in range(len(whole) + 1)
    ]
    assert pages == [[item] for item in whole] + [[]]


async def test_no_match_is_an_empty_list(api: RunningApp, auth: dict[str, str]) -> None:
    body = await search(api, auth, q="zzzqqqxxx")
    assert body["hits"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "q"),
        ("q=", "q"),
        ("q=%20%20%09", "q"),
        ("q=" + "a" * 201, "q"),
        ("q=a%00b", "q"),
        ("q=a%01b", "q"),
        ("q=a&q=b", "q"),
        ("q=a&limit=0", "limit"),
        ("q=a&limit=101", "limit"),
        ("q=a&limit=-3", "limit"),
        ("q=a&limit=abc", "limit"),
        ("q=a&limit=1.5", "limit"),
        ("q=a&limit=99999999999999999999", "limit"),
        ("q=a&limit=%D9%A1", "limit"),  # Arabic-Indic one
        ("q=a&offset=-1", "offset"),
        ("q=a&offset=10001", "offset"),
        ("q=a&offset=x", "offset"),
        ("q=a&kind=film", "kind.0"),
        ("q=a&kind=movie&kind=", "kind.1"),
        ("q=a&kind=movie,,series", "kind.1"),
    ],
)
async def test_bad_parameters_are_problems_with_stable_codes(
    api: RunningApp, auth: dict[str, str], query: str, field: str
) -> None:
    # The query is declared (modules/search/query.py): every bad value is one code,
    # 422 validation_failed, whose field names it; an unknown kind's message lists the kinds.
    reply = await api.client.get(f"{SEARCH}?{query}", headers=auth)
    body = assert_problem(reply, 422, "validation_failed")
    assert body["field"] == field
    if field.startswith("kind"):
        assert "'episode', 'movie', 'person' or 'series'" in body["detail"]


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "-",
        "- -matrix",
        "or",
        "!!! & | ( ) : * <->",
        "'; DROP TABLE search_documents; --",
        "\\",
        "%_%",
        "the",
        "マトリックス",
        "ﻣﺎﺗﺮﻳﻜﺲ",
        "🎬🍿",
        "a" * 200,
        "x " * 100,
        '"the matrix" -reloaded',
    ],
)
async def test_odd_queries_answer_200_never_500(
    api: RunningApp, auth: dict[str, str], query: str
) -> None:
    body = await search(api, auth, q=query)
    assert isinstance(body["hits"], list)
    if query == '"the matrix" -reloaded':
        ids = [hit["id"] for hit in body["hits"]]
        assert "m-matrix" in ids and "m-reloaded" not in ids


async def test_search_requires_a_signed_in_caller(api: RunningApp) -> None:
    assert_problem(await api.client.get(SEARCH, params={"q": "matrix"}), 401, "unauthenticated")
    reply = await api.client.get(SEARCH, params={"q": "matrix"}, headers=bearer("nope"))
    assert_problem(reply, 401, "unauthenticated")


async def test_the_route_is_in_the_openapi_document(api: RunningApp, auth: dict[str, str]) -> None:
    reply = await api.client.get("/api/v1/openapi.json", headers=auth)
    assert reply.status_code == 200
    assert "get" in reply.json()["paths"][SEARCH]


async def test_an_unreachable_database_is_503_with_retry_after_not_500() -> None:
    """The real service over a pool that is not open: the database's own outage answer."""
    from revenge.http import Principal, Request, Router
    from revenge.modules.search import add_search_route

    async def signed_in(request: Request) -> Principal:
        return Principal(1, "someone", "user", "session", "hash")

    router = Router()
    add_search_route(
        router, SearchService(PostgresSearch(Database("postgresql://127.0.0.1:1/none")))
    )
    app = HttpApp(router, authenticator=signed_in)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        reply = await client.get(SEARCH, params={"q": "matrix"})
    assert_problem(reply, 503, "database_unavailable")
    assert int(reply.headers["retry-after"]) >= 1


async def test_a_default_install_reports_healthy_and_every_family_from_the_first_scrape(
    api: RunningApp,
) -> None:
    """No Redis configured (the default): the cache is disabled, not a fault."""
    operator = {"authorization": f"Bearer {SCRAPE_TOKEN}"}  # the details are for operators
    body = (await api.client.get("/health", headers=operator)).json()
    assert body["status"] == "healthy", body
    assert body["services"]["cache"]["healthy"] is True
    assert body["services"]["auth_revocations"]["healthy"] is True
    text = (await api.client.get("/metrics", headers=operator)).text
    # The cold transcoder was never used, yet its series are there, at zero.
    assert 'revenge_lazy_init_total{outcome="success",service="transcoder"} 0.0' in text
    assert 'revenge_offload_total{reason="idle",service="transcoder"} 0.0' in text
    assert 'revenge_degraded_services{service="cache"} 0.0' in text
    assert 'revenge_fallback_total{service="cache"} 0.0' in text
