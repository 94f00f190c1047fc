"""What a media file's name and folders say: title, year, season, episodes, extras, versions, tags.

A pure function over a path relative to its library root, in the conventions Kodi, Plex and
Jellyfin document (``Title (Year)/Title (Year).mkv``, ``Show/Season 01/Show - S01E02 - Name.mkv``,
``{tmdb-603}``, ``-trailer``, ``cd1``, ``Movie (2010) - 4K.mkv``...) and in scene release names
(``The.Matrix.1999.1080p.BluRay.x264-GRP.mkv``). It never raises on a name: control characters,
names of any length and undecodable bytes (``os.fsdecode``'s surrogate escapes) give a result.

>>> p = parse("The Matrix (1999)/The.Matrix.1999.1080p.BluRay.x264-GRP.mkv", "movies")
>>> (p.kind, p.title, p.year, p.resolution, p.source, p.video_codec, p.release_group)
('movie', 'The Matrix', 1999, '1080p', 'bluray', 'h264', 'GRP')
>>> p = parse("Friends/Season 10/Friends - S10E17-E18 - The Last One.mkv", "tv")
>>> (p.kind, p.title, p.season, p.episodes, p.episode_title)
('episode', 'Friends', 10, (17, 18), 'The Last One')
>>> parse("Avatar (2009)/Avatar (2009) - 4K.mkv", "movies").version
'4K'
"""

from __future__ import annotations

import codecs
import functools
import os
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

LibraryKind = Literal["movies", "tv"]
Kind = Literal["movie", "episode", "extra"]

__all__ = ["VIDEO_EXTENSIONS", "LibraryKind", "ParsedName", "display_text", "parse"]

VIDEO_EXTENSIONS = frozenset(
    {
        *("mkv", "mp4", "m4v", "avi", "mov", "wmv", "ts", "m2ts", "mts", "webm", "mpg", "mpeg"),
        *("flv", "ogv", "3gp", "vob", "iso", "divx", "xvid", "asf", "rm", "rmvb", "wtv", "f4v"),
    }
)
# Other extensions the walker reports beside videos: dropped before parsing a stem too.
_SIDE_EXTENSIONS = frozenset(
    {"nfo", "srt", "ass", "ssa", "vtt", "sub", "idx", "jpg", "jpeg", "png", "webp", "tbn"}
)

_MAX_COMPONENT = 1024  # NAME_MAX is 255 bytes; longer is hostile and only costs time
_MAX_RANGE = 50  # a range or list longer than this is a typo, not a 99-episode file


@dataclass(frozen=True, slots=True)
class ParsedName:
    """The fields a name gives; ``None`` (or ``()``, ``False``) where the name says nothing.

    ``title`` is the movie's or the series' title (for an extra: the extra's own name when it
    lives in an extras folder, else the name it is attached to). ``episodes`` are numbers within
    ``season``; ``absolute`` is an anime-style number with no season. ``ids`` are sorted
    ``(provider, id)`` pairs, e.g. ``(("imdb", "tt0133093"), ("tmdb", "603"))``.
    """

    kind: Kind
    title: str
    year: int | None = None
    season: int | None = None
    episodes: tuple[int, ...] = ()
    episode_title: str | None = None
    air_date: date | None = None
    absolute: int | None = None
    part: int | None = None
    version: str | None = None
    extra_type: str | None = None
    is_3d: bool = False
    stereo: str | None = None  # sbs | tab | mvc when the name says which
    resolution: str | None = None  # 480p 576p 720p 1080p 1080i 2160p 4320p ...
    source: str | None = None  # bluray web hdtv dvd vhs cam telesync
    video_codec: str | None = None  # h264 h265 av1 vp9 xvid divx mpeg2 vc1
    edition: str | None = None
    release_group: str | None = None
    ids: tuple[tuple[str, str], ...] = ()

    def id(self, provider: str) -> str | None:
        """The id a provider (imdb, tmdb, tvdb) has in the name, if any."""
        return next((v for k, v in self.ids if k == provider), None)


# --- text hygiene -------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _latin_fallback(err: UnicodeError) -> tuple[str, int]:
    # A byte that is not UTF-8 in a file name is nearly always Latin-1/cp1252 from an old share.
    if not isinstance(err, UnicodeDecodeError):
        raise err
    bad = err.object[err.start : err.end]
    return bad.decode("cp1252", errors="replace"), err.end


codecs.register_error("revenge-latin", _latin_fallback)


def display_text(name: str) -> str:
    """A name made fit for display and storage: undecodable bytes read as cp1252, no controls.

    The path itself is kept losslessly elsewhere; this is only for titles.

    >>> display_text("Am\\udce9lie\\x07!")
    'Amélie !'
    """
    if _LONE_SURROGATE.search(name):
        try:
            name = name.encode("utf-8", "surrogateescape").decode("utf-8", "revenge-latin")
        except UnicodeError:
            name = _LONE_SURROGATE.sub("\ufffd", name)
    return _CONTROL.sub(" ", name)


# --- token patterns -----------------------------------------------------------------------------

_B = r"(?<![a-z0-9])"  # token starts at a boundary
_E = r"(?![a-z0-9])"  # token ends at a boundary
_SEP = r"[ ._-]"
_I = re.IGNORECASE

