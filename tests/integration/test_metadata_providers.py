"""Remote metadata providers (issue 10 item 3): the interface, the registry and the fill-only
step, on a real scan of real files in the real PostgreSQL, with real provider
implementations written here (an in-memory catalogue that answers like a remote service:
by ids first, then by title and year). They go through the registry and the module's cold
``metadata_providers`` service like TMDb does; nothing of Revenge is mocked.

Checked: only fields local sources left empty are filled, never a locked one; ids from the
NFO are used first and the ids learned are merged; later providers are asked only for what
is still missing; odd values are dropped without failing the write; an unusable answer is
recorded, an unreachable provider recorded and raised (the job retries); remote artwork
becomes pending ``images`` rows; the cold service is built by the first job, shows in
``/health`` as not initialised / ready / offloaded (closed) and records its spin-up; with no
provider configured it is reported disabled and no job kind exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from revenge.config import Settings
from revenge.contract import DATABASE, JOBS, JobContext, Module, assemble
from revenge.infra.db import Database
from revenge.infra.jobs.config import WorkerConfig
from revenge.modules.library.edit import edit_item
from revenge.modules.metadata import (
    METADATA_DUE,
    METADATA_FETCH,
    METADATA_PROVIDERS,
    Lookup,
    MetadataProvider,
    ProviderAnswerError,
    ProviderRegistry,
    ProviderSpec,
    ProviderUnavailable,
    RemoteImage,
    RemoteMetadata,
    fetch_item,
    install_providers,
)
from revenge.wiring import modules
from tests.integration.metadata_support import item_values, scan_new_library, video

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

ALIEN_NFO = b"""<?xml version="1.0" encoding="UTF-8"?>
<movie><title>Alien</title><year>1979</year>
<plot>The crew of the Nostromo answers a distress call.</plot>
<uniqueid type="imdb" default="true">tt0078748</uniqueid></movie>"""

FULL = {
    "original_title": "Original",
    "year": 1995,
    "premiered": "1995-12-15",
    "overview": "From the provider.",
    "tagline": "A Los Angeles crime saga.",
    "runtime_seconds": 10_200,
    "rating": 8.3,
    "content_rating": "R",
    "genres": ["Crime", "Drama"],
    "studios": ["Warner Bros."],
    "people": [{"name": "Al Pacino", "role": "Vincent Hanna", "type": "actor", "order": 0}],
}


class Catalogue:
    """A remote service's data, and what it was asked (shared by the providers over it)."""

    def __init__(self, by_id: Mapping[str, dict[str, Any]], by_title: Mapping[Any, str]) -> None:
        self.by_id = dict(by_id)
        self.by_title = dict(by_title)
        self.asked: list[Lookup] = []
        self.down = False
        self.garbled = False


class CatalogueProvider:
    """A real provider over a :class:`Catalogue`: ids first, then title and year."""

    def __init__(self, name: str, catalogue: Catalogue, *, only: tuple[str, ...] = ()) -> None:
        self.name = name
        self.catalogue = catalogue
        self.only = only
        self.closed = False

    def kinds(self) -> frozenset[str]:
        return frozenset({"movie", "series", "episode"})

    async def lookup(self, item: Lookup) -> RemoteMetadata | None:
        c = self.catalogue
        c.asked.append(item)
        if c.down:
            raise ProviderUnavailable(f"{self.name} is down", retry_after=30)
        if c.garbled:
            raise ProviderAnswerError("malformed JSON")
        key = next((f"{k}:{v}" for k, v in sorted(item.ids.items()) if f"{k}:{v}" in c.by_id), None)
        if key is None:
            key = c.by_title.get((item.title.lower(), item.year))
        if key is None:
            return None
        entry = c.by_id[key]
        values = {k: v for k, v in entry["values"].items() if not self.only or k in self.only}
        return RemoteMetadata(self.name, values, entry["ids"], tuple(entry.get("images", ())))

    async def check(self) -> None:
        if self.catalogue.down:
            raise ConnectionError(f"{self.name} is unreachable")

    async def aclose(self) -> None:
        self.closed = True


async def test_the_test_provider_is_a_metadata_provider() -> None:
    assert isinstance(CatalogueProvider("x", Catalogue({}, {})), MetadataProvider)


