"""The scanner: walk a library's roots, write what is new or changed, mark what vanished.

Blocking work (``scandir``, ``stat``, name parsing, NFO reading) runs in a thread, one
batch at a time, so the event loop keeps serving; each batch is written in one short
transaction (:mod:`.store`). Incremental: a file whose (size, mtime_ns, inode) is
unchanged costs one ``stat`` and a dict look-up. A new path with the (device, inode,
size) of a file that is no longer at its old path is a rename or move; one with the size
and content fingerprint (:mod:`.fingerprint`) of a file whose path is gone is a copy to
another filesystem whose original was deleted. Either way the file row is moved, so it
keeps its item, images and everyone's watch state. A file not found is
marked missing (never deleted here; the cleanup step removes it after the grace
period), and nothing is marked missing when a root could not be listed (an unmounted
NAS is not an empty library).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from psycopg.types.json import Jsonb

from revenge.infra.db import Database
from revenge.modules.library.fingerprint import fingerprint
from revenge.modules.library.naming import LibraryKind
from revenge.modules.library.nfo import NfoResult
from revenge.modules.library.plan import FilePlan, ItemRow, plan_file
from revenge.modules.library.store import (
    Known,
    KnownFile,
    LibraryGone,
    Move,
    adopt,
    load_known,
    mark_missing,
    write_batch,
)
from revenge.modules.library.walk import Folder, MediaFile, WalkStats, walk

__all__ = ["ScanCancelled", "ScanReport", "Scanner", "WrittenItem"]

log = logging.getLogger("revenge.library.scan")


class ScanCancelled(Exception):
    """An administrator asked the scan to stop."""


@dataclass(frozen=True, slots=True)
class WrittenItem:
    """An item a batch wrote (new or changed): what the search index needs."""

    id: int
    kind: str
    title: str
    original_title: str | None
    year: int | None
    overview: str | None
    people: tuple[str, ...]


@dataclass
class ScanReport:
    library: int
    files: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    moved: int = 0
    missing: int = 0
    returned: int = 0
    items: int = 0
    errors: int = 0
    skipped: int = 0
    roots_failed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    outcome: str = "done"  # done | cancelled | library_deleted
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[int, str], Awaitable[None]]
OnItems = Callable[[Sequence[WrittenItem]], Awaitable[None]]
OnFiles = Callable[[Sequence[int]], Awaitable[None]]
OnImages = Callable[[Sequence[int]], Awaitable[None]]


@dataclass
class _Walker:
    """State of one root's walk, advanced a batch at a time in a worker thread."""

    entries: Iterator[Folder | MediaFile]
    root_id: int
    kind: LibraryKind
    known: Known
    full: bool
    stats: WalkStats
    folders: dict[str, Folder] = field(default_factory=dict)
    folder_movie: dict[str, str] = field(default_factory=dict)
    nfo_cache: dict[str, NfoResult] = field(default_factory=dict)
    by_inode: dict[tuple[int, int], bytes] | None = None
    by_size: dict[int, list[bytes]] | None = None  # fingerprinted known files by size
    done: bool = False

    def take(
        self, limit: int, seen: set[int], report: ScanReport
    ) -> tuple[list[tuple[int, FilePlan]], list[tuple[MediaFile, KnownFile, bool]]]:
        """Up to ``limit`` plans (and move candidates: the file, the known file it may
        be, whether by content); blocking, in a thread."""
        plans: list[tuple[int, FilePlan]] = []
        deferred: list[tuple[MediaFile, KnownFile, bool]] = []
        looked = 0
        for entry in self.entries:
            looked += 1
            if isinstance(entry, Folder):
                self.folders[entry.relpath] = entry
                continue
            report.files += 1
            raw = os.fsencode(entry.path)
            old = self.known.get(raw)
            owner = entry.relpath.rsplit("/", 1)[0] if "/" in entry.relpath else ""
            if old is not None:
                seen.add(old.id)
                same = (old.size, old.mtime_ns, old.inode) == (
                    entry.size, entry.mtime_ns, _signed(entry.inode)
                )  # fmt: skip
                if same and not self.full:
                    report.unchanged += 1
                    if old.item_key.startswith("movie:"):
                        self.folder_movie.setdefault(owner, old.item_key)
                    if looked >= limit * 8:
                        break
                    continue
                report.changed += 1
            else:
                match = self._inode_match(entry)
                if match is not None:
                    deferred.append((entry, match, False))
                    continue
                match = self._content_match(entry)
                if match is not None:
                    deferred.append((entry, match, True))
                    continue
                report.new += 1
            plan = self._plan(entry, owner)
            if plan is not None:
                plans.append((self.root_id, plan))
            if len(plans) >= limit:
                break
        else:
            self.done = True
        return plans, deferred

    def _plan(self, entry: MediaFile, owner: str) -> FilePlan | None:
        try:
            plan = plan_file(entry, self.kind, self.folders, self.nfo_cache)
        except Exception as exc:  # a parser bug must cost one file, not the scan
            self.stats.problem("plan", entry.path, exc)
            return None
        last = plan.items[-1]
        if last.kind == "movie":
            self.folder_movie.setdefault(owner, last.key)
        elif last.parent_key is not None and last.parent_key.startswith("folder:"):
            # resolved now when the folder's movie was seen, else at the end of the scan
            last.parent_key = self.folder_movie.get(last.parent_key[7:], last.parent_key)
        return plan

    def _inode_match(self, entry: MediaFile) -> KnownFile | None:
        if not self.known:
            return None
        if self.by_inode is None:
            self.by_inode = {(k.device, k.inode): p for p, k in self.known.items()}
        path = self.by_inode.get((_signed(entry.device), _signed(entry.inode)))
        if path is None:
            return None
        old = self.known[path]
        return old if old.size == entry.size else None

    def _content_match(self, entry: MediaFile) -> KnownFile | None:
        """A known file of this size whose path is gone and whose fingerprint this file
        has: it was copied here (a new inode) and the original deleted. Only such
        candidates are read (two 64 KiB reads); others cost a dict look-up."""
        if self.by_size is None:
            self.by_size = {}
            for p, k in self.known.items():
                if k.fingerprint is not None:
                    self.by_size.setdefault(k.size, []).append(p)
        gone = [p for p in self.by_size.get(entry.size, ()) if not os.path.lexists(p)]
        if not gone:
            return None
        try:
            mine = fingerprint(entry.path, entry.size)
        except OSError:
            return None  # unreadable: it is planned as new, and the walk logs nothing more
        return next((self.known[p] for p in gone if self.known[p].fingerprint == mine), None)