_IDS = re.compile(r"[\[{(]\s*(imdb|tmdb|tvdb)(?:id)?\s*[-=:]\s*(tt\d{5,10}|\d{1,10})\s*[\]})]", _I)
_PLEX_EDITION = re.compile(r"\{\s*edition\s*[-=]\s*([^}]*)\}", _I)
_SITE_PREFIX = re.compile(r"^\s*\[?\s*www\.[^\s\]]+\s*\]?\s*-?\s*", _I)
_LEADING_GROUP = re.compile(r"^\s*\[([^\]]{1,40})\]\s*")
_HASH = re.compile(r"[\[(][0-9A-Fa-f]{8}[\])]")
_SPACES = re.compile(r"\s+")

_YEAR = re.compile(r"(?<![0-9a-z])([(\[]?)((?:18[89]|19\d|20[0-3])\d)([)\]]?)(?![0-9a-z])", _I)

_RESOLUTION = re.compile(
    _B + r"(?:(\d{3,4})([pi])|(4k|uhd|8k|2k)|(\d{3,4})x(\d{3,4}))" + _E,
    _I,
)
_HEIGHTS = {360, 480, 540, 576, 720, 1080, 1440, 2160, 4320}

_SOURCE = re.compile(
    _B + r"(?:(uhd[ .-]?blu[ .-]?ray|blu[ .-]?ray|bdrip|bdremux|brrip|bdr|bd(?:25|50|mv)?|bluray)"
    r"|(web[ .-]?dl|web[ .-]?rip|webdl|webrip|web|webhd)"
    r"|(hdtv(?:rip)?|pdtv|sdtv|dsr(?:ip)?|tvrip|dvbrip|satrip)"
    r"|(dvd(?:rip|r|scr|5|9)?|dvd[ .-]rip)"
    r"|(vhs(?:rip)?)"
    r"|((?:hd)?cam(?:rip)?)"
    r"|(hdts|telesync|ts))" + _E,
    _I,
)
_SOURCE_NAMES = ("bluray", "web", "hdtv", "dvd", "vhs", "cam", "telesync")

_CODEC = re.compile(
    _B
    + r"(?:([xh][ .]?264|avc)|([xh][ .]?265|hevc)|(xvid)|(divx)|(av1)|(vp9)|(mpeg-?2)|(vc-?1))"
    + _E,
    _I,
)
_CODEC_NAMES = ("h264", "h265", "xvid", "divx", "av1", "vp9", "mpeg2", "vc1")

_EDITIONS: tuple[tuple[str, str], ...] = (
    (r"director'?s[ ._-]?cut|directors[ ._-]?cut|dc", "Director's Cut"),
    (r"extended(?:[ ._-](?:cut|edition|version))?", "Extended"),
    (r"unrated", "Unrated"),
    (r"uncut", "Uncut"),
    (r"theatrical(?:[ ._-](?:cut|edition|version))?", "Theatrical"),
    (r"remastered|4k[ ._-]remaster(?:ed)?", "Remastered"),
    (r"imax(?:[ ._-]edition)?", "IMAX"),
    (r"final[ ._-]cut", "Final Cut"),
    (r"special[ ._-]edition", "Special Edition"),
    (r"criterion(?:[ ._-]collection)?", "Criterion"),
    (r"ultimate[ ._-]cut", "Ultimate Cut"),
    (r"ultimate[ ._-]edition", "Ultimate Edition"),
    (r"collector'?s[ ._-]edition", "Collector's Edition"),
    (r"rogue[ ._-]cut", "Rogue Cut"),
    (r"(\d{1,3}(?:st|nd|rd|th))[ ._-]anniversary(?:[ ._-]edition)?", "{} Anniversary Edition"),
)
_EDITION = re.compile(
    _B + "(?:" + "|".join(f"({p})" for p, _ in _EDITIONS) + ")" + _E,
    _I,
)
# Plain words that end an edition name: "Black.and.Chrome.Edition" after the year.
_FREE_EDITION = re.compile(r"((?:[A-Za-z][A-Za-z']*[ ._]){1,4}?)(Edition|Cut)" + _E)

_THREE_D = re.compile(
    _B
    + r"(?:(3d)|(h-?sbs|half-?sbs|f-?sbs|full-?sbs|sbs)|(h-?tab|half-?tab|half-?ou|h-?ou|full-?ou"
    r"|f-?tab|tab)|(mvc))" + _E,
    _I,
)
# Tags that only end a title: streaming services and languages (capitals only: "Mad Max"),
# then audio, HDR and release flags.
_JUNK_CS = re.compile(
    r"(?<![A-Za-z])(?:AMZN|NF|DSNP|ATVP|HMAX|MAX|HULU|PCOK|PMTP|FRENCH|TRUEFRENCH|GERMAN|KOREAN"
    r"|JAPANESE|CHINESE|SPANISH|ITALIAN|RUSSIAN|HINDI|NORDIC|SWEDISH|DANISH|VOSTFR|ENGLISH|MULTi"
    r"|MULTI)(?![A-Za-z])"
)
_JUNK_CI = re.compile(
    _B
    + r"(?:dts(?:-?hd|-?x)?|ac3|e-?ac-?3|aac(?:2\.0|5\.1)?|ddp?(?:\d(?:\.\d)?)?|truehd|atmos|flac"
    r"|dd5\.1|5\.1|7\.1|2\.0|6ch|8ch|hdr10(?:plus|\+)?|hdr|dv|dovi|10bit|8bit|remux|proper|repack"
    r"|internal|readnfo|nfofix|multisubs|dubbed|subbed|dual[ .-]?audio|hardsub|ma|hd)" + _E,
    _I,
)

