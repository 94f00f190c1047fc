"""The search query string, declared: ``GET /api/v1/search?q=...&kind=...&limit=...&offset=...``.

The route decodes the query into :func:`search_query_model`'s model before the
handler runs (bad input: ``422 validation_failed`` with its ``field``), and the
OpenAPI document shows the same model, the kinds a caller may ask for included.

>>> Query = search_query_model(SEARCHABLE_KINDS)
>>> p = Query.model_validate({"q": " matrix ", "kind": ["movie,series"]}).params()
>>> p.query, p.kinds, p.limit, p.offset
('matrix', ('movie', 'series'), 20, 0)
>>> Query.model_validate({"q": "x", "limit": "0"})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for SearchQuery
...
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, create_model, field_validator

from revenge.http import Input, text

SEARCHABLE_KINDS: tuple[str, ...] = ("movie", "series", "episode", "person")
"""What content modules index today; ``add_search_route(..., kinds=...)`` widens it."""

MAX_QUERY_LENGTH = 200
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 10_000
"""Deep pages cost a ranking pass over ``limit + offset`` rows; nobody pages that far."""

_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f"
_QUERY_TEXT = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
"""Not blank; no control character but tab and line breaks (PostgreSQL text refuses NUL)."""


@dataclass(frozen=True, slots=True)
class SearchParams:
    query: str
    kinds: tuple[str, ...] | None
    """``None``: every kind."""
    limit: int = DEFAULT_LIMIT
    offset: int = 0


class SearchQuery(Input):
    """Search movies, series, episodes and people (``kind`` repeated, or comma-separated)."""

    q: Annotated[str, text(max_length=MAX_QUERY_LENGTH, pattern=_QUERY_TEXT)]
    kind: list[Annotated[str, text(max_length=40)]] = []
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0

    @field_validator("kind", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        # ?kind=movie,series is read as ?kind=movie&kind=series (both forms are in use).
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [part.strip() for v in value for part in v.split(",")]
        return value

    def params(self) -> SearchParams:
        kinds = tuple(dict.fromkeys(self.kind)) or None
        return SearchParams(self.q.strip(), kinds, self.limit, self.offset)


def search_query_model(kinds: Iterable[str]) -> type[SearchQuery]:
    """:class:`SearchQuery` with ``kind`` limited to ``kinds`` (an enumeration in OpenAPI)."""
    allowed: Any = Literal[tuple(sorted(kinds))]  # built at run time
    model: type[SearchQuery] = create_model(
        "SearchQuery", __base__=SearchQuery, __doc__=SearchQuery.__doc__, kind=(list[allowed], [])
    )
    return model
