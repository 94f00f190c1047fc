"""What every search backend speaks: documents in, scored hits out.

>>> doc = SearchDocument("m1", "movie", "The Matrix", year=1999, people=("Keanu Reeves",))
>>> doc.people_text
'Keanu Reeves'
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """One searchable item. ``id`` is unique across kinds (content ids are UUIDs)."""

    id: str
    kind: str  # "movie", "series", "episode", "person"...
    title: str
    original_title: str | None = None
    year: int | None = None
    overview: str | None = None
    people: tuple[str, ...] = ()

    @property
    def people_text(self) -> str:
        return "\n".join(self.people)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A match; ``score`` orders hits of one answer (not comparable across backends)."""

    id: str
    kind: str
    title: str
    year: int | None
    score: float


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: tuple[SearchHit, ...]
    backend: str  # which backend answered: "postgres" or "typesense"


@runtime_checkable
class SearchBackend(Protocol):
    """A full-text index. Writes are upserts; deleting an unknown id is not an error."""

    name: str

    async def index(self, docs: Sequence[SearchDocument]) -> None: ...

    async def delete(self, ids: Sequence[str]) -> None: ...

    async def search(
        self,
        query: str,
        *,
        kinds: Sequence[str] | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[SearchHit]: ...

    async def replace_all(self, batches: AsyncIterator[Sequence[SearchDocument]]) -> int:
        """The reindex-all hook: make the index hold exactly these documents."""
        ...

    async def ping(self) -> None:
        """Raise unless the backend can answer now (health checks and recovery probes)."""
        ...

    async def close(self) -> None: ...