_PART = re.compile(
    _B + r"(cd|dvd(?![59](?![0-9]))|disc|disk|pt|part)([ ._-]?)(\d{1,2})(?![0-9])", _I
)

# Episode numbering.
_SXE = re.compile(_B + r"s(\d{1,4})[ ._-]*e(\d{1,4})(?![0-9])", _I)
_SXE_TAIL = re.compile(r"([ ._]*-[ ._]*|[ ._]?)(?:s(\d{1,4})[ ._-]*)?e(\d{1,4})(?![0-9])", _I)
_DASH_TAIL = re.compile(r"-(\d{1,4})(?![0-9]|p|i|x\d)", _I)
_NX = re.compile(r"(?<![a-z0-9])(\d{1,2})x(\d{1,3})(?![0-9]|p)", _I)
_NX_TAIL = re.compile(r"(-\d{1,2}x|-|x)(\d{1,3})(?![0-9]|p)", _I)
_SEASON_EPISODE_WORDS = re.compile(
    _B + r"season[ ._-]*(\d{1,4})[ ._,-]*(?:episode|ep)[ ._-]*(\d{1,4})(?![0-9])", _I
)
_DATE_YMD = re.compile(r"(?<![0-9])((?:19|20)\d{2})[-._ ](\d{2})[-._ ](\d{2})(?![0-9])")
_DATE_DMY = re.compile(r"(?<![0-9])(\d{2})[-._ ](\d{2})[-._ ]((?:19|20)\d{2})(?![0-9])")
_EPISODE_WORD = re.compile(_B + r"(?:episode|ep|e)[ ._-]*(\d{1,4})(?![0-9])", _I)
_MINISERIES_PART = re.compile(_B + r"(?:part|pt)[ ._-]?(\d{1,2}|[ivx]{1,5})" + _E, _I)
_ROMAN = {"i": 1, "v": 5, "x": 10}
_DASH_NUMBER = re.compile(r"\s-\s*(\d{1,4})(?:v\d)?(?=\s|$|[\[(])")
_LEADING_NUMBER = re.compile(r"^(\d{1,4})(?:v\d)?(?=$|[ ._-])")
_SEASON_ONLY = re.compile(_B + r"s(\d{1,2})" + _E, _I)

# Folders.
_SEASON_DIR = re.compile(
    r"^(?:season|series|staffel|saison|temporada|stagione|seizoen|book|s)[ ._-]*(\d{1,4})"
    r"(?:\s*[(\[].*)?$",
    _I,
)
_SEASON_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_SEASONISH = re.compile(r"^\s*(?:season|series|staffel|saison|temporada)\b", _I)
_SPECIALS_DIRS = frozenset({"specials", "special", "season 0", "season 00", "extras season"})
_EXTRA_DIRS = {
    "extras": "other",
    "extra": "other",
    "other": "other",
    "others": "other",
    "bonus": "other",
    "trailers": "trailer",
    "trailer": "trailer",
    "featurettes": "featurette",
    "featurette": "featurette",
    "behind the scenes": "behind_the_scenes",
    "behindthescenes": "behind_the_scenes",
    "deleted scenes": "deleted_scene",
    "deleted": "deleted_scene",
    "interviews": "interview",
    "interview": "interview",
    "scenes": "scene",
    "shorts": "short",
    "clips": "clip",
    "samples": "sample",
    "sample": "sample",
}
_STRUCTURAL_DIRS = re.compile(
    r"^(?:video_ts|bdmv|stream|playlist|clipinf|backup|certificate|(?:cd|dvd|disc|disk)[ ._-]?\d{1,2})$",
    _I,
)