@dataclass(slots=True)
class _Run:
    on_items: OnItems | None
    on_files: OnFiles | None
    on_images: OnImages | None = None
    orphans: list[tuple[int, str]] = field(default_factory=list)
    folder_movie: dict[str, str] = field(default_factory=dict)


def _release() -> Callable[[], object]:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to hand back
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


_give_back = _release()
"""After a scan, hand the heap it freed (the known files, the batches) back to the system:
glibc keeps it otherwise, so a server's RSS would creep up with each scan."""


def _signed(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


class Scanner:
    """Scans one library at a time per call; ``on_items``/``on_files`` get each batch's writes."""

    def __init__(self, db: Database, *, batch_size: int = 500) -> None:
        self.db = db
        self.batch_size = batch_size

    async def scan(
        self,
        library_id: int,
        *,
        full: bool = False,
        progress: Progress | None = None,
        on_items: OnItems | None = None,
        on_files: OnFiles | None = None,
        on_images: OnImages | None = None,
        only: Sequence[bytes] | None = None,
    ) -> ScanReport:
        """Scan one library; ``on_items``/``on_files``/``on_images`` get each batch's writes
        (search, probes, image processing). ``only``: changed paths (the watcher's); the
        scan then walks just the top folders under a root that hold them (a movie's or a
        series' folder: enough for its NFOs and images), and marks missing only there."""
        started = time.monotonic()
        report = ScanReport(library_id)
        run = _Run(on_items, on_files, on_images)
        try:
            await self._scan(library_id, full, report, progress, run, only)
        except LibraryGone:
            report.outcome = "library_deleted"
        except ScanCancelled:
            report.outcome = "cancelled"
        report.seconds = round(time.monotonic() - started, 3)
        if report.outcome != "library_deleted":
            async with self.db.connection() as conn:
                await conn.execute(
                    "UPDATE libraries SET last_scan_finished = now(), last_scan_stats = %s,"
                    " scan_cancel = false WHERE id = %s",
                    (Jsonb(report.as_json()), library_id),
                )
        log.info(
            "library %s scan %s: %s",
            library_id,
            report.outcome,
            report.as_json(),
            extra={"library_id": library_id, "scan_outcome": report.outcome},
        )
        del run
        _give_back()
        return report

    async def _check(self, library_id: int) -> None:
        row = await self.db.fetch_one(
            "SELECT scan_cancel FROM libraries WHERE id = %s", (library_id,)
        )
        if row is None:
            raise LibraryGone(library_id)
        if row[0]:
            raise ScanCancelled(library_id)

    async def _scan(
        self,
        library_id: int,
        full: bool,
        report: ScanReport,
        progress: Progress | None,
        run: _Run,
        only: Sequence[bytes] | None = None,
    ) -> None:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "UPDATE libraries SET last_scan_started = now() WHERE id = %s RETURNING kind",
                (library_id,),
            )
            row = await cur.fetchone()
            if row is None:
                raise LibraryGone(library_id)
            kind: LibraryKind = row[0]
            cur = await conn.execute(
                "SELECT id, path FROM library_roots WHERE library_id = %s ORDER BY path",
                (library_id,),
            )
            roots = [(int(r[0]), bytes(r[1])) for r in await cur.fetchall()]
            # a folder's scan reads only what is known under the folders it may walk
            known = await load_known(conn, library_id, _prefixes(roots, only))
        seen: set[int] = set()
        deferred: list[tuple[int, MediaFile, KnownFile, bool]] = []
        scoped: list[bytes] | None = None if only is None else []
        starts = await asyncio.to_thread(lambda: list(_starts(roots, only, known)))
        if only is not None and any(start == root for _, root, start in starts):
            async with self.db.connection() as conn:  # a root is walked whole after all
                known = await load_known(conn, library_id)
        for root_id, root, start in starts:
            stats = WalkStats()
            walker = _Walker(iter(()), root_id, kind, known, full, stats)
            if scoped is not None:
                scoped.append(start + b"/" if start != root else root + b"/")
            try:
                walker.entries = await asyncio.to_thread(_start, root, stats, start)
            except FileNotFoundError:
                if start != root and await asyncio.to_thread(os.path.isdir, root):
                    continue  # the changed folder itself went: its files are missing
                report.roots_failed.append(f"{root.decode('utf-8', 'replace')}: gone")
                continue
            except OSError as exc:
                shown = root.decode("utf-8", "replace")
                report.roots_failed.append(f"{shown}: {exc.strerror or exc}")
                continue
            while not walker.done:
                plans, moved = await asyncio.to_thread(walker.take, self.batch_size, seen, report)
                deferred += [(root_id, *m) for m in moved]
                await self._check(library_id)
                if plans:
                    await self._write(library_id, plans, (), report, run)
                if progress is not None:
                    await progress(report.files, f"{report.files} files, {report.new} new")
            run.folder_movie.update(walker.folder_movie)
            report.errors += stats.errors
            report.skipped += stats.skipped
            report.problems += stats.problems[: 100 - len(report.problems)]
        await self._resolve_moves(library_id, kind, deferred, seen, report, run)
        orphans = [
            (i, run.folder_movie.get(k[7:], k) if k.startswith("folder:") else k)
            for i, k in run.orphans
        ]
        async with self.db.connection() as conn:
            await adopt(conn, library_id, orphans)
        if report.roots_failed:
            return  # a root that could not be listed must not make its files missing
        if scoped is not None:  # a folder's scan: what vanished elsewhere is not its to say
            known = {p: k for p, k in known.items() if p.startswith(tuple(scoped))}
        gone = [k.id for k in known.values() if k.id not in seen and not k.missing]
        back = [k.id for k in known.values() if k.id in seen and k.missing]
        if not gone and not back:
            return  # nothing vanished or came back: items keep their state (written ones are present)
        async with self.db.connection() as conn:
            report.missing, report.returned = await mark_missing(conn, library_id, gone, back)

    async def _resolve_moves(
        self,
        library_id: int,
        kind: LibraryKind,
        deferred: list[tuple[int, MediaFile, KnownFile, bool]],
        seen: set[int],
        report: ScanReport,
        run: _Run,
    ) -> None:
        """A new path whose known file (same inode, or same content) was not found at its
        old path is a move; else (a hard link, a second copy) it is new."""
        moves: list[Move] = []
        plans: list[tuple[int, FilePlan]] = []
        for root_id, entry, old, by_content in deferred:
            if old.id not in seen:
                seen.add(old.id)
                report.moved += 1
                moves.append(
                    Move(old.id, root_id, os.fsencode(entry.path), entry.size, entry.mtime_ns,
                         _signed(entry.inode), _signed(entry.device), by_content)
                )  # fmt: skip
            else:
                report.new += 1
                plan = await asyncio.to_thread(plan_file, entry, kind, {})
                plans.append((root_id, plan))
        if moves or plans:
            await self._write(library_id, plans, moves, report, run)

    async def _write(
        self,
        library_id: int,
        plans: list[tuple[int, FilePlan]],
        moves: Sequence[Move],
        report: ScanReport,
        run: _Run,
    ) -> None:
        async with self.db.connection() as conn:
            result = await write_batch(conn, library_id, plans, moves)
        report.items += len(result.items)
        run.orphans += result.orphans
        if run.on_files is not None and result.files:
            await run.on_files(result.files)
        if run.on_images is not None and result.images:
            await run.on_images(result.images)
        if run.on_items is not None and result.items:
            rows: dict[str, ItemRow] = {r.key: r for _, p in plans for r in p.items}
            docs = [_written(i, k, kind, rows.get(k)) for i, k, kind in result.items]
            await run.on_items([d for d in docs if d.kind != "season"])


