"""The search query string, checked: every bad input is a problem with a stable code, never a 500.

Status codes: 400 when a value cannot be read at all (not an integer, given twice),
422 when it reads but is not allowed (missing or blank query, out of range, unknown kind).

>>> p = parse_search_params({"q": [" matrix "], "kind": ["movie,series"]}, SEARCHABLE_KINDS)
>>> p.query, p.kinds, p.limit, p.offset
('matrix', ('movie', 'series'), 20, 0)
>>> parse_search_params({"q": ["x"], "limit": ["0"]}, SEARCHABLE_KINDS)
Traceback (most recent call last):
...
revenge.http.errors.Problem: 422 limit_out_of_range: limit must be between 1 and 100
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from revenge.http import Problem

SEARCHABLE_KINDS: tuple[str, ...] = ("movie", "series", "episode", "person")
"""What content modules index today; ``install(..., kinds=...)`` widens it."""

MAX_QUERY_LENGTH = 200
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 10_000
"""Deep pages cost a ranking pass over ``limit + offset`` rows; nobody pages that far."""

_SCALARS = ("q", "limit", "offset")


@dataclass(frozen=True, slots=True)
class SearchParams:
    query: str
    kinds: tuple[str, ...] | None
    """``None``: every kind."""
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def _problem(status: int, code: str, detail: str, field: str, **extra: object) -> Problem:
    return Problem(
        status, code, "Invalid search parameters", detail, extra={"field": field, **extra}
    )


def _integer(values: Sequence[str] | None, name: str, default: int) -> int:
    if not values:
        return default
    text = values[0].strip()
    digits = text[1:] if text[:1] == "-" else text
    # isascii: str.isdigit also accepts other scripts' digits and superscripts.
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > 9:
        raise _problem(400, f"invalid_{name}", f"{name} must be an integer", name)
    return int(text)


def _query(values: Sequence[str] | None) -> str:
    raw = values[0] if values else ""
    if len(raw) > MAX_QUERY_LENGTH:
        raise _problem(
            422,
            "query_too_long",
            f"q may have at most {MAX_QUERY_LENGTH} characters",
            "q",
            max_length=MAX_QUERY_LENGTH,
        )
    query = raw.strip()
    if not query:
        raise _problem(422, "query_required", "q is required and must not be blank", "q")
    # PostgreSQL text cannot hold NUL; other control characters mean nothing to a search.
    if any(ord(c) < 32 and c not in "\t\n\r" for c in query):
        raise _problem(422, "query_invalid", "q must not contain control characters", "q")
    return query


def _kinds(values: Sequence[str] | None, allowed: Collection[str]) -> tuple[str, ...] | None:
    if not values:
        return None
    wanted: list[str] = []
    for value in values:
        for kind in value.split(","):
            kind = kind.strip()
            if kind not in allowed:
                raise _problem(
                    422,
                    "unknown_kind",
                    f"unknown kind {kind[:40]!r}",
                    "kind",
                    allowed=sorted(allowed),
                )
            if kind not in wanted:
                wanted.append(kind)
    return tuple(wanted)


def parse_search_params(
    query: Mapping[str, Sequence[str]], allowed_kinds: Collection[str]
) -> SearchParams:
    """``request.query`` -> :class:`SearchParams`, or raise a :class:`~revenge.http.Problem`."""
    for name in _SCALARS:
        if len(query.get(name, ())) > 1:
            raise _problem(400, "repeated_parameter", f"{name} given more than once", name)
    text = _query(query.get("q"))
    limit = _integer(query.get("limit"), "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise _problem(
            422, "limit_out_of_range", f"limit must be between 1 and {MAX_LIMIT}", "limit"
        )
    offset = _integer(query.get("offset"), "offset", 0)
    if not 0 <= offset <= MAX_OFFSET:
        raise _problem(
            422, "offset_out_of_range", f"offset must be between 0 and {MAX_OFFSET}", "offset"
        )
    return SearchParams(text, _kinds(query.get("kind"), allowed_kinds), limit, offset)