# Extras named by suffix (Plex, Jellyfin, Kodi): "-trailer", ".trailer", "_trailer", " trailer".
_EXTRA_SUFFIX = re.compile(
    r"(?:[-._ ](trailer|sample)|-(behindthescenes|deletedscene|deleted|featurette|interview|scene"
    r"|short|clip|other|extra))\d{0,2}\s*$",
    _I,
)
_EXTRA_SUFFIX_TYPES = {
    "trailer": "trailer",
    "sample": "sample",
    "behindthescenes": "behind_the_scenes",
    "deletedscene": "deleted_scene",
    "deleted": "deleted_scene",
    "featurette": "featurette",
    "interview": "interview",
    "scene": "scene",
    "short": "short",
    "clip": "clip",
    "other": "other",
    "extra": "other",
}
_GENERIC_STEM = re.compile(
    r"^(?:vts_\d+_\d+|\d{1,6}|movie|video|film|index|main|feature|trailer|sample)$", _I
)
_GROUP_TAIL = re.compile(r"(?<=[^\s-])-(\[[^\]\s]{1,30}\]|[A-Za-z0-9][A-Za-z0-9._]{0,29})\s*$")
_PAREN_TAIL = re.compile(r"[(\[]([^()\[\]]*)[)\]]\s*$")
_ACRONYM = re.compile(r"(?<![A-Za-z0-9])[A-Za-z](?:\.[A-Za-z])+\.?(?![A-Za-z0-9])")
_LAST_WORD = re.compile(r"([A-Za-z0-9]+)$")
_NOT_GROUP = re.compile(
    r"(?:s\d+e\d+|e\d+|\d+x\d+|(?:cd|dvd|disc|disk|part|pt)\d{1,2}|\d+v\d|v\d|3d|h?sbs|h?tab)", _I
)
_VERSION = re.compile(r"\s*[)\]]?\s*-\s*(.+)$")
_LEAD_SEPS = re.compile(r"^[\s._\-]*")
_DASH_PART_TAIL = re.compile(r"\s-\s*(?:pt|part|cd)[ ._]?(\d{1,2})\s*$", _I)
_PART_TAIL = re.compile(r"(?:^|[ ._-]+)(?:pt|cd)[ ._]?(\d{1,2})\s*$", _I)
_NOT_A_TITLE = re.compile(r"(?:v\d|\d{1,2})")
_EDGE_CHARS = " \t._-,:;"
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]|\{\s*\}")


# --- the scan of one name -----------------------------------------------------------------------


@dataclass(slots=True)
class _Scan:
    """What one file or folder name holds, and where its title ends."""

    text: str
    title_end: int
    year: int | None = None
    year_at: int = -1
    year_end: int = -1
    ids: tuple[tuple[str, str], ...] = ()
    group: str | None = None
    resolution: str | None = None
    source: str | None = None
    codec: str | None = None
    edition: str | None = None
    is_3d: bool = False
    stereo: str | None = None
    tags_at: int = -1  # first technical tag (resolution, source, codec, junk)


_Prepared = tuple[str, tuple[tuple[str, str], ...], str | None, str | None]


def _strip_extension(name: str) -> str:
    dot = name.rfind(".")
    if 0 < dot >= len(name) - 6:
        ext = name[dot + 1 :].lower()
        if ext in VIDEO_EXTENSIONS or ext in _SIDE_EXTENSIONS:
            return name[:dot]
    return name


def _prepare(name: str) -> _Prepared:
    """Control characters out, ids and the Plex edition lifted, a fansub group taken off."""
    name = display_text(name[:_MAX_COMPONENT])
    ids: dict[str, str] = {}
    lowered = name.lower()
    if "db" in lowered:
        for m in _IDS.finditer(name):
            ids.setdefault(m.group(1).lower(), m.group(2).lower())
        if ids:
            name = _IDS.sub(" ", name)
    edition = None
    if "{" in name:
        plex = _PLEX_EDITION.search(name)
        if plex:
            edition = plex.group(1).strip() or None
            name = name[: plex.start()] + " " + name[plex.end() :]
    if "www." in lowered:
        name = _SITE_PREFIX.sub("", name)
    group = None
    lead = _LEADING_GROUP.match(name)
    if lead and not _RESOLUTION.fullmatch(lead.group(1)) and not _SXE.search(lead.group(1)):
        group = lead.group(1).strip() or None
        name = name[lead.end() :]
    if "[" in name or "(" in name:
        name = _HASH.sub(" ", name)
    name = _SPACES.sub(" ", name).strip()
    return name, tuple(sorted(ids.items())), edition, group


def _resolution(m: re.Match[str]) -> str | None:
    if m.group(1):
        height = int(m.group(1))
        return f"{height}{m.group(2).lower()}" if height in _HEIGHTS else None
    if m.group(3):
        word = m.group(3).lower()
        return {"4k": "2160p", "uhd": "2160p", "8k": "4320p", "2k": "1440p"}[word]
    height = int(m.group(5))
    if height in _HEIGHTS:
        return f"{height}p"
    width = int(m.group(4))
    for w, h in ((3840, 2160), (1920, 1080), (1280, 720), (720, 576)):
        if width == w:
            return f"{h}p"
    return None


def _first_group(m: re.Match[str]) -> int:
    return next(i for i, g in enumerate(m.groups()) if g is not None)


def _pick_year(text: str, limit: int) -> tuple[int | None, int, int]:
    """The release year before ``limit``: a bracketed one wins, a leading one is the title."""
    found = [m for m in _YEAR.finditer(text, 0, limit)]
    if not found:
        return None, -1, -1
    bracketed = [m for m in found if m.group(1) and m.group(3)]
    if bracketed:
        m = bracketed[-1]
    else:
        plain = [m for m in found if m.start() > 0]
        if not plain:
            return None, -1, -1
        m = plain[-1]
    return int(m.group(2)), m.start(), m.end()