async def scanned_library(db: Database, root: Path) -> dict[str, int]:
    video(root / "Alien (1979)" / "Alien (1979).mkv")
    (root / "Alien (1979)" / "movie.nfo").write_bytes(ALIEN_NFO)
    video(root / "Heat (1995)" / "Heat (1995).mkv")
    video(root / "Nowhere (2001)" / "Nowhere (2001).mkv")
    ids = await scan_new_library(db, root, "movies")
    return {key.split(":", 1)[1]: item_id for key, item_id in ids.items()}


def catalogue(image_base: str = "http://127.0.0.1:9/img") -> Catalogue:
    return Catalogue(
        {
            "imdb:tt0078748": {
                "values": {**FULL, "overview": "Remote plot.", "year": 1979, "genres": ["Horror"]},
                "ids": {"tmdb": "348", "imdb": "tt0078748"},
                "images": [RemoteImage("poster", f"{image_base}/alien.jpg"),
                           RemoteImage("fanart", f"{image_base}/alien-bg.jpg")],
            },
            "tmdb:949": {
                "values": FULL,
                "ids": {"tmdb": "949", "imdb": "tt0113277"},
                "images": [RemoteImage("poster", f"{image_base}/heat.jpg")],
            },
        },
        {("heat", 1995): "tmdb:949"},
    )  # fmt: skip


def registry_of(*providers: CatalogueProvider) -> ProviderRegistry:
    registry = ProviderRegistry()
    for p in providers:
        registry.add(ProviderSpec(p.name, lambda s: True, lambda s, db, p=p: p))
    return registry


async def lookup_row(db: Database, item_id: int) -> tuple[Any, ...]:
    row = await db.fetch_one(
        "SELECT outcome, provider, filled, reason FROM metadata_lookups WHERE item_id = %s",
        (item_id,),
    )
    assert row is not None
    return tuple(row)


async def test_fills_only_empty_unlocked_fields_ids_first(db: Database, tmp_path: Path) -> None:
    ids = await scanned_library(db, tmp_path / "movies")
    alien, heat, nowhere = ids["Alien"], ids["Heat"], ids["Nowhere"]
    await db.execute("UPDATE items SET locked_fields = '{tagline}' WHERE id = %s", (heat,))
    data = catalogue()
    registry = registry_of(CatalogueProvider("book", data))
    settings = Settings(metadata={"providers": ["book"]})
    providers = await registry.build(settings, db)

    result = await fetch_item(db, providers, alien)
    assert result.outcome == "matched" and result.provider == "book"
    # the NFO's imdb id was what the provider was asked by
    assert data.asked[-1].ids == {"imdb": "tt0078748"} and data.asked[-1].year == 1979
    a = await item_values(db, alien)
    assert a["overview"] == "The crew of the Nostromo answers a distress call."  # NFO kept
    assert a["sources"]["overview"] == "nfo" and a["sources"]["year"] in ("nfo", "filename")
    assert a["tagline"] == FULL["tagline"] and a["sources"]["tagline"] == "remote"
    assert a["genres"] == ["Horror"] and a["rating"] == pytest.approx(8.3)
    assert a["ids"] == {"imdb": "tt0078748", "tmdb": "348"}  # merged, the NFO's id kept
    assert "overview" not in result.filled and "tagline" in result.filled
    images = await db.fetch_all(
        "SELECT kind, source, source_url, status FROM images WHERE item_id = %s ORDER BY kind",
        (alien,),
    )
    assert [tuple(r) for r in images] == [
        ("fanart", "remote", "http://127.0.0.1:9/img/alien-bg.jpg", "pending"),
        ("poster", "remote", "http://127.0.0.1:9/img/alien.jpg", "pending"),
    ]
    assert sorted(result.images) == sorted(
        int(r[0]) for r in await db.fetch_all("SELECT id FROM images WHERE item_id = %s", (alien,))
    )
    assert (await lookup_row(db, alien))[0] == "matched"

    # no ids: by title and year; the locked tagline stays empty
    result = await fetch_item(db, providers, heat)
    asked = data.asked[-1]
    assert asked.ids == {} and (asked.title, asked.year) == ("Heat", 1995)
    h = await item_values(db, heat)
    assert h["tagline"] is None and "tagline" not in result.filled
    assert h["overview"] == "From the provider." and h["runtime"] == 10_200
    assert h["premiered"] == "1995-12-15" and h["people"][0]["name"] == "Al Pacino"
    assert h["ids"] == {"tmdb": "949", "imdb": "tt0113277"}

    # asked again: nothing empty but the locked field and ids it has: no change, no new image
    before = await item_values(db, heat)
    again = await fetch_item(db, providers, heat)
    assert await item_values(db, heat) == before and again.images == ()

    # not in the catalogue
    assert (await fetch_item(db, providers, nowhere)).outcome == "no_match"
    assert (await lookup_row(db, nowhere))[0] == "no_match"


