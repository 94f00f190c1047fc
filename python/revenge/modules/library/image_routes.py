"""HTTP face of artwork: ``GET /api/v1/images/{image_id}?w=`` (any signed-in user).

The id names an ``images`` row, never a path: the answer is the nearest processed variant
(the narrowest at least ``w`` wide, else the widest) from the data folder, sent by the
HTTP layer's file response (strong ETag, 304 on ``If-None-Match``, Range). Variants are
content-addressed and never rewritten: a URL with ``v=`` (the first 16 hex digits of the
content hash, as ``images.ImageRef.url`` gives it) is answered ``immutable``, a bare one
``no-cache`` (the image behind an id may change; revalidating costs a 304); ``private``
because it is behind auth.
An image of a library the caller may not see is the same 404 as an id that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import Field

from revenge.http import Input, Problem, Request, Response, Router, text
from revenge.http.files import file_response
from revenge.http.request import Principal
from revenge.infra.db import Database
from revenge.modules.library.images import CONTENT_TYPE, image_version_sql, pick_variant
from revenge.modules.library.visibility import item_visible_sql, viewer_params

_TAGS = ("images",)
_MAX_ID = 2**63 - 1
IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"


class ImageQuery(Input):
    """``w``: the width the client will show (the nearest variant up is sent);
    ``v``: the content version browse put in the URL (a cache key only)."""

    w: Annotated[int, Field(ge=1, le=10000)] | None = None
    v: Annotated[str, text(max_length=64, pattern=r"^[0-9a-f]*$")] | None = None


def image_not_found(text_id: str) -> Problem:
    return Problem(404, "image_not_found", "Image not found", f"no image {text_id[:40]}")


def parse_image_id(text_id: str) -> int:
    """The path's image id, or a 404 (an id that cannot exist names nothing).

    >>> parse_image_id("12")
    12
    """
    if not (text_id.isascii() and text_id.isdigit()) or len(text_id) > 19:
        raise image_not_found(text_id)
    value = int(text_id)
    if value > _MAX_ID:
        raise image_not_found(text_id)
    return value


# Who sees what is visibility.py's rule; one query answers it, status and variants.
_IMAGE_FOR = f"""
SELECT g.status, v.width, v.file, {image_version_sql("g")}
  FROM images g
  JOIN items i ON i.id = g.item_id
  LEFT JOIN image_variants v ON v.image_id = g.id
 WHERE g.id = %(id)s AND {item_visible_sql("i")}
"""  # noqa: S608


async def visible_image(
    db: Database, principal: Principal, image_id: int
) -> tuple[str, dict[int, str], str | None] | None:
    """``(status, {width: file}, version)`` of an image the caller may see, else None."""
    rows = await db.fetch_all(
        _IMAGE_FOR,
        {"id": image_id, **viewer_params(principal.user_id, admin=principal.is_admin)},
    )
    if not rows:
        return None
    variants = {int(r[1]): str(r[2]) for r in rows if r[1] is not None}
    return str(rows[0][0]), variants, rows[0][3]


def add_image_routes(
    router: Router, db: Callable[[], Database], images_dir: Callable[[], Path]
) -> None:
    async def show_image(request: Request, *, query: ImageQuery) -> Response:
        """An image's variant nearest ``w`` (WebP; strong ETag, immutable, 304 on If-None-Match)."""
        principal = request.principal_or_raise
        raw_id = request.path_params["image_id"]
        found = await visible_image(db(), principal, parse_image_id(raw_id))
        if found is None:
            raise image_not_found(raw_id)
        status, variants, version = found
        if not variants:
            if status == "failed":
                raise image_not_found(raw_id)
            raise Problem(
                404, "image_not_ready", "Image not ready",
                "the image is still being processed", headers=[("retry-after", "5")],
            )  # fmt: skip
        chosen = variants[pick_variant(list(variants), query.w)]
        # immutable only for a URL naming this content (?v=): under a bare id the image may
        # change (a new poster.jpg), so the client revalidates (a 304 by the ETag)
        caching = IMMUTABLE if query.v is not None and query.v == version else REVALIDATE
        return await file_response(
            request,
            images_dir() / chosen,
            content_type=CONTENT_TYPE,
            headers=[("cache-control", caching)],
        )

    router.add(
        "GET",
        "/api/v1/images/{image_id}",
        show_image,
        tags=_TAGS,
        query=ImageQuery,
        cache_control="",  # per answer: immutable for a versioned URL
        problems=(404, 412, 416),  # not found/visible or not ready; If-Match and Range
    )