def _scan(name: str, *, title_limit: int | None = None, prepared: _Prepared | None = None) -> _Scan:
    """Tags of a name; ``title_limit`` is where an episode token begins (in the prepared text)."""
    text, ids, plex_edition, group = prepared or _prepare(name)
    limit = len(text) if title_limit is None else min(title_limit, len(text))
    tags_at = len(text)
    resolution = source = codec = None
    res_at = -1
    for m in _RESOLUTION.finditer(text):
        value = _resolution(m)
        if value is None:
            continue
        if m.group(3) and m.group(3).lower() == "uhd" and resolution is not None:
            continue
        if resolution is None or (res_at >= 0 and m.group(3) is None and resolution == "2160p"):
            resolution, res_at = value, m.start()
        tags_at = min(tags_at, m.start())
    for m in _SOURCE.finditer(text):
        word = m.group(0).lower()
        # Short words count only among other tags: "The.Web" is a title.
        if word in ("ts", "bd", "dvd", "web") and not _near_tags(text, m):
            continue
        if source is None:
            source = _SOURCE_NAMES[_first_group(m)]
        tags_at = min(tags_at, m.start())
    for m in _CODEC.finditer(text):
        if codec is None:
            codec = _CODEC_NAMES[_first_group(m)]
        tags_at = min(tags_at, m.start())
    for rx in (_JUNK_CI, _JUNK_CS):
        m2 = rx.search(text)
        if m2 is not None:
            tags_at = min(tags_at, m2.start())
    year, year_at, year_end = _pick_year(text, min(tags_at, limit))
    if year is None and tags_at < len(text):
        # "2012.2009.1080p": the year may sit right before the first tag.
        year, year_at, year_end = _pick_year(text, min(tags_at + 1, limit))
    title_end = min(limit, tags_at)
    if year is not None:
        title_end = min(title_end, year_at)
    scan = _Scan(text, title_end, year, year_at, year_end, ids, group)
    scan.resolution, scan.source, scan.codec, scan.tags_at = resolution, source, codec, tags_at
    tail_from = year_end if year is not None else title_end
    editions: list[str] = []
    for m in _EDITION.finditer(text, tail_from):
        i = _first_group(m)
        label = _EDITIONS[_edition_index(i)][1]
        if "{}" in label:
            label = label.format(m.group(i + 2))
        if label not in editions:
            editions.append(label)
        scan.title_end = min(scan.title_end, m.start())
    if not editions and year is not None:
        free = _FREE_EDITION.match(text, _skip_seps(text, year_end))
        if free and free.end() <= tags_at and not _JUNK_CI.match(free.group(1)):
            words = free.group(0).replace(".", " ").replace("_", " ").strip()
            editions.append(words)
    if plex_edition:
        editions = [plex_edition]
    scan.edition = " ".join(editions) or None
    for m in _THREE_D.finditer(text, tail_from):
        i = _first_group(m)
        if i == 2 and m.group(0).lower() == "tab" and "3d" not in text.lower():
            continue
        scan.is_3d = True
        if i > 0 and scan.stereo is None:
            scan.stereo = ("sbs", "tab", "mvc")[i - 1]
        scan.title_end = min(scan.title_end, m.start())
    if scan.group is None:
        scan.group = _release_group(text, tags_at)
    return scan


def _edition_index(group_index: int) -> int:
    # Only the anniversary pattern has an inner group, and it is the last one.
    return min(group_index, len(_EDITIONS) - 1)


def _skip_seps(text: str, at: int) -> int:
    while at < len(text) and text[at] in " ._-)]":
        at += 1
    return at


def _near_tags(text: str, m: re.Match[str]) -> bool:
    around = text[max(0, m.start() - 12) : m.end() + 12]
    return bool(_RESOLUTION.search(around) or _CODEC.search(around) or _JUNK_CI.search(around))


def _release_group(text: str, tags_from: int) -> str | None:
    if tags_from >= len(text):
        return None
    m = _GROUP_TAIL.search(text, tags_from)
    if m:
        group = m.group(1).strip("[]")
        if _is_group(group, text[: m.start()]):
            return group
    m = _PAREN_TAIL.search(text)
    if m:
        words = m.group(1).split()
        if len(words) >= 2 and _RESOLUTION.search(m.group(1)):
            last = words[-1]
            if _is_group(last, ""):
                return last
    return None


def _is_group(group: str, before: str) -> bool:
    if not group or group.isdigit() or len(group) < 2:
        return False
    if _RESOLUTION.fullmatch(group) or _SOURCE.fullmatch(group) or _CODEC.fullmatch(group):
        return False
    if _JUNK_CI.fullmatch(group) or _JUNK_CS.fullmatch(group) or _EDITION.fullmatch(group):
        return False
    prev = _LAST_WORD.search(before)
    if prev:
        joined = f"{prev.group(1)}-{group}"
        if _SOURCE.fullmatch(joined) or _CODEC.fullmatch(joined) or _JUNK_CI.fullmatch(joined):
            return False
        if prev.group(1).lower() in ("web", "blu", "mpeg", "vc", "e", "h", "x", "half"):
            return False
    return not _NOT_GROUP.fullmatch(group)


