"""Libraries: movie and TV libraries, their roots, the scanner and its tables.

``MODULE`` installs it (``README.md`` beside this file: the schema and the conventions
every reader of these tables follows):

* routes ``/api/v1/libraries`` (:mod:`.routes`; changes are for administrators);
* browse routes (:mod:`.browse_routes`): movies, series, seasons, episodes, items,
  next up, continue watching, recently added, per-user state, library grants;
* ``browse`` (warm): :class:`.browse_service.Browse`, every read seen through the
  caller's grants (:mod:`.visibility`);
* ``libraries`` (warm): :class:`.service.Libraries`, the admin side;
* ``scanner`` (cold): :class:`.scan.Scanner`, built by the first scan, offloaded when idle;
* routes ``/api/v1/images/{id}`` (:mod:`.image_routes`: processed artwork, immutable);
* job kinds ``library_scan`` (one per library at a time, cancellable, progress through
  ``GET /api/v1/jobs/{id}``), ``media_probe`` (ffprobe through the playback module's
  cold ``transcoder``, at most ``MEDIA_PROBE.max_running`` at once cluster-wide) and
  ``images_process`` (variants and blurhash of one image, :mod:`.images`);
* cleanup steps removing files and items missing for longer than the grace period, and
  image variant folders no image names any more;
* ``migrations/``: libraries, roots, grants, items, media files, streams, chapters,
  images, per-user state.

The scanner's pure parts: :mod:`.walk` (the folder walk), :mod:`.naming` (what a file
name says), :mod:`.nfo` (Kodi NFO files), :mod:`.plan` (walked file -> rows).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from revenge.contract import (
    DATABASE,
    JOBS,
    JobContext,
    JobKind,
    Module,
    ModuleContext,
    Payload,
    RetryPolicy,
    ServiceKey,
    Tier,
)
from revenge.infra.search import SearchDocument
from revenge.modules.library.browse_routes import add_browse_routes
from revenge.modules.library.browse_service import Browse
from revenge.modules.library.edit_routes import add_edit_routes
from revenge.modules.library.fingerprint import record_fingerprint
from revenge.modules.library.image_routes import add_image_routes
from revenge.modules.library.images import pending_images, process_image, remove_unused_variants
from revenge.modules.library.probe import probe_file
from revenge.modules.library.routes import add_routes
from revenge.modules.library.scan import Scanner, ScanReport, WrittenItem
from revenge.modules.library.service import Libraries
from revenge.modules.library.watch import Watcher
from revenge.modules.playback import TRANSCODER
from revenge.modules.search import SEARCH

__all__ = [
    "BROWSE",
    "IMAGES_PROCESS",
    "LIBRARIES",
    "LIBRARY_RESCAN_DUE",
    "LIBRARY_SCAN",
    "MEDIA_PROBE",
    "MODULE",
    "SCANNER",
    "WATCHER",
    "Libraries",
    "ScanReport",
    "Scanner",
    "install",
    "reindex_item",
    "remove_missing",
]

log = logging.getLogger("revenge.library")

LIBRARIES: ServiceKey[Libraries] = ServiceKey("libraries", Tier.WARM)
BROWSE: ServiceKey[Browse] = ServiceKey("browse", Tier.WARM)
SCANNER: ServiceKey[Scanner] = ServiceKey("scanner", Tier.COLD)

LIBRARY_SCAN = JobKind(
    "library_scan",
    queue="library",
    priority=10,
    unique=True,  # key: the library id: one scan per library at a time
    retry=RetryPolicy(max_attempts=3, initial_delay=30.0),
    timeout=6 * 3600.0,
)
MEDIA_PROBE = JobKind(
    "media_probe",
    queue="library",
    priority=0,
    unique=True,  # key: the file id
    max_running=2,  # ffprobe processes at once, cluster-wide
    retry=RetryPolicy(max_attempts=2, initial_delay=60.0),
    timeout=300.0,
)
IMAGES_PROCESS = JobKind(
    "images_process",
    queue="library",
    priority=5,  # before probes: a poster is what a person browsing sees first
    unique=True,  # key: the image id
    max_running=2,  # Pillow decodes at once, cluster-wide (CPU and memory bound)
    retry=RetryPolicy(max_attempts=2, initial_delay=60.0),
    timeout=300.0,
)
LIBRARY_RESCAN_DUE = JobKind(
    "library_rescan_due",
    queue="library",
    unique=True,
    schedule="* * * * *",  # each minute: queue the scans whose scan_interval_minutes is up
    retry=RetryPolicy(max_attempts=1),
    timeout=60.0,
)
WATCHER: ServiceKey[Watcher] = ServiceKey("library_watcher", Tier.BACKGROUND)
MISSING_GRACE_DAYS = 7
"""Default days a vanished file or item is kept (library setting ``missing_grace_days``)."""


def install(ctx: ModuleContext) -> None:
    services = ctx.services
    settings = ctx.settings

    async def open_libraries() -> Libraries:
        jobs = services.get(JOBS)

        async def enqueue(library_id: int) -> int:
            return await jobs.enqueue(
                LIBRARY_SCAN.name, {"library": library_id}, key=str(library_id)
            )

        return Libraries(services.get(DATABASE), settings.server.data_path, enqueue)

    ctx.provide(LIBRARIES, open_libraries)
    ctx.provide(SCANNER, lambda: Scanner(services.get(DATABASE)), idle_ttl=300.0)
    ctx.job(LIBRARY_SCAN, scan_library)
    ctx.job(MEDIA_PROBE, probe_media)
    ctx.job(IMAGES_PROCESS, process_images(images_dir(settings), settings.metadata.image_max_bytes))

    async def queue_scan(library_id: int, watch: bool) -> bool:
        jobs = services.get(JOBS)
        payload: Payload = (
            {"library": library_id, "watch": True} if watch else {"library": library_id}
        )
        job_id = await jobs.enqueue(LIBRARY_SCAN.name, payload, key=str(library_id))
        status = await jobs.status(job_id)
        # Only a job that has not started yet will take the paths just remembered. The id
        # may be a running scan's (the key was taken) that has finished by the time its
        # status is read: "not running" then meant "lost", and the change was never scanned.
        # Anything but waiting keeps the library dirty, to be queued again at the next step.
        return status is not None and status.state in ("queued", "scheduled")

    async def rescan_due(ctx: JobContext, payload: Payload) -> None:
        """Queue a scan of each library whose ``scan_interval_minutes`` has passed."""
        rows = await ctx.services.get(DATABASE).fetch_all(
            "SELECT id FROM libraries WHERE (settings->>'scan_interval_minutes')::int > 0"
            " AND coalesce(last_scan_started, '-infinity') < now()"
            "   - make_interval(mins => (settings->>'scan_interval_minutes')::int)"
        )
        for row in rows:
            await queue_scan(int(row[0]), False)

    ctx.job(LIBRARY_RESCAN_DUE, rescan_due)
    if settings.library.watch:

        async def open_watcher() -> Watcher:
            db = services.get(DATABASE)
            return await Watcher(
                db,
                db.url,
                queue_scan,
                debounce=settings.library.watch_debounce,
                fallback_interval=settings.library.watch_fallback_interval,
            ).start()

        ctx.provide(
            WATCHER,
            open_watcher,
            close=lambda w: w.close(),
            health=lambda w: w.check(),
            critical=False,
        )
    ctx.cleanup_step("missing", remove_missing)

    async def unused_variants(conn: Any) -> int:
        cur = await conn.execute(
            "SELECT DISTINCT encode(content_hash, 'hex') FROM images WHERE content_hash IS NOT NULL"
        )
        used = {str(r[0]) for r in await cur.fetchall()}
        return await asyncio.to_thread(remove_unused_variants, images_dir(settings), used)

    ctx.cleanup_step("image_variants", unused_variants)
    add_routes(ctx.router, lambda: services.get(LIBRARIES))
    add_image_routes(ctx.router, lambda: services.get(DATABASE), lambda: images_dir(settings))
    ctx.provide(BROWSE, lambda: Browse(services.get(DATABASE)))
    add_browse_routes(ctx.router, lambda: services.get(BROWSE))

    async def reindex_edited(item_id: int) -> None:
        db = services.get(DATABASE)
        await index_item(services.get(SEARCH), db, "WHERE i.id = %s", item_id, "an edit")

    add_edit_routes(ctx.router, lambda: services.get(DATABASE), reindex_edited)
    ctx.migrations(resources.files(__name__) / "migrations")


async def scan_library(ctx: JobContext, payload: Payload) -> None:
    """Scan one library (payload ``{"library": id, "full": false}``)."""
    library_id = int(payload["library"])
    scanner = await ctx.services.lazy(SCANNER).get()
    search = ctx.services.get(SEARCH)
    jobs = ctx.services.get(JOBS)

    async def progress(done: int, message: str) -> None:
        await ctx.progress(done, None, message)

    async def on_items(items: Sequence[WrittenItem]) -> None:
        docs = [
            SearchDocument(str(i.id), i.kind, i.title, i.original_title, i.year, i.overview,
                           i.people)
            for i in items
        ]  # fmt: skip
        try:
            await search.index(docs)
        except Exception:  # the index catches up at the next reindex; the scan goes on
            log.exception("library %s: search indexing failed", library_id)

    async def on_files(ids: Sequence[int]) -> None:
        await jobs.enqueue_many(
            MEDIA_PROBE.name, [{"file": i} for i in ids], keys=[str(i) for i in ids]
        )

    async def on_images(ids: Sequence[int]) -> None:
        await jobs.enqueue_many(
            IMAGES_PROCESS.name, [{"image": i} for i in ids], keys=[str(i) for i in ids]
        )

    only = await take_watch_paths(ctx.services.get(DATABASE), library_id)
    if payload.get("watch"):
        if only is None:  # a scan before this one took them: nothing left to do
            await ctx.progress(0, 0, "done: no changed folders left")
            return
    else:
        only = None  # every other scan walks everything
    report = await scanner.scan(
        library_id,
        # a changed folder's files are all re-read: an edited NFO or a new poster beside an
        # unchanged video is the change the watcher saw
        full=bool(payload.get("full")) or bool(only),
        progress=progress,
        on_items=on_items,
        on_files=on_files,
        on_images=on_images,
        only=only or None,  # an empty list: too many changes listed, walk every root
    )
    await ctx.progress(report.files, report.files, f"{report.outcome}: {report.files} files")


async def probe_media(ctx: JobContext, payload: Payload) -> None:
    """Fingerprint and ffprobe one media file (payload ``{"file": id}``); a bad file is
    recorded, not retried."""
    transcoder = await ctx.services.lazy(TRANSCODER).get()
    db = ctx.services.get(DATABASE)
    file_id = int(payload["file"])
    # the content fingerprint lets a later scan recognise this file copied to another disk
    await record_fingerprint(db, file_id)
    if await probe_file(db, transcoder, file_id) == "ok":
        await _reindex_embedded(ctx, db, file_id)
        async with db.connection() as conn:
            ids = await pending_images(conn, file_id=file_id)  # embedded cover art
        if ids:
            await ctx.services.get(JOBS).enqueue_many(
                IMAGES_PROCESS.name, [{"image": i} for i in ids], keys=[str(i) for i in ids]
            )


async def _reindex_embedded(ctx: JobContext, db: Any, file_id: int) -> None:
    """The search document of an item whose title or year came from the file's tags."""
    await reindex_item(
        ctx,
        db,
        "JOIN media_files f ON f.item_id = i.id WHERE f.id = %s"
        " AND 'embedded' IN (i.field_sources->>'title', i.field_sources->>'year')",
        file_id,
        "the probe",
    )


