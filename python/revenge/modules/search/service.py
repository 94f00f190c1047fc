"""The search use case: checked parameters in, the index's answer out.

The index (repository) is the infra ``SearchService``: it chooses Typesense or
PostgreSQL and falls back by itself; an unreachable database surfaces as
``ServiceUnavailable`` (503 with Retry-After), never as an empty result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from revenge.infra.search import SearchResult
from revenge.modules.search.query import SearchParams


class SearchIndex(Protocol):
    """What the API needs of :class:`revenge.infra.search.SearchService`."""

    async def search(
        self,
        query: str,
        *,
        kinds: Sequence[str] | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> SearchResult: ...


class MediaSearch:
    """Searches the catalogue for the API; ``kinds`` are the kinds a caller may filter on."""

    def __init__(self, index: SearchIndex, kinds: frozenset[str]) -> None:
        self.index = index
        self.kinds = kinds

    async def search(self, params: SearchParams) -> SearchResult:
        return await self.index.search(
            params.query, kinds=params.kinds, limit=params.limit, offset=params.offset
        )