async def test_fields_locked_by_an_edit_or_an_nfo_are_never_filled(
    db: Database, tmp_path: Path
) -> None:
    root = tmp_path / "movies"
    video(root / "Heat (1995)" / "Heat (1995).mkv")
    (root / "Heat (1995)" / "movie.nfo").write_bytes(
        b"<movie><title>Heat</title><lockedfields>Genres|Studios</lockedfields></movie>"
    )
    heat = (await scan_new_library(db, root, "movies"))["movie:Heat"]
    # the administrator clears overview and tagline, locking them (the route's edit); the
    # NFO's locks stay
    async with db.transaction() as conn:
        edited = await edit_item(conn, heat, {"overview": None, "tagline": None}, None, True)
    assert edited is not None
    assert edited["locked_fields"] == ["genres", "overview", "studios", "tagline"]
    providers = await registry_of(CatalogueProvider("book", catalogue())).build(
        Settings(metadata={"providers": ["book"]}), db
    )
    result = await fetch_item(db, providers, heat)
    assert result.outcome == "matched"
    h = await item_values(db, heat)
    assert (h["overview"], h["tagline"], h["genres"], h["studios"]) == (None, None, [], [])
    assert not {"overview", "tagline", "genres", "studios"} & set(result.filled)
    assert h["rating"] == pytest.approx(8.3) and h["sources"]["rating"] == "remote"


async def test_later_providers_fill_only_what_is_left(db: Database, tmp_path: Path) -> None:
    ids = await scanned_library(db, tmp_path / "movies")
    heat = ids["Heat"]
    data = catalogue()
    # the first gives ids and genres only; the second is asked with the ids the first found
    first = CatalogueProvider("first", data, only=("genres",))
    other = Catalogue(
        {"tmdb:949": {"values": {**FULL, "genres": ["Western"]}, "ids": {"tvdb": "1"}}}, {}
    )
    second = CatalogueProvider("second", other)
    registry = registry_of(first, second)
    providers = await registry.build(Settings(metadata={"providers": ["first", "second"]}), db)
    result = await fetch_item(db, providers, heat)
    assert result.provider == "first,second"
    assert other.asked[-1].ids == {"tmdb": "949", "imdb": "tt0113277"}
    h = await item_values(db, heat)
    assert h["genres"] == ["Crime", "Drama"]  # the first provider's, not the second's
    assert h["overview"] == "From the provider."
    assert h["ids"] == {"tmdb": "949", "imdb": "tt0113277", "tvdb": "1"}
    # order and "on" come from the settings: only the second, when only it is named
    assert [s.name for s in registry.enabled(Settings(metadata={"providers": ["second"]}))] == [
        "second"
    ]


async def test_odd_values_unusable_and_unreachable(db: Database, tmp_path: Path) -> None:
    ids = await scanned_library(db, tmp_path / "movies")
    heat, nowhere = ids["Heat"], ids["Nowhere"]
    odd = Catalogue(
        {"x:1": {"values": {"rating": 99, "year": 3000, "people": "nobody", "genres": [1, "Noir"],
                            "runtime_seconds": -5, "premiered": "not a date",
                            "overview": "  ", "tagline": "ok"},
                 "ids": {"BAD KEY": "1", "tmdb": "", "imdb": "tt1"},
                 "images": [RemoteImage("poster", "file:///etc/passwd")]}},
        {("heat", 1995): "x:1"},
    )  # fmt: skip
    providers = await registry_of(CatalogueProvider("odd", odd)).build(
        Settings(metadata={"providers": ["odd"]}), db
    )
    result = await fetch_item(db, providers, heat)
    assert sorted(result.filled) == ["genres", "provider_ids", "tagline"] and result.images == ()
    h = await item_values(db, heat)
    assert h["genres"] == ["Noir"] and h["rating"] is None and h["year"] == 1995
    assert h["ids"] == {"imdb": "tt1"} and h["people"] == []

    broken = Catalogue({}, {})
    providers = await registry_of(CatalogueProvider("broken", broken)).build(
        Settings(metadata={"providers": ["broken"]}), db
    )
    broken.garbled = True
    assert (await fetch_item(db, providers, nowhere)).outcome == "unusable"
    assert (await lookup_row(db, nowhere))[::3] == ("unusable", "broken: malformed JSON")
    broken.garbled, broken.down = False, True
    with pytest.raises(ProviderUnavailable):
        await fetch_item(db, providers, nowhere)
    assert (await lookup_row(db, nowhere))[::3] == ("unavailable", "broken is down")


