"""What handlers return: a whole body (:class:`Response`), a file part or a stream.

The server faces send a :class:`Response` as is (the hot path); a
:class:`FileResponse` goes out by the server's own file path (RSGI) or in chunks
read off the loop (ASGI); a :class:`StreamResponse` as its iterator yields.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
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


@dataclass(slots=True)
class FileResponse(Response):
    """``length`` bytes of the file at ``path`` from ``start``, as they were when it was stat'ed.

    ``headers`` carry the ``content-length`` of that part: the faces never send more,
    and when the file has shrunk since, the connection is cut short rather than the
    message ended early, so a client never takes a truncated body for a whole one.
    Build one with :func:`revenge.http.files.file_response`, which answers Range and
    the conditional headers.
    """

    path: str = ""
    start: int = 0
    length: int = 0


@dataclass(slots=True)
class StreamResponse(Response):
    """A body produced as ``stream`` yields it (chunked unless a content-length is given).

    With a ``content-length`` header the faces send exactly that many bytes: a stream
    that runs short cuts the connection, one that runs long is cut at the length.
    The stream is closed (``aclose``) when the client goes. Granian's RSGI stream
    buffers without bound (its channel never blocks the sender), so a producer
    faster than the network must pace itself; files should be :class:`FileResponse`.
    """

    stream: AsyncIterator[bytes] | None = None


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