async def reindex_item(ctx: JobContext, db: Any, where: str, key: int, after: str) -> None:
    """:func:`index_item` with the job's search service."""
    await index_item(ctx.services.get(SEARCH), db, where, key, after)


async def index_item(search: Any, db: Any, where: str, key: int, after: str) -> None:
    """Index the search document of the item ``FROM items i <where>`` (``%s``: ``key``)
    picks, if any. A failure is logged, not raised: the next reindex catches up, and the
    work that changed the item (``after``: a probe, a metadata fetch, an edit) is stored."""
    row = await db.fetch_one(
        "SELECT i.id, i.kind, i.title, i.original_title, i.year, i.overview, i.people"  # noqa: S608 (callers' fixed SQL)
        f" FROM items i {where}",
        (key,),
    )
    if row is None:
        return
    people = tuple(p["name"] for p in row[6] or () if isinstance(p, dict) and "name" in p)
    doc = SearchDocument(str(row[0]), row[1], row[2], row[3], row[4], row[5], people[:50])
    try:
        await search.index([doc])
    except Exception:
        log.exception("item %s: search indexing after %s failed", row[0], after)


async def take_watch_paths(db: Any, library_id: int) -> list[bytes] | None:
    """The changed paths the watcher left for the library (and clear them); None: none."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "SELECT watch_paths FROM libraries WHERE id = %s FOR UPDATE", (library_id,)
        )
        row = await cur.fetchone()
        if row is None or row[0] is None:
            return None
        await conn.execute("UPDATE libraries SET watch_paths = NULL WHERE id = %s", (library_id,))
    return [bytes(p) for p in row[0]]


def images_dir(settings: Any) -> Path:
    """Where image variants live: the data folder's ``images/`` (never beside the media)."""
    return Path(settings.server.data_path) / "images"


