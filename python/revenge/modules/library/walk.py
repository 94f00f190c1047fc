"""The scanner's walk over a library root: video files and the sidecar files beside them.

A plain, blocking generator (its caller runs it in a thread): ``os.scandir`` depth first, one
folder's listing in memory at a time, so memory stays flat however large the library. It only
reads: ``scandir`` and ``stat``, never an open for writing, never a rename.

- skipped: hidden entries (``.name``), NAS and OS metadata folders (``@eaDir``, ``.AppleDouble``,
  ``#recycle``, ``$RECYCLE.BIN``, ``lost+found``...), folders holding a ``.nomedia`` or ``.ignore``
  file (Kodi's and Jellyfin's markers), ``sample`` files and ``Sample`` folders;
- symlinks are followed, each folder is entered once (by ``(st_dev, st_ino)``), so a loop ends;
- an unreadable folder, a file that vanished between listing and ``stat``, a broken link: logged,
  counted in :class:`WalkStats`, skipped; never fatal (only an unreadable *root* raises);
- names that are not UTF-8 stay lossless: paths are ``os.fsdecode`` strings (surrogate escapes),
  which ``open()`` and ``os.fsencode`` turn back into the very bytes on disk.

Per folder it yields a :class:`Folder` (when the folder holds sidecars of its own: ``poster.jpg``,
``tvshow.nfo``, ``season01-poster.jpg``...) before that folder's :class:`MediaFile` records, each
with the sidecars named after it (``<stem>.nfo``, ``<stem>-thumb.jpg``, ``<stem>.en.forced.srt``).
"""

from __future__ import annotations

import logging
import operator
import os
import re
import stat
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Literal

from revenge.modules.library.naming import VIDEO_EXTENSIONS

__all__ = [
    "IMAGE_EXTENSIONS",
    "SUBTITLE_EXTENSIONS",
    "WALK_VIDEO_EXTENSIONS",
    "Folder",
    "MediaFile",
    "Sidecar",
    "WalkStats",
    "walk",
]

log = logging.getLogger("revenge.library.walk")

# An .iso is a disc image ffmpeg cannot open as a file; everything else here ffprobe reads.
WALK_VIDEO_EXTENSIONS = VIDEO_EXTENSIONS - {"iso"}
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "tbn", "gif"})
SUBTITLE_EXTENSIONS = frozenset({"srt", "ass", "ssa", "vtt", "sub", "idx", "sup", "smi"})

_SKIP_DIRS = frozenset(
    {
        "@eadir",
        "@recycle",
        "@recently-snapshot",
        "@tmp",
        "@__thumb",
        "#recycle",
        "#snapshot",
        "$recycle.bin",
        "recycler",
        "system volume information",
        "lost+found",
        "sample",
        "samples",
        "@sharebin",
        ".@__thumb",
    }
)
_IGNORE_MARKERS = frozenset({".nomedia", ".ignore"})
_SAMPLE = re.compile(r"(?:^|[-._ ])sample(?:\d{0,2})$|^sample[-._ ]", re.IGNORECASE)

SidecarKind = Literal["nfo", "image", "subtitle"]

_FOLDER_IMAGE_ROLES = {
    "poster": "poster",
    "folder": "poster",
    "cover": "poster",
    "default": "poster",
    "movie": "poster",
    "show": "poster",
    "fanart": "fanart",
    "backdrop": "fanart",
    "background": "fanart",
    "art": "fanart",
    "banner": "banner",
    "landscape": "landscape",
    "thumb": "thumb",
    "logo": "logo",
    "clearlogo": "logo",
    "clearart": "clearart",
    "disc": "disc",
    "discart": "disc",
    "keyart": "keyart",
}
_FILE_IMAGE_SUFFIXES = {
    "": "primary",
    "poster": "poster",
    "fanart": "fanart",
    "backdrop": "fanart",
    "thumb": "thumb",
    "landscape": "landscape",
    "banner": "banner",
    "logo": "logo",
    "clearlogo": "logo",
    "clearart": "clearart",
    "disc": "disc",
    "discart": "disc",
}
_NUMBERED_FANART = re.compile(r"^(?:fanart|backdrop|background)-?\d{1,3}$")
_SEASON_IMAGE = re.compile(
    r"^season[ _-]?(\d{1,4}|specials|all)(?:-(poster|fanart|banner|landscape|thumb))?$"
)
_FOLDER_NFO = {"movie": "movie", "tvshow": "tvshow", "season": "season"}
_SUBTITLE_FLAGS = frozenset({"forced", "default", "sdh", "cc", "hi", "foreign"})
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,4})?$")


