"""HTTP face of libraries: ``/api/v1/libraries`` (changes: administrators only).

Everyone signed in may list and read the libraries granted to them (administrators see
all, with their roots); an id the caller may not see is a 404, never a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field

from revenge.http import Input, Problem, Request, Response, Router, json_response, text
from revenge.modules.library.repository import Library
from revenge.modules.library.service import Libraries, LibraryChange, library_not_found

_TAGS = ("libraries",)
_ROOT = Annotated[str, text(max_length=4096, pattern=r"^/[^\x00]*$")]
_NAME = Annotated[str, text(max_length=100, pattern=r"^[^\x00]*\S[^\x00]*$")]


class LibrarySettingsBody(Input):
    missing_grace_days: Annotated[int, Field(ge=0, le=3650)] = 7
    watch: bool = True
    """Watched for changes when the server's folder watcher is on (``library.watch``)."""
    scan_interval_minutes: Annotated[int, Field(ge=0, le=525600)] = 0
    """A rescan this often (0: none besides the watcher's and those requested)."""


class NewLibraryBody(Input):
    """A new library: a name, its kind and its absolute root folders."""

    name: _NAME
    kind: Literal["movies", "tv"]
    roots: Annotated[list[_ROOT], Field(min_length=1, max_length=32)]
    settings: LibrarySettingsBody | None = None


class LibraryChangeBody(Input):
    """What to change; a field left out stays as it is (the kind never changes)."""

    name: _NAME | None = None
    roots: Annotated[list[_ROOT], Field(min_length=1, max_length=32)] | None = None
    settings: LibrarySettingsBody | None = None


_MAX_ID = 2**63 - 1


def parse_library_id(text: str) -> int:
    """The path's library id, or a 404 (an id that cannot exist names nothing).

    >>> parse_library_id("7")
    7
    >>> parse_library_id("x")
    Traceback (most recent call last):
    ...
    revenge.http.errors.Problem: 404 library_not_found: no library x
    """
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > _MAX_ID:
        raise Problem(404, "library_not_found", "Library not found", f"no library {text[:40]}")
    return int(text)


def library_json(library: Library, *, admin: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"id": library.id, "name": library.name, "kind": library.kind}
    if admin:
        body |= {
            "roots": [r.text for r in library.roots],
            "settings": library.settings,
            "created_at": library.created_at,
            "updated_at": library.updated_at,
            "last_scan_started": library.last_scan_started,
            "last_scan_finished": library.last_scan_finished,
            "last_scan": library.last_scan_stats,
            "scan_job_id": library.scan_job_id,
        }
    return body


def _admin(request: Request) -> None:
    if not request.principal_or_raise.is_admin:
        raise Problem(
            403, "admin_required", "Forbidden", "only administrators may change libraries"
        )


def add_routes(router: Router, service: Callable[[], Libraries]) -> None:
    """Add the routes; ``service()`` gives the ``Libraries`` (the warm service, once started)."""

    async def list_libraries(request: Request) -> Response:
        """Libraries the caller may see (all, with roots and scan state, for administrators)."""
        principal = request.principal_or_raise
        admin = principal.is_admin
        found = await service().list(user_id=None if admin else principal.user_id)
        return json_response({"items": [library_json(lib, admin=admin) for lib in found]})

    async def show_library(request: Request) -> Response:
        """One library (404 when it does not exist or is not granted to the caller)."""
        principal = request.principal_or_raise
        library_id = parse_library_id(request.path_params["library_id"])
        if principal.is_admin:
            return json_response(library_json(await service().get(library_id), admin=True))
        for lib in await service().list(user_id=principal.user_id):
            if lib.id == library_id:
                return json_response(library_json(lib, admin=False))
        raise library_not_found(library_id)

    async def create_library(request: Request, *, body: NewLibraryBody) -> Response:
        """Create a library: name, kind (movies | tv), roots (absolute folders), settings."""
        _admin(request)
        change = LibraryChange.from_json(body.model_dump(exclude_none=True), creating=True)
        library = await service().create(change)
        return json_response(library_json(library, admin=True), 201)

    async def change_library(request: Request, *, body: LibraryChangeBody) -> Response:
        """Rename, replace the roots or the settings of a library (kind cannot change)."""
        _admin(request)
        library_id = parse_library_id(request.path_params["library_id"])
        change = LibraryChange.from_json(body.model_dump(exclude_none=True), creating=False)
        return json_response(library_json(await service().change(library_id, change), admin=True))

    async def delete_library(request: Request) -> Response:
        """Delete a library and everything scanned from it (media files are never touched)."""
        _admin(request)
        await service().delete(parse_library_id(request.path_params["library_id"]))
        return Response(204)

    async def scan_library(request: Request) -> Response:
        """Queue a scan; ``already`` is true when one was queued or running (its id is given)."""
        _admin(request)
        scan = await service().scan(parse_library_id(request.path_params["library_id"]))
        return json_response({"job_id": scan.job_id, "already": scan.already}, 202)

    async def cancel_scan(request: Request) -> Response:
        """Ask the library's running scan to stop (it stops after its current batch)."""
        _admin(request)
        job_id = await service().cancel_scan(parse_library_id(request.path_params["library_id"]))
        return json_response({"job_id": job_id or None, "cancel_requested": True}, 202)

    base = "/api/v1/libraries"
    router.add("GET", base, list_libraries, tags=_TAGS)
    router.add(
        "POST", base, create_library, tags=_TAGS, body=NewLibraryBody, status=201, admin=True
    )
    router.add("GET", base + "/{library_id}", show_library, tags=_TAGS)
    router.add(
        "PATCH",
        base + "/{library_id}",
        change_library,
        tags=_TAGS,
        body=LibraryChangeBody,
        admin=True,
    )
    router.add("DELETE", base + "/{library_id}", delete_library, tags=_TAGS, admin=True)
    router.add("POST", base + "/{library_id}/scan", scan_library, tags=_TAGS, admin=True)
    router.add("DELETE", base + "/{library_id}/scan", cancel_scan, tags=_TAGS, admin=True)
