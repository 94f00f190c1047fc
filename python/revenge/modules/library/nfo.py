"""Kodi NFO files: ``movie.nfo``, ``<file>.nfo``, ``tvshow.nfo``, episode NFOs, URL-only NFOs.

Parsed with defusedxml: a document that declares entities (the billion-laughs bomb) or points at
external ones is refused with the reason, and so is a malformed one; :func:`parse_nfo` never
raises, it returns an :class:`NfoResult` whose ``error`` says what was wrong, so the metadata
chain records it and goes on to the next source.

Several ``<episodedetails>`` in one file (a multi-episode file) give several items; text outside
the XML (Kodi's "combination" NFO, or a file holding only an IMDb/TMDb/TVDB URL) gives ids.

>>> r = parse_nfo(b'<movie><title>The Matrix</title><year>1999</year>'
...               b'<uniqueid type="imdb" default="true">tt0133093</uniqueid></movie>')
>>> r.ok, r.items[0].title, r.items[0].year, r.items[0].ids
(True, 'The Matrix', 1999, (('imdb', 'tt0133093'),))
>>> parse_nfo(b"https://www.imdb.com/title/tt0133093/").ids
(('imdb', 'tt0133093'),)
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET  # types and ParseError only; parsing is defusedxml's
from dataclasses import dataclass
from datetime import date
from typing import Literal

import defusedxml
import defusedxml.ElementTree as SafeET

__all__ = ["MAX_NFO_BYTES", "Actor", "NfoDetails", "NfoResult", "Rating", "parse_nfo", "read_nfo"]

MAX_NFO_BYTES = 4 << 20  # real NFOs are a few KB; a cast list with thumbs stays well under 1 MB

NfoKind = Literal["movie", "tvshow", "season", "episode", "musicvideo"]
_ROOTS: dict[str, NfoKind] = {
    "movie": "movie",
    "tvshow": "tvshow",
    "season": "season",
    "episodedetails": "episode",
    "musicvideo": "musicvideo",
}


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    role: str | None = None
    order: int | None = None
    thumb: str | None = None


@dataclass(frozen=True, slots=True)
class Rating:
    source: str  # imdb, tmdb, themoviedb, tvdb, metacritic, "default" for a bare <rating>
    value: float
    votes: int | None = None
    max: float | None = None
    default: bool = False


@dataclass(frozen=True, slots=True)
class NfoDetails:
    """One ``<movie>``, ``<tvshow>``, ``<season>`` or ``<episodedetails>`` element's fields."""

    kind: NfoKind
    title: str | None = None
    original_title: str | None = None
    sort_title: str | None = None
    show_title: str | None = None
    year: int | None = None
    premiered: date | None = None  # <premiered>, or <aired> for an episode
    plot: str | None = None
    outline: str | None = None
    tagline: str | None = None
    runtime: int | None = None  # minutes
    mpaa: str | None = None
    certification: str | None = None
    genres: tuple[str, ...] = ()
    studios: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    directors: tuple[str, ...] = ()
    writers: tuple[str, ...] = ()
    actors: tuple[Actor, ...] = ()
    ratings: tuple[Rating, ...] = ()
    user_rating: float | None = None
    set_name: str | None = None
    season: int | None = None
    episode: int | None = None
    display_season: int | None = None
    display_episode: int | None = None
    lockdata: bool = False
    locked_fields: tuple[str, ...] = ()  # Jellyfin's <lockedfields>Name|Overview</lockedfields>
    ids: tuple[tuple[str, str], ...] = ()  # sorted (provider, id)
    default_id: str | None = None  # the provider marked default="true"

    def id(self, provider: str) -> str | None:
        return next((v for k, v in self.ids if k == provider), None)