def _clean(text: str) -> str:
    """A title from the text before the tags: separators to spaces, acronyms kept."""
    text = text.replace("_", " ")
    if text.count(".") > text.count(" "):
        keep = {m.start(): m.group(0) for m in _ACRONYM.finditer(text)}
        if keep:
            out: list[str] = []
            i = 0
            for start, acronym in sorted(keep.items()):
                out.append(text[i:start].replace(".", " "))
                out.append(acronym.rstrip("."))
                i = start + len(acronym)
            out.append(text[i:].replace(".", " "))
            text = "".join(out)
        else:
            text = text.replace(".", " ")
    text = _EMPTY_BRACKETS.sub(" ", text)
    text = _SPACES.sub(" ", text)
    # str.strip, not a regex: a long run of separators must not cost quadratic time.
    # A dangling opening bracket (the year's) is not part of a title either.
    text = text.strip(_EDGE_CHARS).rstrip(_EDGE_CHARS + "([{")
    if text.count("(") < text.count(")") and text.endswith(")"):
        text = text[:-1].rstrip()
    if text.count("(") > text.count(")"):
        text = text.rsplit("(", 1)[0].rstrip(" -")
    return text


# --- folders ------------------------------------------------------------------------------------


def _season_of_dir(name: str) -> int | None:
    lowered = name.strip().lower()
    if lowered in _SPECIALS_DIRS:
        return 0
    m = _SEASON_DIR.match(lowered)
    if m:
        return int(m.group(1))
    words = lowered.split()
    if len(words) == 2 and words[0] in ("season", "series") and words[1] in _SEASON_WORDS:
        return _SEASON_WORDS[words[1]]
    return None


def _extra_of_dir(name: str) -> str | None:
    return _EXTRA_DIRS.get(_SPACES.sub(" ", name.strip().lower()))


@dataclass(frozen=True, slots=True)
class _Context:
    dirs: tuple[str, ...]
    season: int | None
    season_index: int
    extra_type: str | None
    owner: str | None  # the movie or show folder's name


def _context(dirs: tuple[str, ...], library: LibraryKind) -> _Context:
    season, season_index, extra_type = None, -1, None
    for i, d in enumerate(dirs):
        if i >= 1 and extra_type is None:
            extra_type = _extra_of_dir(d)
        if library == "tv":
            s = _season_of_dir(d)
            if s is not None and (i >= 1 or len(dirs) == 1):
                season, season_index = s, i
    owner = None
    stop = season_index if season_index >= 0 else len(dirs)
    for i in range(stop - 1, -1, -1):
        d = dirs[i]
        if (i >= 1 and _extra_of_dir(d)) or _STRUCTURAL_DIRS.match(d.strip()):
            continue
        if library == "tv" and i >= 1 and (_season_of_dir(d) is not None or _SEASONISH.match(d)):
            continue
        owner = d
        break
    return _Context(dirs, season, season_index, extra_type, owner)


def _split(path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> list[str]:
    raw = os.fsdecode(path)
    return [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".")]


# --- public entry point -------------------------------------------------------------------------


def parse(
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
    library: LibraryKind,
    *,
    root: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None = None,
) -> ParsedName:
    """Parse a media path; folders are read as context, so give it relative to its library root.

    With ``root``, a path under it is made relative first. Never raises on a name.
    """
    parts = _split(path)
    if root is not None:
        root_parts = _split(root)
        if parts[: len(root_parts)] == root_parts:
            parts = parts[len(root_parts) :]
    if not parts:
        return ParsedName(kind="movie" if library == "movies" else "episode", title="")
    dirs = tuple(p[:_MAX_COMPONENT] for p in parts[-8:-1])
    stem = _strip_extension(parts[-1][:_MAX_COMPONENT])
    ctx = _context(dirs, library)
    extra_type = ctx.extra_type
    suffix = _EXTRA_SUFFIX.search(stem)
    if suffix is not None and extra_type not in (None, "sample") and stem[suffix.start()] != "-":
        suffix = None  # in an extras folder, "Official Trailer" is a name, not a suffix
    if (
        suffix is not None
        and library == "tv"
        and stem[suffix.start()] == " "
        and (_SXE.search(stem) or _NX.search(stem))
    ):
        suffix = None  # "S01E01 - Get Out of My Trailer" is an episode's title
    if suffix is not None and suffix.start() > 0:
        kind = suffix.group(1) or suffix.group(2)
        extra_type = extra_type if extra_type not in (None, "other") else None
        extra_type = extra_type or _EXTRA_SUFFIX_TYPES[kind.lower()]
        stem = stem[: suffix.start()].rstrip(" -._")
    elif _GENERIC_STEM.match(stem.strip()) and stem.strip().lower() in ("trailer", "sample"):
        extra_type = extra_type or stem.strip().lower()
        stem = ""
    if library == "tv":
        return _parse_episode(stem, ctx, extra_type)
    return _parse_movie(stem, ctx, extra_type)


@dataclass(frozen=True, slots=True)
class _Folder:
    title: str
    year: int | None
    ids: tuple[tuple[str, str], ...]


@functools.lru_cache(maxsize=4096)
def _folder(name: str | None, library: LibraryKind) -> _Folder | None:
    """A movie or show folder's title, year and ids; cached, as a folder holds many files."""
    if name is None:
        return None
    limit = None
    if library == "tv":
        m = _SXE.search(name) or _SEASON_ONLY.search(name)
        limit = m.start() if m else None
    scan = _scan(name, title_limit=limit)
    return _Folder(_clean(scan.text[: scan.title_end]), scan.year, scan.ids)


