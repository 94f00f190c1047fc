"""TMDb v3 JSON -> item fields (pure): movies, TV shows, episodes, search matches.

Field names follow TMDb's documented answers (``/movie/{id}``, ``/tv/{id}``,
``/tv/{id}/season/{n}/episode/{m}`` with ``append_to_response``). Anything missing or of
another type is left out; :func:`revenge.modules.metadata.fill.clean` checks ranges.

>>> movie_values({"title": "Heat", "release_date": "1995-12-15", "runtime": 170,
...               "genres": [{"id": 80, "name": "Crime"}]})["runtime_seconds"]
10200
>>> pick_match([{"id": 1, "title": "Heat", "release_date": "1986-01-01"},
...             {"id": 2, "title": "Heat", "release_date": "1995-12-15"}], "heat", 1995)
2
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from revenge.modules.metadata.provider import RemoteImage

__all__ = [
    "episode_values",
    "images",
    "movie_ids",
    "movie_values",
    "normalise",
    "pick_match",
    "tv_ids",
    "tv_values",
]


def normalise(title: str) -> str:
    """Case, accents and punctuation out, ``&`` as ``and``: how two titles are compared."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    text = text.replace("&", " and ")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _year(date: Any) -> int | None:
    if isinstance(date, str) and len(date) >= 4 and date[:4].isdigit():
        return int(date[:4])
    return None


def pick_match(results: Any, title: str, year: int | None, *, tv: bool = False) -> int | None:
    """The id of the search result that is this title (and year, give or take one: release
    dates differ by country), most popular first as TMDb orders them."""
    if not isinstance(results, list):
        return None
    wanted = normalise(title)
    names = ("name", "original_name") if tv else ("title", "original_title")
    date_key = "first_air_date" if tv else "release_date"
    for exact_year in (True, False):
        for r in results:
            if not isinstance(r, dict) or not isinstance(r.get("id"), int):
                continue
            if not any(isinstance(r.get(n), str) and normalise(r[n]) == wanted for n in names):
                continue
            found = _year(r.get(date_key))
            if year is None or found == year or (not exact_year and found in (year - 1, year + 1)):
                return int(r["id"])
    return None


def _names(items: Any, key: str = "name") -> list[str]:
    if not isinstance(items, list):
        return []
    return [i[key] for i in items if isinstance(i, dict) and isinstance(i.get(key), str)]


def _people(credits: Any) -> list[dict[str, Any]]:
    if not isinstance(credits, dict):
        return []
    out: list[dict[str, Any]] = []
    cast = credits.get("cast")
    for c in cast[:50] if isinstance(cast, list) else []:
        if isinstance(c, dict) and isinstance(c.get("name"), str):
            out.append({"name": c["name"], "role": c.get("character"), "type": "actor",
                        "order": c.get("order")})  # fmt: skip
    crew = credits.get("crew")
    for c in crew if isinstance(crew, list) else []:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            continue
        if c.get("job") == "Director":
            out.append({"name": c["name"], "type": "director"})
        elif c.get("department") == "Writing":
            out.append({"name": c["name"], "type": "writer"})
    return out


def _minutes(value: Any) -> int | None:
    return value * 60 if isinstance(value, int) and value > 0 else None


def _certification(release_dates: Any, region: str) -> str | None:
    results = release_dates.get("results") if isinstance(release_dates, dict) else None
    for r in results if isinstance(results, list) else []:
        if isinstance(r, dict) and r.get("iso_3166_1") == region:
            for d in r.get("release_dates") or []:
                if isinstance(d, dict) and str(d.get("certification") or "").strip():
                    return str(d["certification"]).strip()
    return None


def _tv_rating(content_ratings: Any, region: str) -> str | None:
    results = content_ratings.get("results") if isinstance(content_ratings, dict) else None
    for r in results if isinstance(results, list) else []:
        if (
            isinstance(r, dict)
            and r.get("iso_3166_1") == region
            and isinstance(r.get("rating"), str)
        ):
            return str(r["rating"]) or None
    return None


def movie_values(data: dict[str, Any], region: str = "US") -> dict[str, Any]:
    return {
        "original_title": data.get("original_title"),
        "year": _year(data.get("release_date")),
        "premiered": data.get("release_date") or None,
        "overview": data.get("overview"),
        "tagline": data.get("tagline"),
        "runtime_seconds": _minutes(data.get("runtime")),
        "rating": data.get("vote_average") or None,
        "content_rating": _certification(data.get("release_dates"), region),
        "genres": _names(data.get("genres")),
        "studios": _names(data.get("production_companies")),
        "people": _people(data.get("credits")),
    }


def tv_values(data: dict[str, Any], region: str = "US") -> dict[str, Any]:
    runtimes = data.get("episode_run_time")
    runtime = runtimes[0] if isinstance(runtimes, list) and runtimes else None
    return {
        "original_title": data.get("original_name"),
        "year": _year(data.get("first_air_date")),
        "premiered": data.get("first_air_date") or None,
        "overview": data.get("overview"),
        "tagline": data.get("tagline"),
        "runtime_seconds": _minutes(runtime),
        "rating": data.get("vote_average") or None,
        "content_rating": _tv_rating(data.get("content_ratings"), region),
        "genres": _names(data.get("genres")),
        "studios": _names(data.get("networks")) or _names(data.get("production_companies")),
        "people": _people(data.get("credits") or data.get("aggregate_credits")),
    }


def episode_values(data: dict[str, Any]) -> dict[str, Any]:
    people = _people({"cast": data.get("guest_stars"), "crew": data.get("crew")})
    return {
        "premiered": data.get("air_date") or None,
        "year": _year(data.get("air_date")),
        "overview": data.get("overview"),
        "runtime_seconds": _minutes(data.get("runtime")),
        "rating": data.get("vote_average") or None,
        "people": people,
    }


def _id_text(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def movie_ids(data: dict[str, Any]) -> dict[str, str]:
    ids = {"tmdb": _id_text(data.get("id")), "imdb": _id_text(data.get("imdb_id"))}
    return {k: v for k, v in ids.items() if v}


def tv_ids(data: dict[str, Any]) -> dict[str, str]:
    raw = data.get("external_ids")
    external: dict[str, Any] = raw if isinstance(raw, dict) else {}
    ids = {
        "tmdb": _id_text(data.get("id")),
        "imdb": _id_text(external.get("imdb_id")),
        "tvdb": _id_text(external.get("tvdb_id")),
    }
    return {k: v for k, v in ids.items() if v}


def images(data: dict[str, Any], base: str, sizes: dict[str, str]) -> tuple[RemoteImage, ...]:
    """Poster, backdrop (our ``fanart``) and an episode's still (``thumb``) as full URLs."""
    out: list[RemoteImage] = []
    for field, kind in (("poster_path", "poster"), ("backdrop_path", "fanart"),
                        ("still_path", "thumb")):  # fmt: skip
        path = data.get(field)
        if isinstance(path, str) and re.fullmatch(r"/[A-Za-z0-9_.-]{1,200}", path):
            out.append(RemoteImage(kind, f"{base}{sizes.get(kind, 'original')}{path}"))  # type: ignore[arg-type]
    return tuple(out)
