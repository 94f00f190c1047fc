"""From what the walk found to the rows a scan writes: items, a file, images (pure, blocking).

Sources rank ``user > nfo > embedded > filename``: each value carries its source in
``ItemRow.sources`` and the store keeps a stored value whose source ranks higher.
Keys are the scanner's natural keys inside a library (``items.key``), so a batch that runs
twice writes each item once:

* movie ``movie:<title>:<year>`` (versions and parts of one movie share it);
* series ``series:<first folder under the root>`` (or ``series:<title>`` for a loose file);
* season ``<series key>:s<n>``; episode ``<series key>:s<n>:e<a>[-<b>]``, ``:d<date>``, ``:a<n>``;
* extra ``extra:<relpath>``, its parent the movie/series its folder belongs to.

>>> rows = plan_file(_demo("Alien (1979)/Alien (1979) - 4K.mkv"), "movies", {})
>>> [(r.kind, r.key, r.title, r.values["year"]) for r in rows.items], rows.file.version_label
([('movie', 'movie:alien:1979', 'Alien', 1979)], '4K')
>>> rows = plan_file(_demo("Lost/Season 1/Lost - S01E02-E03.mkv"), "tv", {})
>>> [r.key for r in rows.items], rows.items[-1].values["episode_number_end"]
(['series:lost', 'series:lost:s1', 'series:lost:s1:e2-3'], 3)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from revenge.modules.library.naming import LibraryKind, ParsedName, display_text, parse
from revenge.modules.library.nfo import NfoDetails, NfoResult, read_nfo
from revenge.modules.library.walk import Folder, MediaFile, Sidecar

__all__ = ["FilePlan", "FileRow", "ImageRow", "ItemRow", "plan_file", "sort_title"]

_ARTICLE = re.compile(r"^(?:the|a|an|der|die|das|le|la|les|el|los|il)\s+", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_IMAGE_KINDS = frozenset(
    {"poster", "fanart", "banner", "thumb", "logo", "clearart", "landscape", "disc", "primary"}
)
_EXTRA_DIRS = frozenset(
    {
        "extras", "extra", "trailers", "trailer", "featurettes", "behind the scenes",
        "deleted scenes", "interviews", "scenes", "shorts", "other", "specials features",
        "bonus", "clips",
    }
)  # fmt: skip


def sort_title(title: str) -> str:
    """Lower case, leading article dropped, numbers padded so 2 sorts before 10.

    >>> sort_title("The Matrix 2"), sort_title("Matrix 10") > sort_title("Matrix 2")
    ('matrix 000002', True)
    """
    text = _ARTICLE.sub("", title.strip()).lower()
    return _DIGITS.sub(lambda m: m.group(0)[:12].rjust(6, "0"), text)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", display_text(text).lower()).split())


@dataclass(slots=True)
class ItemRow:
    kind: str
    key: str
    title: str
    parent_key: str | None = None
    series_key: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    nfo_status: str | None = None
    locks: set[str] = field(default_factory=set)  # fields the NFO locks (lockdata, lockedfields)

    def set(self, name: str, value: Any, source: str) -> None:
        """Record ``value`` from ``source`` unless a higher source already gave one."""
        if value is None or value == () or value == [] or value == "":
            return
        if name in self.values and _RANK[self.sources[name]] > _RANK[source]:
            return
        self.values[name] = list(value) if isinstance(value, tuple) else value
        self.sources[name] = source

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "key": self.key,
            "parent_key": self.parent_key,
            "series_key": self.series_key,
            "title": self.values.get("title", self.title),
            "sort_title": sort_title(
                self.values.get("sort_title", self.values.get("title", self.title))
            ),
            "sources": self.sources,
            "nfo_status": self.nfo_status,
            "locks": sorted(self.locks),
        }
        out.update({k: v for k, v in self.values.items() if k not in ("title", "sort_title")})
        return out


_RANK = {"filename": 1, "embedded": 2, "nfo": 3, "user": 4}


@dataclass(frozen=True, slots=True)
class FileRow:
    path: bytes
    size: int
    mtime_ns: int
    inode: int
    device: int
    item_key: str
    version_label: str | None
    part: int | None
    stereo: str | None


@dataclass(frozen=True, slots=True)
class ImageRow:
    item_key: str
    kind: str
    path: bytes
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class FilePlan:
    items: tuple[ItemRow, ...]
    file: FileRow
    images: tuple[ImageRow, ...]


def _signed(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n  # bigint holds a uint64 inode wrapped


def _nfo(
    sidecars: tuple[Sidecar, ...], roles: tuple[str, ...], cache: dict[str, NfoResult] | None = None
) -> tuple[NfoResult | None, str]:
    """The first NFO of these roles; folder NFOs (tvshow, season) read once per scan via cache."""
    for role in roles:
        for s in sidecars:
            if s.kind == "nfo" and s.role == role:
                if cache is None:
                    return read_nfo(s.path), s.path
                found = cache.get(s.path)
                if found is None:
                    found = cache[s.path] = read_nfo(s.path)
                return found, s.path
    return None, ""


def _apply_nfo(row: ItemRow, result: NfoResult | None, want: str) -> None:
    if result is None:
        return
    if not result.ok:
        row.nfo_status = (result.error or "refused")[:500]
        return
    row.nfo_status = "ok"
    details: NfoDetails | None = next((d for d in result.items if d.kind == want), None)
    if details is None:
        details = result.items[0] if result.items else None
    ids = dict(result.ids)
    if details is not None:
        ids.update(details.ids)
        d = details
        row.set("title", d.title, "nfo")
        row.set("sort_title", d.sort_title, "nfo")
        row.set("original_title", d.original_title, "nfo")
        row.set("year", d.year if d.year and 1800 <= d.year <= 2200 else None, "nfo")
        row.set("premiered", d.premiered.isoformat() if d.premiered else None, "nfo")
        row.set("overview", d.plot or d.outline, "nfo")
        row.set("tagline", d.tagline, "nfo")
        row.set("runtime_seconds", d.runtime * 60 if d.runtime and d.runtime > 0 else None, "nfo")
        rating = next((r for r in d.ratings if r.default), d.ratings[0] if d.ratings else None)
        if rating is not None:
            scale = 10.0 / rating.max if rating.max else 1.0
            value = rating.value * scale
            row.set("rating", round(value, 2) if 0 <= value <= 10 else None, "nfo")
        row.set("content_rating", d.mpaa or d.certification, "nfo")
        row.set("genres", d.genres, "nfo")
        row.set("studios", d.studios, "nfo")
        people = [
            {"name": a.name, "role": a.role, "type": "actor", "order": a.order} for a in d.actors
        ]
        people += [{"name": n, "type": "director"} for n in d.directors]
        people += [{"name": n, "type": "writer"} for n in d.writers]
        row.set("people", people, "nfo")
    if ids:
        row.set("provider_ids", ids, "nfo")
    if details is not None:
        row.locks |= nfo_locks(details, [k for k, v in row.sources.items() if v == "nfo"])


# Jellyfin's <lockedfields> names (its MetadataField enum, and a few it writes for the
# fields we keep) -> our columns
_JELLYFIN_FIELDS = {
    "name": ("title",),
    "originaltitle": ("original_title",),
    "sortname": ("sort_title",),
    "overview": ("overview",),
    "tagline": ("tagline",),
    "genres": ("genres",),
    "studios": ("studios",),
    "cast": ("people",),
    "runtime": ("runtime_seconds",),
    "officialrating": ("content_rating",),
    "communityrating": ("rating",),
    "productionyear": ("year",),
    "premieredate": ("premiered",),
}


def nfo_locks(details: NfoDetails, from_nfo: list[str]) -> set[str]:
    """The fields an NFO locks: ``<lockdata>true</lockdata>`` locks every field it gave
    (``from_nfo``); Jellyfin's ``<lockedfields>Name|Overview</lockedfields>`` the named
    ones (unknown names, such as Tags or ProductionLocations we do not keep, are ignored).

    >>> from revenge.modules.library.nfo import parse_nfo
    >>> d = parse_nfo(b"<movie><lockedfields>Name|Cast|Tags</lockedfields></movie>").items[0]
    >>> sorted(nfo_locks(d, ["title", "year"]))
    ['people', 'title']
    >>> d = parse_nfo(b"<movie><title>X</title><lockdata>true</lockdata></movie>").items[0]
    >>> sorted(nfo_locks(d, ["title", "year"]))
    ['title', 'year']
    """
    locks = set(from_nfo) if details.lockdata else set()
    for name in details.locked_fields:
        locks.update(_JELLYFIN_FIELDS.get(name.strip().lower(), ()))
    return locks


def _from_name(row: ItemRow, parsed: ParsedName) -> None:
    row.set("year", parsed.year, "filename")
    if parsed.ids:
        row.set("provider_ids", dict(parsed.ids), "filename")


def _owner_folder(parts: list[str]) -> list[str]:
    """The folders a file belongs to: an extras folder counts as its parent's."""
    dirs = parts[:-1]
    while dirs and dirs[-1].lower() in _EXTRA_DIRS:
        dirs = dirs[:-1]
    return dirs


