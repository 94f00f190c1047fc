"""What a remote metadata provider is: the :class:`MetadataProvider` protocol and its records.

A provider is asked about one item at a time with what the local sources know of it
(:class:`Lookup`: kind, title, year, the ids an NFO or the file name gave, the season and
episode numbers) and answers with what it knows (:class:`RemoteMetadata`: field values and
image URLs), or ``None`` when it finds no match. It matches by ids first (an NFO's
``tmdb``/``imdb``/``tvdb`` ids name the item exactly), then by title and year.

Two failures, two outcomes: :class:`ProviderUnavailable` (unreachable, timed out, rate
limited past its patience, a 5xx) is worth retrying later, so the metadata job fails and
the queue retries it; :class:`ProviderAnswerError` (malformed JSON, a huge body, a wrong
content type) would fail the same way again, so it is recorded on the item and the job
goes on.

>>> Lookup("movie", "Alien", 1979, {"imdb": "tt0078748"}).ids["imdb"]
'tt0078748'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "FIELDS",
    "ImageKind",
    "ItemKind",
    "Lookup",
    "MetadataProvider",
    "ProviderAnswerError",
    "ProviderError",
    "ProviderUnavailable",
    "RemoteImage",
    "RemoteMetadata",
]

ItemKind = Literal["movie", "series", "season", "episode"]
ImageKind = Literal["poster", "fanart", "banner", "thumb", "logo", "landscape"]

FIELDS: frozenset[str] = frozenset(
    {
        "original_title", "year", "premiered", "overview", "tagline", "runtime_seconds",
        "rating", "content_rating", "genres", "studios", "people", "provider_ids",
    }
)  # fmt: skip
"""Item fields a provider may fill (``items`` columns). ``title`` is never empty (the file
name always gives one), so a provider never replaces it."""


class ProviderError(Exception):
    """A provider could not answer."""


class ProviderUnavailable(ProviderError):
    """Unreachable, timed out, rate limited or failing (5xx): try again later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderAnswerError(ProviderError):
    """The answer cannot be used (malformed, too large, wrong type): asking again won't help."""


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the local sources know of an item; ``ids`` are provider ids (``tmdb``, ``imdb``...)."""

    kind: ItemKind
    title: str
    year: int | None = None
    ids: Mapping[str, str] = field(default_factory=dict)
    language: str = "en-US"
    season_number: int | None = None
    episode_number: int | None = None
    series_ids: Mapping[str, str] = field(default_factory=dict)
    """For a season or an episode: the ids of its series (a provider matches the show first)."""
    series_title: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteImage:
    kind: ImageKind
    url: str


@dataclass(frozen=True, slots=True)
class RemoteMetadata:
    """A provider's answer: ``values`` keyed by item field (only names in :data:`FIELDS`
    are used), ``ids`` it knows the item by, ``images`` by kind (best first)."""

    provider: str
    values: Mapping[str, Any]
    ids: Mapping[str, str] = field(default_factory=dict)
    images: tuple[RemoteImage, ...] = ()


@runtime_checkable
class MetadataProvider(Protocol):
    """A remote metadata source. ``name`` is its configuration name (``metadata.providers``).

    ``lookup`` never raises anything but :class:`ProviderError`; ``check`` raises when the
    provider cannot be reached (``/health`` shows it degraded); ``aclose`` closes its
    connections (the cold service is offloaded when idle).
    """

    name: str

    def kinds(self) -> frozenset[str]:
        """Item kinds it can answer about."""
        ...

    async def lookup(self, item: Lookup) -> RemoteMetadata | None: ...

    async def check(self) -> None: ...

    async def aclose(self) -> None: ...
