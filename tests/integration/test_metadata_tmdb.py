"""TMDb v3 as a remote metadata provider, against a local server that answers like TMDb's
documented API (``_tmdb_server.py``: no internet reaches this machine, so the real TMDb is
never called), over real sockets, with the real PostgreSQL, scanner and image pipeline.

Checked: matching by the NFO's ids first (``/find``, ``/tv/{id}``), then by title and
year; episodes through their series; fill-only writes; remote posters downloaded by
``images_process`` (content-type check and size cap); answers cached in PostgreSQL for
their ``max-age`` (or the configured default) with no API key in the cache; 429 retried
after ``Retry-After``; 5xx retried; slow, malformed, huge and non-JSON answers bounded and
refused; the rate limit spacing requests; an unreachable server degrading ``/health``
(never a 500) while the rest works; the API key in no log line and redacted in the config
dump.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from revenge.config import Settings
from revenge.contract import JOBS, JobContext, assemble
from revenge.infra.db import Database
from revenge.infra.jobs.config import WorkerConfig
from revenge.modules.library.images import process_image
from revenge.modules.metadata import (
    METADATA_FETCH,
    METADATA_PROVIDERS,
    REGISTRY,
    Lookup,
    ProviderAnswerError,
    ProviderUnavailable,
    fetch_item,
)
from revenge.modules.metadata.tmdb import build
from revenge.runtime.errors import ServiceInitFailed
from revenge.wiring import modules
from tests.integration._redis_server import free_port
from tests.integration._tmdb_server import API_KEY, TmdbServer
from tests.integration.metadata_support import item_values, scan_new_library, video

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

WIRE_NFO = b"""<tvshow><title>The Wire</title><uniqueid type="tmdb">1438</uniqueid></tvshow>"""
ALIEN_NFO = b"""<movie><title>Alien</title><year>1979</year>
<uniqueid type="imdb" default="true">tt0078748</uniqueid></movie>"""


@pytest.fixture(scope="module")
def server() -> Iterator[TmdbServer]:
    with TmdbServer() as running:
        yield running


@pytest.fixture(autouse=True)
def _reset(server: TmdbServer) -> None:
    server.rate_limited = server.errors = 0
    server.delay = 0.0
    server.retry_after = "1"
    server.malformed.clear()
    server.huge.clear()
    server.html.clear()
    server.image_type = None
    server.max_age = 3600


@pytest_asyncio.fixture(loop_scope="module")
async def clean_cache(db: Database) -> None:
    await db.execute("DELETE FROM metadata_http_cache WHERE provider = 'tmdb'")


def settings_for(url: str, **metadata: Any) -> Settings:
    return Settings(
        metadata={"tmdb_api_key": API_KEY, "tmdb_url": url, "tmdb_timeout": "3s", **metadata}
    )


async def movies(db: Database, root: Path) -> dict[str, int]:
    video(root / "Alien (1979)" / "Alien (1979).mkv")
    (root / "Alien (1979)" / "movie.nfo").write_bytes(ALIEN_NFO)
    video(root / "Heat (1995)" / "Heat (1995).mkv")
    video(root / "Unknown Film (2003)" / "Unknown Film (2003).mkv")
    return await scan_new_library(db, root, "movies")


async def shows(db: Database, root: Path) -> dict[str, int]:
    video(root / "The Wire" / "Season 01" / "The Wire - S01E02 - The Detail.mkv")
    (root / "The Wire" / "tvshow.nfo").write_bytes(WIRE_NFO)
    return await scan_new_library(db, root, "tv")


async def test_matches_fills_caches_and_downloads_art(
    db: Database, server: TmdbServer, tmp_path: Path, clean_cache: None,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    ids = await movies(db, tmp_path / "movies") | await shows(db, tmp_path / "tv")
    settings = settings_for(server.url)
    provider = await build(settings, db)
    providers = await REGISTRY.build(settings, db)
    assert [p.name for p in providers.providers] == ["tmdb"]
    await providers.aclose()
    from revenge.modules.metadata import Providers

    providers = Providers([provider])
    server.requests.clear()

    alien = await fetch_item(db, providers, ids["movie:Alien"])
    assert alien.outcome == "matched"
    # the NFO's imdb id, through /find: never a search
    assert [r.path for r in server.api_requests()] == ["/3/find/tt0078748", "/3/movie/348"]
    assert server.api_requests("/find/tt0078748")[0].query["external_source"] == "imdb_id"
    a = await item_values(db, ids["movie:Alien"])
    assert a["overview"] == "TMDb's Alien." and a["sources"]["overview"] == "remote"
    assert a["tagline"] == "In space no one can hear you scream." and a["content_rating"] == "R"
    assert a["genres"] == ["Horror", "Science Fiction"] and a["runtime"] == 117 * 60
    assert a["ids"] == {"imdb": "tt0078748", "tmdb": "348"}
    assert {(p["name"], p["type"]) for p in a["people"]} == {
        ("Sigourney Weaver", "actor"), ("Ridley Scott", "director"), ("Dan O'Bannon", "writer")
    }  # fmt: skip

    server.requests.clear()
    heat = await fetch_item(db, providers, ids["movie:Heat"])
    search = server.api_requests("/search/movie")
    assert search and search[0].query == {
        "query": "Heat", "year": "1995", "include_adult": "false", "api_key": API_KEY
    }  # fmt: skip
    assert (
        heat.outcome == "matched"
        and (await item_values(db, ids["movie:Heat"]))["ids"]["tmdb"] == "949"
    )
    assert (await fetch_item(db, providers, ids["movie:Unknown Film"])).outcome == "no_match"

    # a series by the tvshow.nfo's tmdb id; its episode through the series
    series = await fetch_item(db, providers, ids["series:The Wire"])
    assert series.outcome == "matched"
    w = await item_values(db, ids["series:The Wire"])
    assert w["studios"] == ["HBO"] and w["content_rating"] == "TV-MA"
    assert w["ids"] == {"tmdb": "1438", "imdb": "tt0306414", "tvdb": "79126"}
    episode = await fetch_item(db, providers, ids["episode:The Detail"])
    assert episode.outcome == "matched"
    assert server.api_requests("/tv/1438/season/1/episode/2")
    e = await item_values(db, ids["episode:The Detail"])
    assert e["overview"] == "Episode 2." and e["runtime"] == 58 * 60

    # cached for the answer's max-age; keys never hold the API key
    rows = await db.fetch_all(
        "SELECT key, extract(epoch FROM expires_at - fetched_at) FROM metadata_http_cache"
        " WHERE provider = 'tmdb'"
    )
    assert rows and all(API_KEY not in r[0] for r in rows)
    assert {round(float(r[1])) for r in rows} == {3600}
    server.requests.clear()
    await db.execute("DELETE FROM metadata_lookups WHERE item_id = %s", (ids["movie:Alien"],))
    await db.execute(
        "UPDATE items SET overview = NULL, field_sources = field_sources - 'overview'"
        " WHERE id = %s",
        (ids["movie:Alien"],),
    )
    assert (await fetch_item(db, providers, ids["movie:Alien"])).filled == ("overview",)
    assert server.api_requests() == []  # every answer came from the cache

    # remote art through the image pipeline: downloaded, checked, made into variants
    images = alien.images + heat.images + series.images + episode.images
    assert len(images) == 5
    out = tmp_path / "images"
    assert {await process_image(db, out, i) for i in images} == {"ok"}
    assert len(server.requests) >= 5
    await provider.aclose()
    assert not any(API_KEY in r.getMessage() for r in caplog.records)


async def test_cache_lifetime_default_when_no_max_age(
    db: Database, server: TmdbServer, clean_cache: None
) -> None:
    server.max_age = None
    provider = await build(settings_for(server.url, tmdb_cache_ttl="2h"), db)
    try:
        await provider.client.get("/movie/949")
        row = await db.fetch_one(
            "SELECT extract(epoch FROM expires_at - fetched_at) FROM metadata_http_cache"
            " WHERE provider = 'tmdb' AND key = '/movie/949'"
        )
        assert row is not None and round(float(row[0])) == 7200
        # an expired row is not used: asked again
        await db.execute("UPDATE metadata_http_cache SET expires_at = now() - interval '1 s'")
        before = len(server.api_requests("/movie/949"))
        await provider.client.get("/movie/949")
        assert len(server.api_requests("/movie/949")) == before + 1
    finally:
        await provider.aclose()


async def test_429_retried_after_retry_after_and_5xx_retried(
    db: Database, server: TmdbServer, clean_cache: None
) -> None:
    provider = await build(settings_for(server.url), db)
    try:
        server.requests.clear()
        server.rate_limited, server.retry_after = 1, "1"
        assert (await provider.client.get("/movie/348"))["title"] == "Alien"
        first, second = server.api_requests("/movie/348")
        assert second.at - first.at >= 0.95  # Retry-After honoured, not a quick retry
        server.errors = 2
        assert (await provider.client.get("/movie/949"))["title"] == "Heat"
        assert len(server.api_requests("/movie/949")) == 3
        # a Retry-After longer than the call may take: give up at once, saying when to retry
        server.rate_limited, server.retry_after = 1, "120"
        with pytest.raises(ProviderUnavailable) as caught:
            await provider.client.get("/tv/1438")
        assert caught.value.retry_after == 120
    finally:
        await provider.aclose()


async def test_bad_answers_are_refused_and_bounded(
    db: Database, server: TmdbServer, clean_cache: None
) -> None:
    provider = await build(settings_for(server.url, tmdb_timeout="1s"), db)
    try:
        for broken, message in (("malformed", "malformed JSON"), ("html", "content type text/html"),
                                ("huge", "larger than")):  # fmt: skip
            getattr(server, broken).add("/movie/348")
            with pytest.raises(ProviderAnswerError, match=message):
                await provider.client.get("/movie/348")
            getattr(server, broken).clear()
        server.delay = 2.0  # slower than the 1 s bound of a whole call
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable, match="no answer within 1s"):
            await provider.client.get("/movie/949")
        assert time.monotonic() - started < 1.9
        server.delay = 0.0
        # nothing broken was cached
        assert (await provider.client.get("/movie/348"))["title"] == "Alien"
        wrong = await db.fetch_one(
            "SELECT count(*) FROM metadata_http_cache WHERE provider = 'tmdb' AND status <> 200"
        )
        assert wrong is not None and wrong[0] == 0
    finally:
        await provider.aclose()


async def test_unusable_answer_recorded_on_the_item(
    db: Database, server: TmdbServer, tmp_path: Path, clean_cache: None
) -> None:
    ids = await movies(db, tmp_path / "movies")
    provider = await build(settings_for(server.url), db)
    from revenge.modules.metadata import Providers

    try:
        server.malformed.add("/movie/348")
        result = await fetch_item(db, Providers([provider]), ids["movie:Alien"])
        assert result.outcome == "unusable" and "malformed JSON" in (result.reason or "")
        assert (await item_values(db, ids["movie:Alien"]))["overview"] is None
    finally:
        await provider.aclose()


async def test_rate_limit_spaces_requests(db: Database, server: TmdbServer) -> None:
    provider = await build(settings_for(server.url, tmdb_rate_limit=20), db)
    try:
        server.requests.clear()
        for _ in range(30):
            await provider.client.get("/configuration", cached=False)
        times = [r.at for r in server.api_requests("/configuration")]
        assert len(times) == 30
        # 30 starts at 20 a second take at least 29/20 s (less one start's transit jitter),
        # and no second holds more than 20 of them (+1 for a window's edges)
        assert times[-1] - times[0] >= 1.35
        assert max(sum(1 for t in times if a <= t < a + 1.0) for a in times) <= 21
    finally:
        await provider.aclose()


async def test_image_checks(db: Database, server: TmdbServer, tmp_path: Path) -> None:
    ids = await movies(db, tmp_path / "movies")
    item = ids["movie:Heat"]

    async def remote(url: str) -> int:
        row = await db.fetch_one(
            "INSERT INTO images (item_id, kind, source, source_url) VALUES (%s, 'banner',"
            " 'remote', %s) ON CONFLICT (item_id, kind, source, coalesce(source_path, ''::bytea),"
            " coalesce(file_id, 0)) DO UPDATE SET source_url = EXCLUDED.source_url,"
            " status = 'pending' RETURNING id",
            (item, url),
        )
        assert row is not None
        return int(row[0])

    async def reason(image_id: int) -> str:
        row = await db.fetch_one("SELECT status, reason FROM images WHERE id = %s", (image_id,))
        assert row is not None and row[0] == "failed"
        return str(row[1])

    out = tmp_path / "images"
    server.image_type = "text/html"
    image = await remote(server.image_base + "w780/heat.png")
    assert await process_image(db, out, image) == "failed"
    assert "not an image" in await reason(image)
    server.image_type = None
    assert await process_image(db, out, image, max_download=100) == "failed"
    assert "larger than 100 bytes" in await reason(image)
    image = await remote(server.image_base + "w780/nothing.png")
    assert await process_image(db, out, image) == "failed"
    assert "404" in await reason(image)
    image = await remote(f"http://127.0.0.1:{free_port()}/x.png")
    assert await process_image(db, out, image) == "failed"
    assert "download failed" in await reason(image)
    image = await remote(server.image_base + "w780/heat.png")
    assert await process_image(db, out, image) == "ok"


async def test_server_down_degrades_health_never_fails_the_rest(
    db: Database, migrated_url: str, server: TmdbServer, tmp_path: Path, clean_cache: None
) -> None:
    heat = (await movies(db, tmp_path / "movies"))["movie:Heat"]
    url = f"http://127.0.0.1:{free_port()}/3"  # nothing listens there
    settings = Settings(
        database={"url": migrated_url},
        jobs={"in_process_worker": False},
        metadata={"tmdb_api_key": API_KEY, "tmdb_url": url, "tmdb_timeout": "2s"},
    )
    assembly = assemble(settings, modules(settings), role="serve")
    runtime = assembly.runtime
    async with runtime:
        await runtime.health.refresh()
        code, body = runtime.health_report()
        assert body["services"]["metadata_providers"]["initialized"] is False
        assert "disabled" not in body["services"]["metadata_providers"]
        ctx = JobContext(
            0, METADATA_FETCH.name, 0, runtime.get(JOBS), WorkerConfig(url=migrated_url), runtime
        )
        with pytest.raises(ServiceInitFailed):
            await assembly.kinds.body(METADATA_FETCH.name)(ctx, {"item": heat})
        # recorded: the due job leaves the item for an hour while the queue retries the job
        row = await db.fetch_one(
            "SELECT outcome, reason FROM metadata_lookups WHERE item_id = %s", (heat,)
        )
        assert row is not None and row[0] == "unavailable" and API_KEY not in row[1]
        await runtime.health.refresh()
        code, body = runtime.health_report()
        status = body["services"]["metadata_providers"]
        assert code == 200 and body["status"] == "degraded"
        assert status["healthy"] is False and status["initialized"] is False
        assert API_KEY not in str(body)
        # the rest answers: the database and the other services are fine
        assert body["services"]["database"]["healthy"] is True
    # a key set but the server reachable: ready after first use; no key: disabled
    plain = assemble(Settings(database={"url": migrated_url}), modules(Settings()), role="serve")
    assert not plain.runtime.provides(METADATA_PROVIDERS)


async def test_api_key_redacted_in_the_config_dump() -> None:
    dumped = str(settings_for("http://127.0.0.1:9/3").redacted())
    assert API_KEY not in dumped and "**********" in dumped


async def test_lookup_of_an_episode_without_series_match(db: Database, server: TmdbServer) -> None:
    provider = await build(settings_for(server.url), db)
    try:
        lookup = Lookup("episode", "Pilot", None, {}, "en-US", 1, 1, {}, "No Such Show")
        assert await provider.lookup(lookup) is None
    finally:
        await provider.aclose()