def _parse_movie(stem: str, ctx: _Context, extra_type: str | None) -> ParsedName:
    if extra_type is not None and ctx.extra_type is not None and extra_type != "sample":
        # An extra in an extras folder is known by its own name, whole.
        scan = _scan(stem)
        title = _clean(scan.text) or _clean(stem)
        return ParsedName(
            kind="extra",
            title=title,
            extra_type=extra_type,
            resolution=scan.resolution,
            ids=scan.ids,
        )

    scan = _scan(stem)
    text = scan.text
    title = _clean(text[: scan.title_end])
    year = scan.year
    if ctx.owner == stem:
        # "Title (Year)/Title (Year).mkv", the usual layout: the folder says what the file says.
        folder: _Folder | None = _Folder(title, year, scan.ids)
    else:
        folder = _folder(ctx.owner, "movies")
    folder_title = folder.title if folder else ""
    strong_folder = folder is not None and folder_title != "" and (folder.year or folder.ids)
    generic = title == "" or _GENERIC_STEM.match(title) is not None
    ids = dict(scan.ids)
    if folder is not None:
        for k, v in folder.ids:
            ids.setdefault(k, v)
    if generic and folder is not None and folder_title:
        title, year = folder_title, year or folder.year
    elif (
        strong_folder
        and not extra_type
        and folder is not None
        and (year is None or year == folder.year)
    ):
        title, year = folder_title, folder.year
    part = _movie_part(text, scan)
    version = _version(text, scan) if part is None else None
    edition = scan.edition
    resolution = scan.resolution
    is_3d = scan.is_3d
    if version:
        # "Movie (2010) - Director's Cut": the label may name an edition or a resolution.
        vscan = _scan(version)
        if edition is None and vscan.edition:
            edition = vscan.edition
        if not is_3d and vscan.is_3d:
            is_3d = True
    return ParsedName(
        kind="extra" if extra_type else "movie",
        title=title,
        year=year,
        part=part,
        version=version,
        extra_type=extra_type,
        is_3d=is_3d,
        stereo=scan.stereo,
        resolution=resolution,
        source=scan.source,
        video_codec=scan.codec,
        edition=edition,
        release_group=scan.group,
        ids=tuple(sorted(ids.items())),
    )


def _movie_part(text: str, scan: _Scan) -> int | None:
    for m in _PART.finditer(text):
        after_year = scan.year is not None and m.start() >= scan.year_end
        word, sep = m.group(1).lower(), m.group(2)
        if after_year or (
            scan.year is None
            and (word != "part" or sep != " ")
            and (m.end() >= len(text.rstrip(" ._-")) or m.start() >= scan.tags_at)
        ):
            if word == "part" and sep == " " and not after_year:
                continue
            return int(m.group(3))
    return None


def _version(text: str, scan: _Scan) -> str | None:
    if scan.year is None or scan.year_end < 0:
        return None
    rest = text[scan.year_end :]
    m = _VERSION.match(rest)
    if not m:
        return None
    label = m.group(1).strip().strip("[]").strip()
    return label or None


def _episode_numbers(text: str, ctx: _Context) -> tuple[int | None, tuple[int, ...], int, int]:
    """(season, episodes, start, end) of the episode token, or (None, (), -1, -1)."""
    m = _SXE.search(text)
    if m:
        season = int(m.group(1))
        numbers = [int(m.group(2))]
        end = m.end()
        while len(numbers) < _MAX_RANGE:
            t = _SXE_TAIL.match(text, end)
            ranged = False
            if t and (t.group(2) is None or int(t.group(2)) == season):
                ranged = "-" in t.group(1)
                n = int(t.group(3))
            else:
                t = _DASH_TAIL.match(text, end)
                if not t:
                    break
                ranged, n = True, int(t.group(1))
            _add_episode(numbers, n, ranged)
            end = t.end()
        return season, tuple(numbers), m.start(), end
    m = _SEASON_EPISODE_WORDS.search(text)
    if m:
        return int(m.group(1)), (int(m.group(2)),), m.start(), m.end()
    m = _NX.search(text)
    if m:
        season = int(m.group(1))
        numbers = [int(m.group(2))]
        end = m.end()
        while len(numbers) < _MAX_RANGE and (t := _NX_TAIL.match(text, end)):
            _add_episode(numbers, int(t.group(2)), t.group(1) == "-")
            end = t.end()
        return season, tuple(numbers), m.start(), end
    return None, (), -1, -1


def _add_episode(numbers: list[int], n: int, ranged: bool) -> None:
    last = numbers[-1]
    if ranged and last < n <= last + _MAX_RANGE:
        numbers.extend(range(last + 1, n + 1))
    elif n not in numbers:
        numbers.append(n)


def _find_date(text: str) -> tuple[date | None, int, int]:
    for rx, order in ((_DATE_YMD, (0, 1, 2)), (_DATE_DMY, (2, 1, 0))):
        for m in rx.finditer(text):
            y, mo, d = (int(m.group(i + 1)) for i in order)
            try:
                return date(y, mo, d), m.start(), m.end()
            except ValueError:
                continue
    return None, -1, -1


