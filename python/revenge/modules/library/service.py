"""Libraries as the administrator changes them: validation, root checks, scans asked for.

Handlers and the CLI both call :class:`Libraries`; every refusal is a :class:`Problem`
with a stable code, so the API answers problem+json and the CLI prints the detail.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from revenge.http import Problem
from revenge.infra.db import Database
from revenge.modules.library import repository as repo
from revenge.modules.library.roots import OtherRoot, check_root, overlaps, root_bytes

__all__ = ["KINDS", "Libraries", "LibraryChange", "ScanRequest", "library_not_found"]

KINDS = ("movies", "tv")
MAX_ROOTS = 32
MAX_SETTINGS_BYTES = 16_384

Enqueue = Callable[[int], Awaitable[int]]
"""Queue a ``library_scan`` job for a library id; the job's id (an existing one when queued)."""


def library_not_found(library_id: int) -> Problem:
    return Problem(404, "library_not_found", "Library not found", f"no library {library_id}")


def _invalid(detail: str, field: str) -> Problem:
    return Problem(422, "validation_failed", "Validation failed", detail, extra={"field": field})


@dataclass(frozen=True, slots=True)
class LibraryChange:
    """What a create or change asks for; ``None`` leaves a field as it is (change only)."""

    name: str | None = None
    kind: str | None = None
    roots: tuple[str, ...] | None = None
    settings: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, body: Any, *, creating: bool) -> LibraryChange:
        """Validated fields of a request body (422 ``validation_failed`` naming the field)."""
        if not isinstance(body, dict):
            raise _invalid("the body is a JSON object", "body")
        unknown = set(body) - {"name", "kind", "roots", "settings"}
        if unknown:
            raise _invalid(f"unknown field {sorted(unknown)[0]!r}", sorted(unknown)[0])
        name = body.get("name")
        if name is not None or creating:
            if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
                raise _invalid("name: 1 to 100 characters", "name")
            name = name.strip()
        kind = body.get("kind")
        if creating and kind not in KINDS:
            raise _invalid("kind: 'movies' or 'tv'", "kind")
        if not creating and kind is not None:
            raise _invalid("a library's kind cannot change (make a new library)", "kind")
        roots = body.get("roots")
        if roots is not None or creating:
            if (
                not isinstance(roots, list)
                or not 1 <= len(roots) <= MAX_ROOTS
                or not all(isinstance(r, str) and 0 < len(r) <= 4096 for r in roots)
            ):
                raise _invalid(f"roots: 1 to {MAX_ROOTS} absolute folder paths", "roots")
            roots = tuple(roots)
        settings = body.get("settings")
        if settings is not None:
            if not isinstance(settings, dict) or len(orjson.dumps(settings)) > MAX_SETTINGS_BYTES:
                raise _invalid("settings: a JSON object of at most 16 KiB", "settings")
            grace = settings.get("missing_grace_days", 0)
            if type(grace) is not int or not 0 <= grace <= 3650:
                raise _invalid("settings.missing_grace_days: whole days, 0 to 3650", "settings")
        return cls(name, kind, roots, settings)


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """The scan job a request got, and whether it was already queued or running."""

    job_id: int
    already: bool


class Libraries:
    """Create, list, change and delete libraries; ask for and cancel scans."""

    def __init__(self, db: Database, data_dir: Path, enqueue: Enqueue) -> None:
        self.db = db
        self.data_dir = data_dir
        self._enqueue = enqueue

    async def _checked_roots(
        self, conn: repo.Conn, roots: Sequence[str], library_id: int | None
    ) -> list[bytes]:
        others = [OtherRoot(p, n) for p, n in await repo.all_roots(conn, except_library=library_id)]
        stored: list[bytes] = []
        for path in roots:
            problem = await asyncio.to_thread(
                check_root, path, data_dir=self.data_dir, others=others
            )
            if problem is not None:
                raise Problem(
                    problem.status,
                    problem.code,
                    "Invalid library root",
                    problem.detail,
                    extra={"field": "roots", "root": os.fsencode(path).decode("utf-8", "replace")},
                )
            raw = root_bytes(path)
            if any(overlaps(raw, s) for s in stored):
                raise Problem(
                    409,
                    "root_overlaps",
                    "Invalid library root",
                    f"{raw.decode('utf-8', 'replace')} overlaps another root of this library",
                    extra={"field": "roots"},
                )
            stored.append(raw)
        return stored

    async def create(self, change: LibraryChange) -> repo.Library:
        assert change.name is not None and change.kind is not None and change.roots is not None
        async with self.db.transaction() as conn:
            await repo.lock_roots(conn)
            roots = await self._checked_roots(conn, change.roots, None)
            try:
                library_id = await repo.insert_library(
                    conn, change.name, change.kind, change.settings or {}
                )
            except repo.LibraryNameTaken:
                raise _name_taken(change.name) from None
            await repo.replace_roots(conn, library_id, roots)
            library = await repo.get_library(conn, library_id)
        assert library is not None
        return library

    async def change(self, library_id: int, change: LibraryChange) -> repo.Library:
        async with self.db.transaction() as conn:
            await repo.lock_roots(conn)
            if await repo.get_library(conn, library_id) is None:
                raise library_not_found(library_id)
            try:
                await repo.update_library(
                    conn, library_id, name=change.name, settings=change.settings
                )
            except repo.LibraryNameTaken:
                raise _name_taken(change.name or "") from None
            if change.roots is not None:
                roots = await self._checked_roots(conn, change.roots, library_id)
                await repo.replace_roots(conn, library_id, roots)
            library = await repo.get_library(conn, library_id)
        assert library is not None
        return library

    async def get(self, library_id: int) -> repo.Library:
        async with self.db.connection() as conn:
            library = await repo.get_library(conn, library_id)
        if library is None:
            raise library_not_found(library_id)
        return library

    async def list(self, *, user_id: int | None = None) -> list[repo.Library]:
        async with self.db.connection() as conn:
            return await repo.list_libraries(conn, user_id=user_id)

    async def delete(self, library_id: int) -> None:
        """Delete the library; a scan running for it stops at its next batch."""
        async with self.db.transaction() as conn:
            if not await repo.delete_library(conn, library_id):
                raise library_not_found(library_id)

    async def scan(self, library_id: int) -> ScanRequest:
        """Queue a scan; a second request while one is queued or running gets that one."""
        await self.get(library_id)
        job_id = await self._enqueue(library_id)
        async with self.db.transaction() as conn:
            fresh = await repo.request_scan(conn, library_id, job_id)
        if fresh is None:
            raise library_not_found(library_id)
        return ScanRequest(job_id, already=not fresh)

    async def cancel_scan(self, library_id: int) -> int:
        """Ask the running scan to stop between batches; the job id (0: none was asked for)."""
        async with self.db.transaction() as conn:
            job = await repo.cancel_scan(conn, library_id)
        if job is None:
            raise library_not_found(library_id)
        return job


def _name_taken(name: str) -> Problem:
    return Problem(
        409,
        "library_name_taken",
        "Library name taken",
        f"a library named {name!r} exists",
        extra={"field": "name"},
    )