def _written(item_id: int, key: str, kind: str, row: ItemRow | None) -> WrittenItem:
    values = row.values if row is not None else {}
    people = tuple(p["name"] for p in values.get("people", ()) if isinstance(p, dict))
    return WrittenItem(
        item_id,
        kind,
        values.get("title", row.title if row is not None else key),
        values.get("original_title"),
        values.get("year"),
        values.get("overview"),
        people[:50],
    )


def _prefixes(roots: list[tuple[int, bytes]], only: Sequence[bytes] | None) -> list[bytes] | None:
    """The top folders (``root/<first part>/``) that ``only``'s paths lie in; None: all.

    >>> _prefixes([(1, b"/m")], [b"/m/A (1)/a.mkv", b"/m/B", b"/x/y"])
    [b'/m/A (1)/', b'/m/B/']
    """
    if only is None:
        return None
    found: set[bytes] = set()
    for _, root in roots:
        for path in only:
            if path.startswith(root + b"/"):
                head = path[len(root) + 1 :].partition(b"/")[0]
                found.add(root + b"/" + head + b"/")
    return sorted(found)


def _starts(
    roots: list[tuple[int, bytes]], only: Sequence[bytes] | None, known: Known | None = None
) -> Iterator[tuple[int, bytes, bytes]]:
    """(root id, root, folder to walk): every root whole, or the top folders ``only`` touches.

    A vanished path directly in a root is a folder when a known file was under it.

    >>> list(_starts([(1, b"/m")], [b"/m/A (1)/a.mkv", b"/m/A (1)/poster.jpg", b"/x/y"]))
    [(1, b'/m', b'/m/A (1)')]
    >>> list(_starts([(1, b"/m")], [b"/m/loose.mkv"]))  # a file directly in the root
    [(1, b'/m', b'/m')]
    """
    known_paths = list(known or ())
    for root_id, root in roots:
        if only is None:
            yield root_id, root, root
            continue
        tops: set[bytes] = set()
        for path in only:
            if not path.startswith(root + b"/"):
                continue
            head, sep, _ = path[len(root) + 1 :].partition(b"/")
            if (
                not sep
                and not os.path.isdir(path)
                and not any(k.startswith(path + b"/") for k in known_paths)
            ):
                tops = {root}  # a file in the root itself: the root is the smallest folder
                break
            tops.add(root + b"/" + head)
        for top in sorted(tops):
            yield root_id, root, top


def _start(
    root: bytes, stats: WalkStats, start: bytes | None = None
) -> Iterator[Folder | MediaFile]:
    """Start the walk (its first step lists the root: an unreadable root raises here)."""
    entries = walk(os.fsdecode(root), stats, None if start in (None, root) else os.fsdecode(start))
    first = next(entries, None)
    if first is None:
        return iter(())

    def chained() -> Iterator[Folder | MediaFile]:
        yield first
        yield from entries

    return chained()
