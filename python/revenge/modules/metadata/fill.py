"""The metadata step: ask the providers that are on about one item, fill what is empty.

Runs in the ``metadata_fetch`` job, never on a request. Only fields that local sources
(NFO, embedded tags, the file name) left empty and that are not locked are asked for and
written (:func:`.repository.fill_item` checks again under the row lock). Providers are
asked in ``metadata.providers`` order; each later one only for what is still missing, and
with the ids the earlier ones found. Every value is checked before it reaches a column
(:func:`clean`): a provider's odd answer costs that value, never the transaction.

>>> clean({"year": 1979, "rating": 11.0, "genres": ["Horror", 3, " "], "bogus": 1})
{'year': 1979, 'genres': ['Horror']}
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from revenge.infra.db import Database
from revenge.modules.metadata import repository as repo
from revenge.modules.metadata.provider import (
    FIELDS,
    Lookup,
    ProviderAnswerError,
    ProviderUnavailable,
    RemoteImage,
)
from revenge.modules.metadata.registry import Providers

__all__ = ["FetchResult", "clean", "clean_ids", "clean_images", "fetch_item"]

log = logging.getLogger("revenge.metadata")

KINDS = ("movie", "series", "episode")
"""Item kinds looked up remotely (a season's fields come with its series and episodes)."""

_TEXT_MAX = {"original_title": 500, "overview": 10_000, "tagline": 1000, "content_rating": 50}
_ID_KEY = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
_IMAGE_KINDS = frozenset({"poster", "fanart", "banner", "thumb", "logo", "landscape"})
_PEOPLE_TYPES = frozenset({"actor", "director", "writer"})


@dataclass(frozen=True, slots=True)
class FetchResult:
    outcome: str  # matched | no_match | unusable | complete | gone
    filled: tuple[str, ...] = ()
    images: tuple[int, ...] = ()  # pending image ids, for images_process
    provider: str | None = None
    reason: str | None = None


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text[:limit] if text else None


def _strings(value: Any, most: int = 50) -> list[str] | None:
    if not isinstance(value, list | tuple):
        return None
    out = [t for v in value if (t := _text(v, 200))]
    return list(dict.fromkeys(out))[:most] or None


def _people(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list | tuple):
        return None
    out: list[dict[str, Any]] = []
    for p in value[:200]:
        if not isinstance(p, Mapping) or not (name := _text(p.get("name"), 200)):
            continue
        kind = p.get("type")
        person: dict[str, Any] = {"name": name, "type": kind if kind in _PEOPLE_TYPES else "actor"}
        if role := _text(p.get("role"), 200):
            person["role"] = role
        order = p.get("order")
        if isinstance(order, int) and not isinstance(order, bool) and 0 <= order < 100_000:
            person["order"] = order
        out.append(person)
    return out or None


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
        return day if 1800 <= day.year <= 2200 else None
    return None


def _int(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = int(value)
    return number if low <= number <= high else None


def clean(values: Mapping[str, Any]) -> dict[str, Any]:
    """The usable values of a provider's answer, typed for their columns; the rest dropped."""
    out: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in FIELDS or name == "provider_ids":
            continue
        value: Any
        if name in _TEXT_MAX:
            value = _text(raw, _TEXT_MAX[name])
        elif name == "year":
            value = _int(raw, 1800, 2200)
        elif name == "runtime_seconds":
            value = _int(raw, 1, 100 * 3600)
        elif name == "rating":
            ok = isinstance(raw, int | float) and not isinstance(raw, bool) and 0 <= raw <= 10
            value = round(float(raw), 2) if ok else None
        elif name == "premiered":
            value = _date(raw)
        elif name in ("genres", "studios"):
            value = _strings(raw)
        else:  # people
            value = _people(raw)
        if value is not None:
            out[name] = value
    return out


def clean_ids(ids: Mapping[str, Any]) -> dict[str, str]:
    """Provider ids: short lower-case keys, short non-empty text values."""
    out: dict[str, str] = {}
    for key, value in ids.items():
        text = str(value).strip() if isinstance(value, str | int) else ""
        if isinstance(key, str) and _ID_KEY.match(key) and text and len(text) <= 100:
            out[key] = text
    return out


def clean_images(images: tuple[RemoteImage, ...]) -> list[RemoteImage]:
    return [
        i
        for i in images
        if i.kind in _IMAGE_KINDS
        and isinstance(i.url, str)
        and i.url.startswith(("https://", "http://"))
        and len(i.url) <= 2048
    ]


async def fetch_item(
    db: Database, providers: Providers, item_id: int, *, language: str = "en-US"
) -> FetchResult:
    """Ask the providers about ``item_id`` and fill its empty fields; what happened.

    Raises :class:`ProviderUnavailable` (after recording it) when no provider answered
    and at least one was unreachable: the job is retried later.
    """
    async with db.connection() as conn:
        item = await repo.load_item(conn, item_id)
    if item is None:
        return FetchResult("gone")
    wanted = set(item.empty() - {"provider_ids"})
    if not wanted:
        result = FetchResult("complete")
        await _record(db, item_id, result)
        return result
    ids = item.ids
    year = item.values.get("year")
    got: dict[str, Any] = {}
    images: list[RemoteImage] = []
    used: list[str] = []
    unavailable: ProviderUnavailable | None = None
    unusable: str | None = None
    for provider in providers.for_kind(item.kind):
        lookup = Lookup(
            item.kind,  # type: ignore[arg-type]  # KINDS only (the due query)
            item.title,
            year if isinstance(year, int) else None,
            dict(ids),
            language,
            item.season_number,
            item.episode_number,
            item.series_ids,
            item.series_title,
        )
        try:
            answer = await provider.lookup(lookup)
        except ProviderUnavailable as exc:
            log.warning("item %s: provider %s unavailable: %s", item_id, provider.name, exc)
            unavailable = exc
            continue
        except ProviderAnswerError as exc:
            log.warning("item %s: provider %s answer unusable: %s", item_id, provider.name, exc)
            unusable = f"{provider.name}: {exc}"
            continue
        if answer is None:
            continue
        used.append(provider.name)
        for name, value in clean(answer.values).items():
            if name in wanted and name not in got:
                got[name] = value
        for key, value in clean_ids(answer.ids).items():
            ids.setdefault(key, value)
        images += clean_images(answer.images)
        if wanted <= got.keys():
            break
    if used:
        async with db.transaction() as conn:
            filled, pending = await repo.fill_item(conn, item_id, got, ids, images)
            result = FetchResult("matched", tuple(filled), tuple(pending), ",".join(used))
            await _record(db, item_id, result, conn)
        return result
    if unavailable is not None:
        await _record(db, item_id, FetchResult("unavailable", reason=str(unavailable)))
        raise unavailable
    result = FetchResult("unusable", reason=unusable) if unusable else FetchResult("no_match")
    await _record(db, item_id, result)
    return result


async def _record(db: Database, item_id: int, result: FetchResult, conn: Any = None) -> None:
    if conn is None:
        async with db.connection() as own:
            await _record(db, item_id, result, own)
        return
    await repo.record_lookup(
        conn, item_id, result.outcome, provider=result.provider, filled=result.filled,
        reason=result.reason,
    )  # fmt: skip
