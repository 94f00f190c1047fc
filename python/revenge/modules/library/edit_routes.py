"""``PATCH /api/v1/items/{item_id}/metadata``: an administrator edits and locks an item's fields.

See :mod:`.edit` for what an edit writes. Administrators see every item, so an unknown id
is the only 404; a value out of range or a field that cannot be locked is a 422 naming it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from revenge.http import Input, Output, Request, Response, Router, json_response, text
from revenge.modules.library.browse_routes import ItemPath
from revenge.modules.library.browse_service import item_not_found
from revenge.modules.library.edit import edit_item

__all__ = ["MetadataEdit", "MetadataOut", "add_edit_routes"]

_LINE = Annotated[str, text(max_length=500, pattern=r"^[^\x00]*\S[^\x00]*$")]
_TEXT = Annotated[str, text(max_length=20000, pattern=r"^[^\x00]*$")]
_NAME = Annotated[str, text(max_length=100, pattern=r"^[^\x00]*\S[^\x00]*$")]
_Lockable = Literal[
    "title", "original_title", "sort_title", "year", "premiered", "overview", "tagline",
    "runtime_seconds", "rating", "content_rating", "genres", "studios", "people", "provider_ids",
]  # fmt: skip


class MetadataEdit(Input):
    """Fields to set (``null`` clears one, ``title`` excepted); each one given is locked
    unless ``lock`` is false. ``locked_fields`` replaces the item's lock set (edited fields
    are added to it): ``[]`` unlocks everything, so the next scan's NFO values win again."""

    title: _LINE | None = None
    original_title: _LINE | None = None
    sort_title: _LINE | None = None
    year: Annotated[int, Field(ge=1800, le=2200)] | None = None
    premiered: date | None = None
    overview: _TEXT | None = None
    tagline: _LINE | None = None
    runtime_seconds: Annotated[int, Field(ge=0, le=100 * 24 * 3600)] | None = None
    rating: Annotated[float, Field(ge=0, le=10)] | None = None
    content_rating: Annotated[str, text(max_length=50, pattern=r"^[^\x00]*$")] | None = None
    genres: Annotated[list[_NAME], Field(max_length=50)] | None = None
    studios: Annotated[list[_NAME], Field(max_length=50)] | None = None
    locked_fields: Annotated[list[_Lockable], Field(max_length=20)] | None = None
    lock: bool = True
    """Lock the fields this edit sets (default); false writes them unlocked."""

    @field_validator("title")
    @classmethod
    def _title_stays(cls, value: str | None) -> str | None:
        # only an explicit null reaches here (defaults are not validated)
        if value is None:
            raise ValueError("an item keeps a title: it cannot be cleared")
        return value


class MetadataOut(Output):
    id: int
    kind: str
    title: str
    sort_title: str
    original_title: str | None
    year: int | None
    premiered: str | None
    overview: str | None
    tagline: str | None
    runtime_seconds: int | None
    rating: float | None
    content_rating: str | None
    genres: list[str]
    studios: list[str]
    locked_fields: list[str]
    field_sources: dict[str, str]


_FIELDS = (
    "title", "original_title", "sort_title", "year", "premiered", "overview", "tagline",
    "runtime_seconds", "rating", "content_rating", "genres", "studios",
)  # fmt: skip


def edit_values(body: MetadataEdit) -> dict[str, Any]:
    """The fields the client sent (an explicit ``null`` included), as column values.

    >>> edit_values(MetadataEdit.model_validate({"overview": None, "genres": None, "year": 1999}))
    {'year': 1999, 'overview': None, 'genres': []}
    """
    out: dict[str, Any] = {}
    for name in _FIELDS:
        if name in body.model_fields_set:
            value = getattr(body, name)
            out[name] = [] if value is None and name in ("genres", "studios") else value
    return out


def add_edit_routes(
    router: Router,
    database: Callable[[], Any],
    reindex: Callable[[int], Awaitable[None]],
) -> None:
    """Add the route; ``reindex(item_id)`` refreshes the item's search document."""

    async def edit_metadata(request: Request, *, params: ItemPath, body: MetadataEdit) -> Response:
        """Edit an item's metadata and set or clear its locked fields (administrators)."""
        async with database().transaction() as conn:
            row = await edit_item(
                conn, params.item_id, edit_values(body), body.locked_fields, body.lock
            )
        if row is None:
            raise item_not_found(params.item_id)
        await reindex(params.item_id)
        return json_response(row)

    router.add(
        "PATCH",
        "/api/v1/items/{item_id}/metadata",
        edit_metadata,
        tags=("browse",),
        params=ItemPath,
        body=MetadataEdit,
        response=MetadataOut,
        admin=True,
        problems=(422,),
    )
