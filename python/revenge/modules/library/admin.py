"""``revenge library add|list|scan|rm|grant|revoke``: the admin service on a short-lived pool.

The same :class:`Libraries` as the API, so the CLI refuses exactly what the API refuses
(its problems print as ``code: detail``). ``scan`` queues the ``library_scan`` job (a
running server's worker or ``revenge worker`` runs it); ``--wait`` follows its progress.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from revenge.config import Settings
from revenge.infra.db import Database
from revenge.infra.jobs import Jobs, KindRegistry
from revenge.modules.library import repository as repo
from revenge.modules.library.service import Libraries, LibraryChange, ScanRequest

__all__ = ["add", "find", "grant", "listing", "remove", "scan"]


@asynccontextmanager
async def _libraries(url: str, settings: Settings) -> AsyncIterator[tuple[Libraries, Jobs]]:
    from revenge.modules.library import LIBRARY_SCAN

    db = Database.from_settings(url, settings.database)
    await db.start()
    try:
        async with Jobs.open(url, registry=KindRegistry((LIBRARY_SCAN,))) as jobs:

            async def enqueue(library_id: int) -> int:
                return await jobs.enqueue(
                    LIBRARY_SCAN.name, {"library": library_id}, key=str(library_id)
                )

            yield Libraries(db, settings.server.data_path, enqueue), jobs
    finally:
        await db.close()


async def find(libraries: Libraries, name_or_id: str) -> repo.Library:
    """A library by id or by name (case-insensitive); raises the 404 problem."""
    for lib in await libraries.list():
        if str(lib.id) == name_or_id or lib.name.lower() == name_or_id.lower():
            return lib
    from revenge.http import Problem

    raise Problem(404, "library_not_found", "Library not found", f"no library {name_or_id!r}")


async def add(url: str, settings: Settings, name: str, kind: str, roots: list[str]) -> repo.Library:
    async with _libraries(url, settings) as (libraries, _):
        change = LibraryChange.from_json(
            {"name": name, "kind": kind, "roots": roots}, creating=True
        )
        return await libraries.create(change)


async def listing(url: str, settings: Settings) -> list[repo.Library]:
    async with _libraries(url, settings) as (libraries, _):
        return await libraries.list()


async def remove(url: str, settings: Settings, name_or_id: str) -> repo.Library:
    async with _libraries(url, settings) as (libraries, _):
        lib = await find(libraries, name_or_id)
        await libraries.delete(lib.id)
        return lib


async def scan(
    url: str, settings: Settings, name_or_id: str, *, wait: bool = False
) -> tuple[ScanRequest, dict[str, Any] | None]:
    """Queue a scan; with ``wait``, poll until it ends and return the library's last report."""
    async with _libraries(url, settings) as (libraries, jobs):
        lib = await find(libraries, name_or_id)
        request = await libraries.scan(lib.id)
        if not wait:
            return request, None
        while True:
            status = await jobs.status(request.job_id)
            if status is None or status.state in ("succeeded", "failed", "canceled"):
                break
            await asyncio.sleep(0.5)
        return request, (await libraries.get(lib.id)).last_scan_stats


async def grant(
    url: str, settings: Settings, library: str, user: str, *, revoke: bool = False
) -> tuple[repo.Library, int, bool]:
    """Grant (or revoke) a library to a user, both by name or id: the library, the user's
    id, and whether anything changed. Same service and problems as the API."""
    from revenge.http import Problem
    from revenge.modules.library.browse_service import Browse

    async with _libraries(url, settings) as (libraries, _):
        lib = await find(libraries, library)
        row = await libraries.db.fetch_one(
            "SELECT id FROM users WHERE lower(username) = lower(%s) OR id::text = %s"
            " ORDER BY (id::text = %s) DESC LIMIT 1",
            (user, user, user),
        )
        if row is None:
            raise Problem(404, "user_not_found", "User not found", f"no user {user!r}")
        user_id = int(row[0])
        browse = Browse(libraries.db)
        if revoke:
            return lib, user_id, await browse.revoke(lib.id, user_id)
        before = {g.user_id for g in await browse.grants(lib.id)}
        await browse.grant(lib.id, user_id)
        return lib, user_id, user_id not in before