def _parse_episode(stem: str, ctx: _Context, extra_type: str | None) -> ParsedName:
    if extra_type is not None and ctx.extra_type is not None and extra_type != "sample":
        scan = _scan(stem)
        return ParsedName(
            kind="extra",
            title=_clean(scan.text) or _clean(stem),
            season=ctx.season,
            extra_type=extra_type,
            ids=scan.ids,
        )
    prepared = _prepare(stem)
    text = prepared[0]
    season, episodes, start, end = _episode_numbers(text, ctx)
    air_date, d_start, d_end = _find_date(text)
    absolute = None
    part = None
    if start < 0 and air_date is not None:
        start, end = d_start, d_end
    if start < 0:
        m = _DASH_NUMBER.search(text) or _LEADING_NUMBER.match(text)
        word = _EPISODE_WORD.search(text)
        if word and (m is None or word.start() < m.start()):
            m = word
        if m is not None and not _is_year_number(m.group(1)):
            n = int(m.group(1))
            if ctx.season is not None:
                episodes = (n,)
            else:
                absolute = n
            start, end = m.start(), m.end()
        else:
            mp = _MINISERIES_PART.search(text)
            if mp:
                episodes, season = (
                    (_number(mp.group(1)),),
                    ctx.season if ctx.season is not None else 1,
                )
                start, end = mp.start(), mp.end()
    if season is None and (episodes or air_date is not None):
        season = ctx.season
    if season is None and start < 0:
        season = ctx.season
    scan = _scan(stem, title_limit=start if start >= 0 else None, prepared=prepared)
    file_title = _clean(scan.text[: scan.title_end])
    file_year = scan.year
    show = _folder(ctx.owner, "tv")
    if show is not None and show.title:
        title = show.title
        year = show.year
        if year is None and file_year is not None and _same_title(title, file_title):
            year = file_year
    else:
        title, year = file_title, file_year
    ids = dict(scan.ids)
    if show is not None:
        for k, v in show.ids:
            ids.setdefault(k, v)
    episode_title = None
    if start >= 0:
        episode_title, part = _episode_title(scan, end)
    elif file_title and title and _same_prefix(file_title, title):
        rest = _clean(file_title[len(title) :])
        episode_title = rest or None
    return ParsedName(
        kind="extra" if extra_type else "episode",
        title=title,
        year=year,
        season=season,
        episodes=episodes,
        episode_title=episode_title,
        air_date=air_date,
        absolute=absolute,
        part=part,
        extra_type=extra_type,
        is_3d=scan.is_3d,
        stereo=scan.stereo,
        resolution=scan.resolution,
        source=scan.source,
        video_codec=scan.codec,
        edition=scan.edition,
        release_group=scan.group,
        ids=tuple(sorted(ids.items())),
    )


def _number(text: str) -> int:
    """Digits or a small roman numeral (Kodi's "Pt.III")."""
    if text.isdigit():
        return int(text)
    values = [_ROMAN[c] for c in text.lower()]
    return sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))


def _is_year_number(digits: str) -> bool:
    return len(digits) == 4 and 1880 <= int(digits) <= 2039


def _norm(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _same_title(a: str, b: str) -> bool:
    return _norm(a) == _norm(b)


def _same_prefix(text: str, title: str) -> bool:
    return text.casefold().startswith(title.casefold()) and len(text) > len(title)


_EPISODE_TITLE_STOP = re.compile(r"[\[{]|\((?=[^)]*(?:\d{3,4}p|x26[45]|hevc|bluray|web))|\s-\s", _I)


def _episode_title(scan: _Scan, end: int) -> tuple[str | None, int | None]:
    """The text after the episode token up to the first tag; a trailing "- pt1" is a part."""
    text = scan.text
    stop = len(text)
    for rx in (_RESOLUTION, _SOURCE, _CODEC, _JUNK_CI, _JUNK_CS, _EDITION, _THREE_D):
        m = rx.search(text, end)
        if m and m.start() < stop:
            short = m.group(0).lower() in ("ts", "web", "dvd", "bd")
            if rx is _SOURCE and short and not _near_tags(text, m):
                continue
            stop = m.start()
    date_m = _DATE_YMD.search(text, end)
    if date_m and date_m.start() < stop:
        stop = date_m.start()
    rest = text[end:stop]
    lead = _LEAD_SEPS.match(rest)
    rest = rest[lead.end() if lead else 0 :]
    cut = _EPISODE_TITLE_STOP.search(rest)
    part = None
    tail = rest[cut.start() :] if cut else ""
    if cut:
        rest = rest[: cut.start()]
    pm = _DASH_PART_TAIL.match(tail)
    if pm:
        part = int(pm.group(1))
    else:
        pm2 = _PART_TAIL.search(rest)
        if pm2:
            part, rest = int(pm2.group(1)), rest[: pm2.start()]
    if scan.group and rest.endswith("-" + scan.group):
        rest = rest[: -len(scan.group) - 1]
    title = _clean(rest)
    if title and _NOT_A_TITLE.fullmatch(title):
        title = ""
    return title or None, part
