"""The one response type handlers return; the server adapters send it as is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

JSON_CONTENT_TYPE = "application/json"


@dataclass(slots=True)
class Response:
    """Status, headers (lower-case names) and the whole body."""

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def set_cookie(
        self,
        name: str,
        value: str,
        *,
        max_age: int | None = None,
        path: str = "/",
        secure: bool = False,
        http_only: bool = True,
        same_site: str = "Lax",
    ) -> None:
        parts = [f"{name}={value}", f"Path={path}", f"SameSite={same_site}"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if http_only:
            parts.append("HttpOnly")
        if secure:
            parts.append("Secure")
        self.headers.append(("set-cookie", "; ".join(parts)))


_JSON_HEADERS = (("content-type", JSON_CONTENT_TYPE),)


def json_response(
    data: Any, status: int = 200, *, headers: Sequence[tuple[str, str]] | None = None
) -> Response:
    """Serialise ``data`` with orjson (dataclasses, datetimes and UUIDs included).

    >>> json_response({"ok": True}).body
    b'{"ok":true}'
    """
    return Response(
        status,
        orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        list(headers if headers is not None else _JSON_HEADERS),
    )


def empty_response(status: int = 204, *, headers: Sequence[tuple[str, str]] = ()) -> Response:
    return Response(status, b"", list(headers))