@dataclass(frozen=True, slots=True)
class Sidecar:
    """A file that describes a video or a folder: an NFO, an image, a subtitle."""

    path: str
    kind: SidecarKind
    role: str  # nfo: movie|tvshow|season|file|other; image: poster|fanart|...|primary; "subtitle"
    size: int
    mtime_ns: int
    season: int | None = None  # season images: season01-poster.jpg -> 1, season-specials -> 0
    language: str | None = None  # subtitles: Movie.en.forced.srt -> "en"
    forced: bool = False
    sdh: bool = False


@dataclass(frozen=True, slots=True)
class Folder:
    """A folder that holds sidecars of its own (not named after one of its videos)."""

    path: str
    relpath: str
    sidecars: tuple[Sidecar, ...]


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A video file: ``path`` reopens it (``open(path)``), ``relpath`` is what the parser reads."""

    path: str
    relpath: str
    size: int
    mtime_ns: int
    inode: int
    device: int
    sidecars: tuple[Sidecar, ...] = ()


@dataclass
class WalkStats:
    """Counts of one walk, for the scan job's progress and its final report."""

    folders: int = 0
    files: int = 0
    sidecars: int = 0
    skipped: int = 0
    errors: int = 0
    problems: list[str] = field(default_factory=list)  # the first _MAX_PROBLEMS, for the report

    def problem(self, what: str, path: str, err: BaseException | str) -> None:
        self.errors += 1
        text = f"{what}: {path!r}: {err}"
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(text)
        log.warning("library walk %s", text)


_MAX_PROBLEMS = 100
_NAME = operator.attrgetter("name")
_Walked = Folder | MediaFile


def walk(
    root: str | bytes | os.PathLike[str] | os.PathLike[bytes],
    stats: WalkStats | None = None,
    start: str | None = None,
) -> Iterator[_Walked]:
    """Yield the :class:`Folder` and :class:`MediaFile` records under ``root``, depth first.

    ``start``: a folder inside ``root`` to walk instead of all of it (relative paths stay
    relative to ``root``: the watcher's scan of one changed folder). Raises ``OSError`` only
    when ``root`` (or ``start``) itself cannot be listed (the caller reports the library's
    root as unavailable, which must not mark its items missing).
    """
    stats = stats if stats is not None else WalkStats()
    top = os.path.abspath(os.fsdecode(root))
    first = top if start is None else os.path.abspath(start)
    st = os.stat(first)
    seen: set[tuple[int, int]] = {(st.st_dev, st.st_ino)}
    os.listdir(first)  # an unreadable root is the caller's error, not a skipped folder
    pending = [first]
    while pending:
        folder = pending.pop()
        subdirs = yield from _walk_folder(folder, top, seen, stats)
        pending.extend(reversed(subdirs))  # popped in name order


def _walk_folder(
    folder: str, top: str, seen: set[tuple[int, int]], stats: WalkStats
) -> Generator[_Walked, None, list[str]]:
    """One folder's records; returns the subfolders to walk next."""
    videos: list[tuple[str, str, os.stat_result]] = []
    others: list[tuple[str, str, os.stat_result]] = []
    subdirs: list[str] = []
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=_NAME)
    except FileNotFoundError as err:
        stats.problem("vanished", folder, err.strerror or err)
        return subdirs
    except OSError as err:
        stats.problem("unreadable folder", folder, err.strerror or err)
        return subdirs
    stats.folders += 1
    if any(e.name.lower() in _IGNORE_MARKERS for e in entries):
        stats.skipped += 1
        return subdirs
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            stats.skipped += 1
            continue
        try:
            is_dir = entry.is_dir()  # follows symlinks
        except OSError as err:
            stats.problem("unreadable entry", entry.path, err.strerror or err)
            continue
        if is_dir:
            if name.lower() in _SKIP_DIRS:
                stats.skipped += 1
                continue
            try:
                dst = entry.stat()
            except OSError as err:
                stats.problem("vanished", entry.path, err.strerror or err)
                continue
            key = (dst.st_dev, dst.st_ino)
            if key in seen:
                stats.problem("symlink loop or repeated folder", entry.path, "already walked")
                continue
            seen.add(key)
            subdirs.append(entry.path)
            continue
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            continue
        ext = ext.lower()
        is_video = ext in WALK_VIDEO_EXTENSIONS
        if not is_video and ext not in _SIDECAR_EXTENSIONS:
            continue
        try:
            fst = entry.stat()  # follows symlinks: a broken link is a vanished file
        except OSError as err:
            stats.problem("vanished", entry.path, err.strerror or err)
            continue
        if not stat.S_ISREG(fst.st_mode):
            continue
        if is_video:
            if _SAMPLE.search(stem):
                stats.skipped += 1
                continue
            videos.append((name, entry.path, fst))
        else:
            others.append((name, entry.path, fst))
    # plain slicing, not os.path.relpath/join: the walk is most of an unchanged rescan
    rel_folder = folder[len(top.rstrip("/")) + 1 :] if folder != top else ""
    by_stem, own = _assign_sidecars(videos, others)
    stats.sidecars += len(others)
    if own:
        yield Folder(folder, rel_folder, tuple(own))
    for name, path, fst in videos:
        stem = name.rpartition(".")[0]
        stats.files += 1
        yield MediaFile(
            path=path,
            relpath=f"{rel_folder}/{name}" if rel_folder else name,
            size=fst.st_size,
            mtime_ns=fst.st_mtime_ns,
            inode=fst.st_ino,
            device=fst.st_dev,
            sidecars=tuple(by_stem.get(stem, ())),
        )
    return subdirs


