"""TMDb (The Movie Database) v3 as a remote metadata provider: :data:`SPEC` for the registry.

On when ``metadata.providers`` names ``tmdb`` (the default) and ``metadata.tmdb_api_key``
is set. Built by the cold ``metadata_providers`` service: the client (:mod:`.client`) and
TMDb's ``/configuration`` (the image base URL and sizes, cached like every answer).

Matching, by TMDb's documented routes: a ``tmdb`` id from the NFO names the item; else
an ``imdb`` id (``/find/{id}?external_source=imdb_id``; series also ``tvdb``); else a
search by title and year (``/search/movie``, ``/search/tv``) whose result must carry the
same title (and year, give or take one). Details: ``/movie/{id}``, ``/tv/{id}`` and
``/tv/{id}/season/{n}/episode/{m}`` with their credits, certifications and external ids
appended in the same call. An episode is matched through its series.
"""

from __future__ import annotations

import re
from typing import Any

from revenge.config import Settings
from revenge.infra.db import Database
from revenge.infra.http_client import tls_context
from revenge.modules.metadata.cache import HttpCache
from revenge.modules.metadata.provider import Lookup, ProviderAnswerError, RemoteMetadata
from revenge.modules.metadata.registry import ProviderSpec
from revenge.modules.metadata.tmdb import mapping as m
from revenge.modules.metadata.tmdb.client import TmdbClient

__all__ = ["SPEC", "TmdbProvider", "build", "configured"]

_IMDB = re.compile(r"^tt\d{5,10}$")
_DIGITS = re.compile(r"^\d{1,10}$")
_WANTED_SIZES = {"poster": ("poster_sizes", "w780"), "fanart": ("backdrop_sizes", "w1280"),
                 "thumb": ("still_sizes", "w300")}  # fmt: skip


class TmdbProvider:
    name = "tmdb"

    def __init__(self, client: TmdbClient, image_base: str, sizes: dict[str, str]) -> None:
        self.client = client
        self.image_base = image_base
        self.sizes = sizes

    def kinds(self) -> frozenset[str]:
        return frozenset({"movie", "series", "episode"})

    async def lookup(self, item: Lookup) -> RemoteMetadata | None:
        language = {"language": item.language}
        region = item.language.partition("-")[2] or "US"
        if item.kind == "movie":
            found = await self._movie_id(item.ids, item.title, item.year)
            data = found and await self.client.get(
                f"/movie/{found}", {"append_to_response": "credits,release_dates", **language}
            )
            if not data:
                return None
            return RemoteMetadata(
                self.name, m.movie_values(data, region), m.movie_ids(data), self._images(data)
            )
        if item.kind == "series":
            found = await self._tv_id(item.ids, item.title, item.year)
            data = found and await self._tv(found, language)
            if not data:
                return None
            return RemoteMetadata(
                self.name, m.tv_values(data, region), m.tv_ids(data), self._images(data)
            )
        if item.kind == "episode" and item.season_number is not None and item.episode_number:
            show = await self._tv_id(item.series_ids, item.series_title or "", None)
            if show is None:
                return None
            data = await self.client.get(
                f"/tv/{show}/season/{item.season_number}/episode/{item.episode_number}",
                {"append_to_response": "external_ids", **language},
            )
            if not data:
                return None
            return RemoteMetadata(
                self.name, m.episode_values(data), m.tv_ids(data), self._images(data)
            )
        return None

    async def _movie_id(self, ids: Any, title: str, year: int | None) -> int | None:
        tmdb = str(ids.get("tmdb", ""))
        if _DIGITS.match(tmdb):
            return int(tmdb)
        imdb = str(ids.get("imdb", ""))
        if _IMDB.match(imdb):
            found = await self._find(imdb, "imdb_id", "movie_results")
            if found is not None:
                return found
        return await self._search("/search/movie", "year", title, year, tv=False)

    async def _tv_id(self, ids: Any, title: str, year: int | None) -> int | None:
        tmdb = str(ids.get("tmdb", ""))
        if _DIGITS.match(tmdb):
            return int(tmdb)
        for source, pattern in (("imdb", _IMDB), ("tvdb", _DIGITS)):
            value = str(ids.get(source, ""))
            if pattern.match(value):
                found = await self._find(value, f"{source}_id", "tv_results")
                if found is not None:
                    return found
        return await self._search("/search/tv", "first_air_date_year", title, year, tv=True)

    async def _find(self, external: str, source: str, results: str) -> int | None:
        data = await self.client.get(f"/find/{external}", {"external_source": source})
        hits = data.get(results) if data else None
        if isinstance(hits, list) and hits and isinstance(hits[0], dict):
            first = hits[0].get("id")
            if isinstance(first, int) and not isinstance(first, bool):
                return first
        return None

    async def _search(
        self, path: str, year_param: str, title: str, year: int | None, *, tv: bool
    ) -> int | None:
        if not title.strip():
            return None
        params = {"query": title.strip()[:200], "include_adult": "false"}
        if year is not None:
            data = await self.client.get(path, {**params, year_param: str(year)})
            found = m.pick_match(data.get("results") if data else None, title, year, tv=tv)
            if found is not None:
                return found
        data = await self.client.get(path, params)  # a year off by one, or none given
        return m.pick_match(data.get("results") if data else None, title, year, tv=tv)

    async def _tv(self, show: int, language: dict[str, str]) -> dict[str, Any] | None:
        return await self.client.get(
            f"/tv/{show}",
            {"append_to_response": "credits,content_ratings,external_ids", **language},
        )

    def _images(self, data: dict[str, Any]) -> tuple[Any, ...]:
        return m.images(data, self.image_base, self.sizes)

    async def check(self) -> None:
        """Reach TMDb (never from the cache): ``/health`` shows it degraded when this fails."""
        await self.client.get("/configuration", cached=False)

    async def aclose(self) -> None:
        await self.client.aclose()


def configured(settings: Settings) -> bool:
    return bool(settings.metadata.tmdb_api_key.get_secret_value())


async def build(settings: Settings, database: Database) -> TmdbProvider:
    """The client, and TMDb's image configuration (the first call; cached for its lifetime)."""
    s = settings.metadata
    client = TmdbClient(
        s.tmdb_url,
        s.tmdb_api_key.get_secret_value(),
        timeout=s.tmdb_timeout,
        rate=s.tmdb_rate_limit,
        cache=HttpCache(database, "tmdb"),
        default_ttl=s.tmdb_cache_ttl,
        tls=await tls_context(),
    )
    try:
        config = await client.get("/configuration")
        images = config.get("images") if config else None
        base = images.get("secure_base_url") if isinstance(images, dict) else None
        if not isinstance(base, str) or not base.startswith(("https://", "http://")):
            raise ProviderAnswerError("TMDb /configuration: no image base URL")
        sizes = {}
        for kind, (key, preferred) in _WANTED_SIZES.items():
            offered = images.get(key) if isinstance(images, dict) else None
            sizes[kind] = (
                preferred if isinstance(offered, list) and preferred in offered else "original"
            )
    except BaseException:
        await client.aclose()
        raise
    return TmdbProvider(client, base.rstrip("/") + "/", sizes)


SPEC = ProviderSpec("tmdb", configured, build)