def _assembly(url: str, registry: ProviderRegistry, providers: list[str]) -> Any:
    settings = Settings(
        database={"url": url},
        jobs={"in_process_worker": False},
        metadata={"providers": providers},
        offload={"idle_ttl": "1h"},
    )
    mods = [
        Module("metadata", lambda ctx: install_providers(ctx, registry))
        if m.name == "metadata"
        else m
        for m in modules(settings)
    ]
    return assemble(settings, mods, role="serve")


async def test_cold_service_built_by_the_job_and_offloaded(
    db: Database, migrated_url: str, tmp_path: Path
) -> None:
    ids = await scanned_library(db, tmp_path / "movies")
    data = catalogue()
    provider = CatalogueProvider("book", data)
    assembly = _assembly(migrated_url, registry_of(provider), ["book"])
    runtime = assembly.runtime
    async with runtime:
        lazy = runtime.lazy(METADATA_PROVIDERS)
        await runtime.health.refresh()
        status = runtime.health_report()[1]["services"]["metadata_providers"]
        assert status["initialized"] is False and status["healthy"] is True
        assert not lazy.initialized

        ctx = JobContext(
            0, METADATA_DUE.name, 0, runtime.get(JOBS), WorkerConfig(url=migrated_url), runtime
        )
        await assembly.kinds.body(METADATA_DUE.name)(ctx, {})
        keys = [METADATA_FETCH.dedupe_key(str(i)) for i in ids.values()]
        queued = await runtime.get(DATABASE).fetch_all(
            "SELECT dedupe_key FROM pgqueuer WHERE dedupe_key = ANY(%s)", (keys,)
        )
        assert sorted(r[0] for r in queued) == sorted(keys)
        assert not lazy.initialized  # queuing builds nothing

        fetch = assembly.kinds.body(METADATA_FETCH.name)
        await fetch(ctx, {"item": ids["Heat"]})
        assert lazy.initialized and lazy.init_count == 1
        assert (await item_values(db, ids["Heat"]))["overview"] == "From the provider."
        await runtime.health.refresh()
        status = runtime.health_report()[1]["services"]["metadata_providers"]
        assert status["initialized"] is True and status["healthy"] is True

        data.down = True  # reachable no more: degraded, never an error answer
        await runtime.health.refresh()
        code, body = runtime.health_report()
        assert code == 200 and body["status"] == "degraded"
        assert "unreachable" in body["services"]["metadata_providers"]["error"]
        data.down = False

        assert await runtime.offload_idle(idle_ttl=0.0) == ["metadata_providers"]
        assert provider.closed and not lazy.initialized
        status = runtime.health_report()[1]["services"]["metadata_providers"]
        assert status["initialized"] is False and status["healthy"] is True
        metrics = runtime.metrics
        assert metrics is not None
        samples = {
            s.name: s.value
            for m in metrics.lazy_init_seconds.collect()
            for s in m.samples
            if s.labels.get("service") == "metadata_providers"
        }
        assert samples["revenge_lazy_init_seconds_count"] == 1


async def test_no_provider_configured_is_disabled(migrated_url: str) -> None:
    assembly = _assembly(migrated_url, registry_of(CatalogueProvider("book", catalogue())), [])
    runtime = assembly.runtime
    assert not runtime.provides(METADATA_PROVIDERS)
    assert assembly.kinds.body(METADATA_FETCH.name) is None
    async with runtime:
        await runtime.health.refresh()
        code, body = runtime.health_report()
        assert code == 200
        status = body["services"]["metadata_providers"]
        assert status["initialized"] is False and status["healthy"] is True
        assert "no remote metadata provider" in status["disabled"]
    # and the shipped registry with the shipped defaults: off (TMDb needs its key)
    from revenge.modules.metadata import REGISTRY

    assert REGISTRY.enabled(Settings()) == []