def process_images(
    folder: Path, max_download: int
) -> Callable[[JobContext, Payload], Awaitable[None]]:
    """The ``images_process`` body writing under ``folder`` (remote images: at most
    ``max_download`` bytes)."""

    async def body(ctx: JobContext, payload: Payload) -> None:
        """Variants and blurhash of one image (payload ``{"image": id}``); a bad source is
        recorded as failed, not retried."""

        async def ffmpeg() -> str:
            return (await ctx.services.lazy(TRANSCODER).get()).ffmpeg

        await process_image(
            ctx.services.get(DATABASE),
            folder,
            int(payload["image"]),
            ffmpeg=ffmpeg,
            max_download=max_download,
        )

    return body


async def remove_missing(conn: Any) -> int:
    """Delete files, then items, missing for longer than their library's grace period."""
    grace = (
        f"make_interval(days => coalesce((l.settings->>'missing_grace_days')::int,"
        f" {MISSING_GRACE_DAYS}))"
    )
    cur = await conn.execute(
        "DELETE FROM media_files f USING libraries l WHERE l.id = f.library_id"  # noqa: S608
        f" AND f.missing_since < now() - {grace}"
    )
    removed = cur.rowcount
    cur = await conn.execute(
        "DELETE FROM items i USING libraries l WHERE l.id = i.library_id"  # noqa: S608
        f" AND i.missing_since < now() - {grace}"
        " AND NOT EXISTS (SELECT 1 FROM media_files f WHERE f.item_id = i.id)"
    )
    removed += cur.rowcount
    # seasons, then series, left with nothing under them
    for kind in ("season", "series"):
        cur = await conn.execute(
            "DELETE FROM items i WHERE i.kind = %s"
            " AND NOT EXISTS (SELECT 1 FROM items c WHERE c.parent_id = i.id)"
            " AND NOT EXISTS (SELECT 1 FROM media_files f WHERE f.item_id = i.id)"
            " AND i.date_added < now() - interval '1 hour'",
            (kind,),
        )
        removed += cur.rowcount
    return int(removed)


MODULE = Module("library", install)