@dataclass(frozen=True, slots=True)
class NfoResult:
    """What a file held: its items, ids from URLs beside or instead of XML, or why it failed."""

    items: tuple[NfoDetails, ...] = ()
    ids: tuple[tuple[str, str], ...] = ()  # from URLs / bare ids outside the XML
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# --- reading ------------------------------------------------------------------------------------


def read_nfo(path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> NfoResult:
    """Read and parse one NFO file (blocking: run it off the event loop). Never raises."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_NFO_BYTES + 1)
    except OSError as err:
        return NfoResult(error=f"unreadable: {err.strerror or err}")
    return parse_nfo(data)


_XML_DECL = re.compile(r"<\?xml[^>]*\?>", re.IGNORECASE)
_DOCTYPE = re.compile(r"<!DOCTYPE[^>\[]*(?:\[[^\]]*\])?\s*>", re.IGNORECASE)
_DECL_ENCODING = re.compile(rb"""<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]{1,40})["']""")
_HAS_DTD = re.compile(r"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


def parse_nfo(data: bytes) -> NfoResult:
    """Parse the bytes of an NFO file. Never raises: a refused or broken file has ``error`` set."""
    if len(data) > MAX_NFO_BYTES:
        return NfoResult(error=f"too large: more than {MAX_NFO_BYTES} bytes")
    text = _decode(data)
    start = text.find("<")
    if start < 0 or not _looks_like_xml(text[start:]):
        ids = _ids_in_text(text)
        if ids:
            return NfoResult(ids=ids)
        return NfoResult(error="neither XML nor a provider URL")
    if _HAS_DTD.search(text):
        refused = _dtd_refusal(text)
        if refused is not None:
            return NfoResult(ids=_ids_in_text(text[:start]), error=refused)
        text = _DOCTYPE.sub("", text)
    body = _XML_DECL.sub("", text)
    try:
        # One synthetic root, so several <episodedetails> and a trailing URL parse as one document.
        wrapped = f"<nfo-file>{body}</nfo-file>"
        root = SafeET.fromstring(wrapped, forbid_dtd=True)
    except ET.ParseError as err:
        if _offset(wrapped, err) >= len(wrapped) - len("</nfo-file>"):
            where = "the file ends inside an element (truncated?)"
        else:
            where = _where(err, wrapped=len("<nfo-file>"))
        return NfoResult(ids=_ids_in_text(text[:start]), error=f"malformed XML: {where}")
    except defusedxml.DefusedXmlException as err:  # pragma: no cover - DTDs were refused above
        return NfoResult(error=f"refused: {err}")
    except (ValueError, RecursionError) as err:
        return NfoResult(error=f"malformed XML: {err}")
    items: list[NfoDetails] = []
    loose = [root.text or ""]
    for child in root:
        loose.append(child.tail or "")
        kind = _ROOTS.get(child.tag.lower()) if isinstance(child.tag, str) else None
        if kind is not None:
            items.append(_details(child, kind))
    ids = _ids_in_text(" ".join(loose))
    if not items:
        return NfoResult(ids=ids, error=None if ids else "no Kodi NFO element (movie, tvshow...)")
    return NfoResult(items=tuple(items), ids=ids)


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    m = _DECL_ENCODING.search(data[:200])
    encoding = m.group(1).decode("ascii").lower() if m else "utf-8"
    try:
        return data.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", "replace")


def _looks_like_xml(text: str) -> bool:
    return bool(re.match(r"<(?:\?xml|!--|!DOCTYPE|[A-Za-z_])", text, re.IGNORECASE))


def _dtd_refusal(text: str) -> str | None:
    """Parse the document as it is with defusedxml to learn why its DTD must be refused."""
    try:
        SafeET.fromstring(text, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except defusedxml.EntitiesForbidden as err:
        if err.sysid or err.pubid:
            return (
                f"external entity refused: {err.name!r} points at {err.sysid or err.pubid!r} "
                "(an NFO may not make the server read other files or URLs)"
            )
        return (
            f"entity declaration refused: {err.name!r} "
            "(entity expansion is how XML bombs work; Kodi NFOs need none)"
        )
    except defusedxml.ExternalReferenceForbidden as err:
        return f"external reference refused: {err.sysid or err.pubid!r}"
    except defusedxml.DTDForbidden:
        return "DTD refused"
    except (ET.ParseError, ValueError, RecursionError):
        # Entities are declared before the body, so they were seen; a body error (several
        # roots...) is for the normal parse below to judge, after the DOCTYPE is dropped.
        return None
    return None  # a harmless DOCTYPE with no entities: dropped, the rest is parsed


def _offset(text: str, err: ET.ParseError) -> int:
    line, column = getattr(err, "position", (1, 0))
    lines = text.split("\n", line - 1)
    return sum(len(piece) + 1 for piece in lines[: line - 1]) + column


def _where(err: ET.ParseError, wrapped: int = 0) -> str:
    line, column = getattr(err, "position", (0, 0))
    if line == 1:
        column = max(0, column - wrapped)  # the synthetic root's opening tag is not the file's
    return f"{str(err).split(':')[0]} at line {line}, column {column}"


# --- ids in URLs --------------------------------------------------------------------------------

_URL_IDS = (
    ("imdb", re.compile(r"imdb\.[a-z.]+/(?:[a-z]{2}/)?title/(tt\d{5,10})", re.IGNORECASE)),
    ("tmdb", re.compile(r"themoviedb\.org/(?:movie|tv)/(\d{1,10})", re.IGNORECASE)),
    (
        "tvdb",
        re.compile(
            r"thetvdb\.com/(?:\S*?[?&](?:series)?id=|(?:dereferrer/)?series/)(\d{1,10})",
            re.IGNORECASE,
        ),
    ),
)
_BARE_IMDB = re.compile(r"(?<![A-Za-z0-9])(tt\d{7,10})(?![0-9])")


def _ids_in_text(text: str) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    for provider, rx in _URL_IDS:
        m = rx.search(text)
        if m:
            found[provider] = m.group(1).lower()
    if "imdb" not in found:
        m = _BARE_IMDB.search(text)
        if m:
            found["imdb"] = m.group(1)
    return tuple(sorted(found.items()))


# --- fields -------------------------------------------------------------------------------------

_TRUE = frozenset({"true", "1", "yes"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LEGACY_ID_TAGS = {"imdbid": "imdb", "imdb_id": "imdb", "tmdbid": "tmdb", "tvdbid": "tvdb"}


def _text(el: ET.Element | None) -> str | None:
    if el is None:
        return None
    text = "".join(el.itertext()) if len(el) else (el.text or "")
    text = _CONTROL.sub("", text).strip()
    return text or None


def _first(el: ET.Element, tag: str) -> str | None:
    return _text(el.find(tag))


def _all(el: ET.Element, *tags: str, split: bool = False) -> tuple[str, ...]:
    out: list[str] = []
    for tag in tags:
        for child in el.findall(tag):
            text = _text(child)
            if not text:
                continue
            parts = [p.strip() for p in text.split(" / ")] if split else [text]
            out.extend(p for p in parts if p and p not in out)
    return tuple(out)


def _int(text: str | None) -> int | None:
    if not text:
        return None
    m = re.search(r"-?\d{1,9}", text)
    return int(m.group(0)) if m else None


def _float(text: str | None) -> float | None:
    if not text:
        return None
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None  # no NaN, no inf


def _date(text: str | None) -> date | None:
    if not text:
        return None
    m = re.match(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _year(el: ET.Element, premiered: date | None) -> int | None:
    year = _int(_first(el, "year"))
    if year is not None and 1800 <= year <= 2200:
        return year
    return premiered.year if premiered else None


def _details(el: ET.Element, kind: NfoKind) -> NfoDetails:
    premiered = _date(_first(el, "premiered")) or _date(_first(el, "aired"))
    ids, default_id = _ids(el, kind)
    set_el = el.find("set")
    set_name = None
    if set_el is not None:
        set_name = _first(set_el, "name") if len(set_el) else _text(set_el)
    locked = _first(el, "lockedfields")
    return NfoDetails(
        kind=kind,
        title=_first(el, "title"),
        original_title=_first(el, "originaltitle"),
        sort_title=_first(el, "sorttitle"),
        show_title=_first(el, "showtitle"),
        year=_year(el, premiered),
        premiered=premiered,
        plot=_first(el, "plot"),
        outline=_first(el, "outline"),
        tagline=_first(el, "tagline"),
        runtime=_int(_first(el, "runtime")),
        mpaa=_first(el, "mpaa"),
        certification=_first(el, "certification"),
        genres=_all(el, "genre", split=True),
        studios=_all(el, "studio", split=True),
        tags=_all(el, "tag"),
        countries=_all(el, "country", split=True),
        directors=_all(el, "director"),
        writers=_all(el, "credits", "writer"),
        actors=_actors(el),
        ratings=_ratings(el),
        user_rating=_float(_first(el, "userrating")),
        set_name=set_name,
        season=_int(_first(el, "season")),
        episode=_int(_first(el, "episode")),
        display_season=_int(_first(el, "displayseason")),
        display_episode=_int(_first(el, "displayepisode")),
        lockdata=(_first(el, "lockdata") or "").lower() in _TRUE,
        locked_fields=tuple(f for f in (locked or "").split("|") if f),
        ids=ids,
        default_id=default_id,
    )


def _ids(el: ET.Element, kind: NfoKind) -> tuple[tuple[tuple[str, str], ...], str | None]:
    found: dict[str, str] = {}
    default = None
    for u in el.findall("uniqueid"):
        value = _text(u)
        provider = (u.get("type") or "").strip().lower() or "unknown"
        provider = {"themoviedb": "tmdb", "thetvdb": "tvdb"}.get(provider, provider)
        if value and provider not in found:
            found[provider] = value
            if (u.get("default") or "").lower() in _TRUE:
                default = provider
    for tag, provider in _LEGACY_ID_TAGS.items():
        value = _first(el, tag)
        if value and provider not in found:
            found[provider] = value
    legacy = _first(el, "id")
    if legacy:
        # Kodi's old <id>: an IMDb id for movies, TheTVDB's for shows and episodes.
        if legacy.lower().startswith("tt"):
            found.setdefault("imdb", legacy)
        elif legacy.isdigit():
            found.setdefault("tvdb" if kind in ("tvshow", "episode", "season") else "tmdb", legacy)
    return tuple(sorted(found.items())), default


def _actors(el: ET.Element) -> tuple[Actor, ...]:
    actors: list[Actor] = []
    for a in el.findall("actor"):
        name = _first(a, "name")
        if name:
            actors.append(
                Actor(name, _first(a, "role"), _int(_first(a, "order")), _first(a, "thumb"))
            )
    return tuple(actors)


def _ratings(el: ET.Element) -> tuple[Rating, ...]:
    out: list[Rating] = []
    block = el.find("ratings")
    if block is not None:
        for r in block.findall("rating"):
            value = _float(_first(r, "value"))
            if value is None:
                continue
            out.append(
                Rating(
                    source=(r.get("name") or "default").strip().lower(),
                    value=value,
                    votes=_int((_first(r, "votes") or "").replace(",", "").replace(".", "")),
                    max=_float(r.get("max")),
                    default=(r.get("default") or "").lower() in _TRUE,
                )
            )
    if not out:
        single = el.find("rating")
        value = _float(_text(single)) if single is not None and not len(single) else None
        if value is not None:
            votes = _int((_first(el, "votes") or "").replace(",", "").replace(".", ""))
            out.append(Rating("default", value, votes, 10.0, True))
    return tuple(out)
