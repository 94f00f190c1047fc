"""File responses: validators, conditional requests and Range (RFC 9110 sections 8.8, 13, 14).

``await file_response(request, path)`` answers a GET or HEAD for a file with 200,
206 (one range), 304, 412 or 416, always with ``Accept-Ranges``, a strong ``ETag``
and ``Last-Modified``; the body itself is sent by the server face (see
:class:`~revenge.http.response.FileResponse`).
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime

from revenge.http.errors import Problem
from revenge.http.ranges import UNSATISFIABLE, ByteRange, parse_range
from revenge.http.request import Request
from revenge.http.response import FileResponse, Response

_ENTITY_TAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class Validators:
    """What identifies one version of a file: a strong ETag and its modification second."""

    etag: str
    modified: int
    """Seconds since the epoch, the precision of ``Last-Modified``."""

    @classmethod
    def of(cls, info: os.stat_result) -> Validators:
        """From ``os.stat``: any write changes size or mtime, a replacement the inode too.

        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as f:
        ...     _ = f.write(b"0123456789"); f.flush(); os.utime(f.name, (0, 1700000000))
        ...     v = Validators.of(os.stat(f.name))
        >>> v.etag.endswith('-a-17979cfe362a0000"'), v.last_modified
        (True, 'Tue, 14 Nov 2023 22:13:20 GMT')
        """
        mtime_ns = info.st_mtime_ns
        return cls(f'"{info.st_ino:x}-{info.st_size:x}-{mtime_ns:x}"', mtime_ns // 1_000_000_000)

    @property
    def last_modified(self) -> str:
        return formatdate(self.modified, usegmt=True)


def entity_tags(header: str) -> list[tuple[bool, str]] | None:
    """``(weak, opaque-tag)`` of each entity tag in an ``If-Match``/``If-None-Match`` list.

    ``None`` when the list is malformed (the header is then ignored).

    >>> entity_tags('"a", W/"b"')
    [(False, '"a"'), (True, '"b"')]
    """
    tags: list[tuple[bool, str]] = []
    position = 0
    header = header.strip()
    while position < len(header):
        found = _ENTITY_TAG.match(header, position)
        if found is None:
            return None
        tags.append((found.group(1) is not None, found.group(2)))
        position = found.end()
    return tags


def _http_date(value: str) -> int | None:
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _any_matches(header: str, etag: str, *, strong: bool) -> bool | None:
    """Whether ``etag`` is in the list (``*`` matches any); ``None`` for a malformed list."""
    if header.strip() == "*":
        return True
    tags = entity_tags(header)
    if tags is None:
        return None
    return any(tag == etag and not (strong and weak) for weak, tag in tags)


def precondition(method: str, headers: Mapping[str, str], current: Validators) -> int | None:
    """412 or 304 when a precondition says so (RFC 9110 section 13.2.2), else ``None``.

    >>> v = Validators('"x"', 1700000000)
    >>> precondition("GET", {"if-none-match": 'W/"x"'}, v), precondition("GET", {"if-match": '"y"'}, v)
    (304, 412)
    """
    if_match = headers.get("if-match")
    if if_match is not None:
        if _any_matches(if_match, current.etag, strong=True) is False:
            return 412
    else:
        since = headers.get("if-unmodified-since")
        when = _http_date(since) if since is not None else None
        if when is not None and current.modified > when:
            return 412
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if _any_matches(if_none_match, current.etag, strong=False):
            return 304 if method in ("GET", "HEAD") else 412
    elif method in ("GET", "HEAD"):
        since = headers.get("if-modified-since")
        when = _http_date(since) if since is not None else None
        if when is not None and current.modified <= when:
            return 304
    return None


def if_range_holds(value: str, current: Validators) -> bool:
    """Whether ``If-Range`` lets the Range apply: a strong match of the ETag or the exact date.

    >>> v = Validators('"x"', 1700000000)
    >>> if_range_holds('"x"', v), if_range_holds('W/"x"', v), if_range_holds(v.last_modified, v)
    (True, False, True)
    """
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == current.etag
    return _http_date(value) == current.modified


async def file_response(
    request: Request,
    path: str | os.PathLike[str],
    *,
    content_type: str = "application/octet-stream",
    headers: Sequence[tuple[str, str]] = (),
) -> Response:
    """Answer ``request`` with the file at ``path``: a 404 problem when it is not a file.

    ``headers`` (cache-control, content-disposition) go on every answer but a 416.
    """
    name = os.fspath(path)
    try:
        info = await asyncio.to_thread(os.stat, name)  # a network mount may take its time
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        info = None
    if info is None or not stat.S_ISREG(info.st_mode):
        raise Problem(404, "file_not_found", "File not found", f"no file at {request.path}")
    current = Validators.of(info)
    common = [
        ("accept-ranges", "bytes"),
        ("etag", current.etag),
        ("last-modified", current.last_modified),
        *headers,
    ]
    verdict = precondition(request.method, request.headers, current)
    if verdict == 304:
        return Response(304, b"", common)
    if verdict == 412:
        raise Problem(412, "precondition_failed", "Precondition failed", headers=common)
    size = info.st_size
    part: ByteRange | None = None
    range_header = request.headers.get("range")
    # Range is defined for GET only (RFC 9110 section 14.2): HEAD answers as a plain GET would.
    if range_header is not None and request.method == "GET":
        if_range = request.headers.get("if-range")
        if if_range is None or if_range_holds(if_range, current):
            chosen = parse_range(range_header, size)
            if chosen is UNSATISFIABLE:
                raise Problem(
                    416,
                    "range_not_satisfiable",
                    "Range not satisfiable",
                    f"the file has {size} bytes",
                    headers=[("content-range", f"bytes */{size}"), *common[:3]],
                )
            if isinstance(chosen, ByteRange):
                part = chosen
    content = ("content-type", content_type)
    if part is None:
        return FileResponse(
            200, b"", [content, ("content-length", str(size)), *common], name, 0, size
        )
    return FileResponse(
        206,
        b"",
        [
            content,
            ("content-length", str(part.length)),
            ("content-range", part.content_range(size)),
            *common,
        ],
        name,
        part.start,
        part.length,
    )
