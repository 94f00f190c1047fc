"""The folder watcher (optional, ``library.watch``): a change under a root scans that folder.

One process of the cluster watches (it holds a PostgreSQL advisory lock on a connection
of its own; the others stand by and take over when it goes). Changes are collected by
``watchfiles`` (inotify), debounced (``library.watch_debounce`` of quiet first, so a copy
in progress settles), appended to ``libraries.watch_paths`` and a ``library_scan`` with
``{"watch": true}`` is queued: that scan takes the paths and walks only the top folders
under the root that hold them. When the scan of a library is already running, the
library stays dirty and is queued again at the next step (a running scan may have walked
past the folder).

When the kernel's inotify watch limit is reached (``fs.inotify.max_user_watches``), the
watcher says so in ``/health`` (the ``library_watcher`` check fails: degraded, with the
sysctl to raise) and falls back to rescanning every watched library each
``library.watch_fallback_interval``, never silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from revenge.infra.db import Database

__all__ = ["WatchLimitReached", "Watcher", "watched_roots"]

log = logging.getLogger("revenge.library.watch")

LOCK_KEY = 0x7265_7620_7761_7463  # 'rev watc': one watcher per database
_MAX_PATHS = 1000
"""Past this many changed paths in one step a library's scan walks every root."""

Enqueue = Callable[[int, bool], Awaitable[bool]]
"""Queue a scan of a library (``True``: of its ``watch_paths``); False when its scan is
already running (the watcher tries again at its next step)."""
AWatch = Callable[..., AsyncIterator[set[tuple[Any, str]]]]


class WatchLimitReached(Exception):
    """The kernel refused more inotify watches: libraries are rescanned periodically instead."""


def _is_limit(exc: BaseException) -> bool:
    text = str(exc)
    return (
        "watch limit" in text
        or getattr(exc, "errno", None) in (errno.ENOSPC, errno.EMFILE)
        or "Too many open files" in text
    )


async def watched_roots(db: Database) -> dict[bytes, int]:
    """``{root path: library id}`` of the libraries to watch (setting ``watch`` not false)."""
    rows = await db.fetch_all(
        "SELECT r.path, r.library_id FROM library_roots r JOIN libraries l ON l.id = r.library_id"
        " WHERE coalesce(l.settings->>'watch', 'true') <> 'false' ORDER BY r.path"
    )
    return {bytes(r[0]): int(r[1]) for r in rows}


def _present(roots: list[bytes]) -> set[bytes]:
    return {r for r in roots if os.path.isdir(os.fsdecode(r))}


def _hidden(path: str) -> bool:
    return any(part.startswith(".") or part in ("@eaDir", "#recycle") for part in path.split("/"))