_SIDECAR_EXTENSIONS = IMAGE_EXTENSIONS | SUBTITLE_EXTENSIONS | {"nfo"}
_STEM_SEPARATORS = frozenset(".-_ ")


def _assign_sidecars(
    videos: list[tuple[str, str, os.stat_result]],
    others: list[tuple[str, str, os.stat_result]],
) -> tuple[dict[str, list[Sidecar]], list[Sidecar]]:
    """Sidecars named after a video (longest stem that is a prefix), and the folder's own."""
    stems = {name.rpartition(".")[0] for name, _, _ in videos}
    by_stem: dict[str, list[Sidecar]] = {}
    own: list[Sidecar] = []
    for name, path, fst in others:
        base, _, ext = name.rpartition(".")
        ext = ext.lower()
        owner = _owning_stem(base, stems)
        rest = base[len(owner) :] if owner is not None else ""
        car = _classify(path, base, rest, ext, owner is not None, fst)
        if owner is not None:
            by_stem.setdefault(owner, []).append(car)
        else:
            own.append(car)
    return by_stem, own


def _owning_stem(base: str, stems: set[str]) -> str | None:
    # Cut at each separator from the right: "Movie (2010).en.forced" -> "Movie (2010).en", ...
    if base in stems:
        return base
    for i in range(len(base) - 1, 0, -1):
        if base[i] in _STEM_SEPARATORS and base[:i] in stems:
            return base[:i]
    return None


def _classify(
    path: str, base: str, rest: str, ext: str, owned: bool, fst: os.stat_result
) -> Sidecar:
    size, mtime = fst.st_size, fst.st_mtime_ns
    lowered = base.lower()
    if ext == "nfo":
        role = "file" if owned else _FOLDER_NFO.get(lowered, "other")
        return Sidecar(path, "nfo", role, size, mtime)
    if ext in SUBTITLE_EXTENSIONS:
        tags = [t for t in re.split(r"[._ -]", rest.lower()) if t]
        language = next((t for t in tags if t not in _SUBTITLE_FLAGS and _LANGUAGE.match(t)), None)
        forced = "forced" in tags or "foreign" in tags
        sdh = bool({"sdh", "cc", "hi"} & set(tags))
        return Sidecar(path, "subtitle", "subtitle", size, mtime, None, language, forced, sdh)
    if owned:
        role = _FILE_IMAGE_SUFFIXES.get(rest.lstrip(".-_ ").lower(), "other")
        return Sidecar(path, "image", role, size, mtime)
    season_m = _SEASON_IMAGE.match(lowered)
    if season_m:
        number = season_m.group(1)
        season = 0 if number == "specials" else (None if number == "all" else int(number))
        return Sidecar(
            path, "image", f"season-{season_m.group(2) or 'poster'}", size, mtime, season
        )
    if _NUMBERED_FANART.match(lowered):
        return Sidecar(path, "image", "fanart", size, mtime)
    return Sidecar(path, "image", _FOLDER_IMAGE_ROLES.get(lowered, "other"), size, mtime)
