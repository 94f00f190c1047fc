"""The ``Range`` header (RFC 9110 section 14): parsed against a representation's length.

One range is served: of several, the first satisfiable one (a single-part 206 is a
valid answer to a multi-range request, and it spares multipart bodies).

>>> parse_range("bytes=0-99", 1000)
ByteRange(start=0, stop=100)
>>> parse_range("bytes=-100", 1000), parse_range("bytes=900-", 1000)
(ByteRange(start=900, stop=1000), ByteRange(start=900, stop=1000))
>>> parse_range("bytes=5000-", 1000) is UNSATISFIABLE
True
>>> parse_range("bytes=9-1", 1000) is None  # reversed: invalid, so the header is ignored
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MAX_RANGES: Final = 64
"""More ranges than this in one header: ignored (a 200), not worked through."""

_MAX_DIGITS: Final = 30
"""A position with more significant digits is malformed: ``int()`` stays cheap (and within
Python's digit limit), and no file comes near 10**30 bytes."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` to ``stop - 1`` of the representation."""

    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` value of this part of ``size`` bytes.

        >>> ByteRange(0, 100).content_range(1000)
        'bytes 0-99/1000'
        """
        return f"bytes {self.start}-{self.stop - 1}/{size}"


class _Unsatisfiable:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSATISFIABLE"


UNSATISFIABLE: Final = _Unsatisfiable()
"""A well-formed byte-range set none of whose ranges overlaps the representation: 416."""


def parse_range(header: str, size: int) -> ByteRange | _Unsatisfiable | None:
    """The range to serve of ``size`` bytes, ``UNSATISFIABLE`` (416), or ``None`` (send all).

    ``None`` stands for every header a server ignores: another unit, a malformed or
    reversed range, too many ranges, and any range of an empty representation.
    """
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or size <= 0:
        return None
    parts = spec.split(",")
    if len(parts) > MAX_RANGES:
        return None
    chosen: ByteRange | None = None
    seen = False
    for part in parts:
        part = part.strip(" \t")
        if not part:
            continue  # the list syntax allows empty elements
        seen = True
        candidate = _one(part, size)
        if candidate is None:
            return None  # one invalid range makes the whole set invalid
        if chosen is None and candidate is not UNSATISFIABLE:
            assert isinstance(candidate, ByteRange)
            chosen = candidate
    if not seen:
        return None
    return chosen if chosen is not None else UNSATISFIABLE


def _one(spec: str, size: int) -> ByteRange | _Unsatisfiable | None:
    first, dash, last = spec.partition("-")
    if not dash:
        return None
    if not first:  # suffix-range: the last N bytes
        suffix = _position(last)
        if suffix is None:
            return None
        if suffix == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - suffix), size)
    start = _position(first)
    if start is None:
        return None
    if last:
        end = _position(last)
        if end is None or end < start:
            return None
        stop = min(end + 1, size)
    else:
        stop = size
    if start >= size:
        return UNSATISFIABLE
    return ByteRange(start, stop)


def _position(text: str) -> int | None:
    # isdigit() alone accepts other scripts' digits ("\u0663"); RFC 9110 means ASCII.
    if not text or not text.isascii() or not text.isdigit():
        return None
    significant = text.lstrip("0")
    if len(significant) > _MAX_DIGITS:
        return None
    return int(significant or "0")