def _images(
    item_key: str, sidecars: tuple[Sidecar, ...], *, primary: str, season: int | None = None
) -> list[ImageRow]:
    out = []
    for s in sidecars:
        if s.kind != "image" or (s.season is not None and s.season != season):
            continue
        kind = primary if s.role == "primary" else s.role
        if kind in _IMAGE_KINDS:
            out.append(ImageRow(item_key, kind, os.fsencode(s.path), s.size, s.mtime_ns))
    return out


def plan_file(
    media: MediaFile,
    library: LibraryKind,
    folders: dict[str, Folder],
    nfo_cache: dict[str, NfoResult] | None = None,
) -> FilePlan:
    """The rows for one new or changed video file. ``folders``: relpath -> the walk's Folder;
    ``nfo_cache``: folder NFOs already read in this scan (a show's tvshow.nfo is read once,
    not once per episode)."""
    parsed = parse(media.relpath, library)
    parts = [p for p in media.relpath.split("/") if p]
    owner = _owner_folder(parts)
    owner_folder = folders.get("/".join(owner))
    folder_sidecars = owner_folder.sidecars if owner_folder is not None else ()
    items: list[ItemRow] = []
    images: list[ImageRow] = []
    title = display_text(parsed.title).strip() or display_text(os.path.splitext(parts[-1])[0])
    if library == "movies":
        if parsed.kind == "extra":
            key = "extra:" + _norm(media.relpath)
            parent = None
            if parsed.year is not None and parsed.title:
                parent = f"movie:{_norm(parsed.title)}:{parsed.year}"
            elif owner:
                parent = "folder:" + "/".join(owner)  # the scan resolves it to that movie
            row = ItemRow("extra", key, title, parent_key=parent)
            row.set("extra_type", parsed.extra_type, "filename")
            items.append(row)
        else:
            key = f"movie:{_norm(parsed.title)}:{parsed.year or ''}"
            row = ItemRow("movie", key, title)
            _from_name(row, parsed)
            nfo, _ = _nfo(media.sidecars, ("file",))
            if nfo is None:
                nfo, _ = _nfo(folder_sidecars, ("movie", "file"), nfo_cache)
            _apply_nfo(row, nfo, "movie")
            items.append(row)
            images += _images(key, media.sidecars, primary="poster")
            images += _images(key, folder_sidecars, primary="poster")
    else:
        series_dir = parts[0] if len(parts) > 1 else None
        series_key = "series:" + _norm(series_dir or parsed.title)
        series_title = display_text(parsed.title).strip() or display_text(series_dir or title)
        series = ItemRow("series", series_key, series_title)
        top = folders.get(series_dir) if series_dir else None
        if top is not None:
            _apply_nfo(series, _nfo(top.sidecars, ("tvshow",), nfo_cache)[0], "tvshow")
            images += _images(series_key, top.sidecars, primary="poster")
        items.append(series)
        if parsed.kind == "extra":
            row = ItemRow("extra", "extra:" + _norm(media.relpath), title, parent_key=series_key)
            row.set("extra_type", parsed.extra_type, "filename")
            items.append(row)
            key = row.key
        else:
            parent = series_key
            season = parsed.season
            if season is not None:
                season_key = f"{series_key}:s{season}"
                name = "Specials" if season == 0 else f"Season {season}"
                srow = ItemRow(
                    "season", season_key, name, parent_key=series_key, series_key=series_key
                )
                srow.set("season_number", season, "filename")
                if owner_folder is not None and len(owner) > 1:
                    _apply_nfo(srow, _nfo(folder_sidecars, ("season",), nfo_cache)[0], "season")
                    images += _images(season_key, folder_sidecars, primary="poster", season=None)
                if top is not None:
                    images += [
                        ImageRow(season_key, "poster", os.fsencode(s.path), s.size, s.mtime_ns)
                        for s in top.sidecars
                        if s.kind == "image"
                        and s.season == season
                        and s.role in ("poster", "primary")
                    ]
                items.append(srow)
                parent = season_key
            if parsed.episodes:
                first, last = parsed.episodes[0], parsed.episodes[-1]
                tail = f"e{first}" if first == last else f"e{first}-{last}"
            elif parsed.air_date is not None:
                tail = "d" + parsed.air_date.isoformat()
            elif parsed.absolute is not None:
                tail = f"a{parsed.absolute}"
            else:
                tail = "f:" + _norm(parts[-1])
            key = f"{series_key}:s{season if season is not None else '-'}:{tail}"
            ep_title = display_text(parsed.episode_title or "").strip()
            if not ep_title:
                ep_title = f"Episode {parsed.episodes[0]}" if parsed.episodes else title
            row = ItemRow("episode", key, ep_title, parent_key=parent, series_key=series_key)
            row.set("season_number", season, "filename")
            if parsed.episodes:
                row.set("episode_number", parsed.episodes[0], "filename")
                if len(parsed.episodes) > 1:
                    row.set("episode_number_end", parsed.episodes[-1], "filename")
            row.set("absolute_number", parsed.absolute, "filename")
            row.set(
                "premiered", parsed.air_date.isoformat() if parsed.air_date else None, "filename"
            )
            _apply_nfo(row, _nfo(media.sidecars, ("file",))[0], "episode")
            items.append(row)
            images += _images(key, media.sidecars, primary="thumb")
    file = FileRow(
        os.fsencode(media.path),
        media.size,
        media.mtime_ns,
        _signed(media.inode),
        _signed(media.device),
        items[-1].key,
        parsed.version,
        parsed.part,
        parsed.stereo or ("3d" if parsed.is_3d else None),
    )
    return FilePlan(tuple(items), file, tuple(images))


def _demo(relpath: str) -> MediaFile:
    return MediaFile("/m/" + relpath, relpath, 1, 1, 1, 1)