@dataclass
class Watcher:
    """Runs while the service is up: :meth:`start` once, :meth:`close` at shutdown."""

    db: Database
    url: str
    enqueue: Enqueue
    debounce: float = 0.3
    fallback_interval: float = 900.0
    refresh: float = 5.0
    awatch: AWatch | None = None
    state: str = "starting"  # starting | standby | idle | watching | limit
    limit_error: str | None = None
    last_scan_queued: float | None = None
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _dirty: dict[int, set[bytes]] = field(default_factory=dict)
    _caught_up: set[int] = field(default_factory=set)

    async def start(self) -> Watcher:
        self._task = asyncio.create_task(self._run(), name="library-watcher")
        return self

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task  # it logged its own failures

    def check(self) -> None:
        """The health probe: fails (degraded) while the watch limit keeps roots unwatched."""
        if self.state == "limit":
            raise WatchLimitReached(
                f"{self.limit_error}; rescanning every {self.fallback_interval:g}s instead"
                " (raise fs.inotify.max_user_watches, e.g. sysctl fs.inotify.max_user_watches=524288)"
            )

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
                    row = await cur.fetchone()
                    if row is None or not row[0]:
                        self.state = "standby"
                    else:
                        await self._lead()
                        return
            except asyncio.CancelledError:
                raise
            except Exception:  # PostgreSQL away: try again; the server goes on
                log.exception("library watcher: cannot take the watch lock")
            await self._sleep(self.refresh)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _lead(self) -> None:
        while not self._stop.is_set():
            roots = await watched_roots(self.db)
            present = await asyncio.to_thread(_present, list(roots))
            existing = {r: lib for r, lib in roots.items() if r in present}
            if not existing:
                self.state = "idle"
                await self._sleep(self.refresh)
                continue
            changed = asyncio.Event()
            watcher = asyncio.create_task(self._watch_roots(existing, changed))
            refresher = asyncio.create_task(self._roots_changed(roots, changed))
            try:
                await watcher
            except Exception as exc:
                if not _is_limit(exc):
                    log.exception("library watcher failed; retrying")
                    await self._sleep(self.refresh)
                    continue
                self.state, self.limit_error = "limit", f"inotify watch limit reached: {exc}"
                log.warning(
                    "library watcher: %s; falling back to a rescan of every watched library"
                    " each %gs",
                    self.limit_error,
                    self.fallback_interval,
                )
                await self._fallback(set(existing.values()), changed)
            finally:
                refresher.cancel()

    async def _roots_changed(self, roots: dict[bytes, int], changed: asyncio.Event) -> None:
        while not self._stop.is_set():
            await self._sleep(self.refresh)
            try:
                if await watched_roots(self.db) != roots:
                    changed.set()
                    return
            except Exception:
                log.warning("library watcher: cannot read the roots", exc_info=True)

    async def _watch_roots(self, roots: dict[bytes, int], changed: asyncio.Event) -> None:
        from watchfiles import awatch as default_awatch

        awatch: AWatch = self.awatch or default_awatch

        stop = _AnyEvent(self._stop, changed)
        paths = [os.fsdecode(r) for r in roots]
        self.state = "watching"
        async for changes in awatch(
            *paths,
            stop_event=stop,
            debounce=int(self.debounce * 1000) or 1,
            step=50,
            watch_filter=lambda _c, p: not _hidden(p),
            rust_timeout=1000,
            yield_on_timeout=True,
        ):
            await self._catch_up(set(roots.values()))
            for _, path in changes:
                raw = os.fsencode(path)
                for root, library in roots.items():
                    if raw.startswith(root + b"/"):
                        self._dirty.setdefault(library, set()).add(raw)
                        break
            await self._flush()
            if stop.is_set():
                return

    async def _catch_up(self, libraries: set[int]) -> None:
        """Once the watches are set (the first yield), scan each library newly watched: what
        changed while nobody watched it (the server down, the library just created) is
        found too."""
        for library in sorted(libraries - self._caught_up):
            try:
                await self.enqueue(library, False)
            except Exception:
                log.warning("library watcher: cannot queue a scan of %s", library, exc_info=True)
                continue
            self._caught_up.add(library)

    async def _flush(self) -> None:
        for library in list(self._dirty):
            paths = self._dirty[library]
            try:
                await self._remember(library, paths)
                queued = await self.enqueue(library, True)
            except Exception:
                log.warning("library watcher: cannot queue a scan of %s", library, exc_info=True)
                continue
            if queued:
                self.last_scan_queued = time.monotonic()
                del self._dirty[library]
            else:
                paths.clear()  # remembered in the row; queue again at the next step

    async def _remember(self, library: int, paths: Iterable[bytes]) -> None:
        """Add changed paths to the library's row; an empty array means "walk every root"."""
        listed = sorted(paths)
        if not listed:
            return
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE libraries SET watch_paths = CASE"
                " WHEN watch_paths IS NOT NULL AND cardinality(watch_paths) = 0 THEN watch_paths"
                " WHEN coalesce(cardinality(watch_paths), 0) + %s > %s THEN '{}'::bytea[]"
                " ELSE coalesce(watch_paths, '{}'::bytea[]) || %s::bytea[] END WHERE id = %s",
                (len(listed), _MAX_PATHS, listed, library),
            )

    async def _fallback(self, libraries: set[int], changed: asyncio.Event) -> None:
        """Rescan every watched library periodically until the roots change or we stop."""
        stop = _AnyEvent(self._stop, changed)
        while not stop.is_set():
            for library in sorted(libraries):
                try:
                    await self.enqueue(library, False)  # an incremental scan of it all
                    self.last_scan_queued = time.monotonic()
                except Exception:
                    log.warning("library watcher: cannot queue a rescan", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.fallback_interval)


class _AnyEvent:
    """Set when either event is (what ``watchfiles`` polls as its ``stop_event``)."""

    def __init__(self, a: asyncio.Event, b: asyncio.Event) -> None:
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()

    def set(self) -> None:  # watchfiles stops its thread this way when it is cancelled
        self.b.set()

    async def wait(self) -> None:
        waits = [asyncio.ensure_future(self.a.wait()), asyncio.ensure_future(self.b.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
