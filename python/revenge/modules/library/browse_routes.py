"""HTTP face of browsing: movies, series, seasons, episodes, items, home rows, state, grants.

Every route needs a session or API key; what a caller may see is decided in one
place (:mod:`.visibility`), and an item or library they may not see is a 404. The
JSON shapes are the models below (also in the OpenAPI document and the module
README); handlers send the dicts :mod:`.browse` builds, with orjson, since 100
pydantic models per page would cost more than the query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from revenge.http import (
    Input,
    Output,
    Request,
    Response,
    Router,
    empty_response,
    json_response,
    text,
)
from revenge.modules.library.browse import Filters, items_body
from revenge.modules.library.browse_service import Browse
from revenge.modules.library.state import StateChange

__all__ = ["add_browse_routes"]

_ID = Annotated[int, Field(ge=1, le=2**63 - 1)]
_CURSOR = Annotated[str, text(max_length=2048, pattern=r"^[A-Za-z0-9_-]+$")]
_GENRE = Annotated[str, text(max_length=100)]
_YEAR = Annotated[int, Field(ge=1800, le=2200)]
_MAX_POSITION_MS = 100 * 24 * 3600 * 1000  # 100 days: nothing plays longer


# -- input --------------------------------------------------------------------------------


class ListQuery(Input):
    """A page of a list: keyset cursor, sort, filters."""

    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: _CURSOR | None = Field(None, description="next_cursor of the previous page")
    sort: Literal["title", "year", "date_added", "rating", "runtime"] = "title"
    order: Literal["asc", "desc"] | None = Field(
        None, description="default: asc for title, desc for the others; NULLs always last"
    )
    library: _ID | None = None
    genre: Annotated[list[_GENRE], Field(max_length=10)] = Field(
        default_factory=list, description="repeat for several: items having all of them"
    )
    year_min: _YEAR | None = None
    year_max: _YEAR | None = None
    watched: bool | None = None
    favourite: bool | None = None


class MoviesQuery(ListQuery):
    resolution: Literal["sd", "720p", "1080p", "4k"] | None = Field(
        None, description="movies with a playable file of that class (4k: 3200+ wide or 1800+ high)"
    )


class RowQuery(Input):
    limit: Annotated[int, Field(ge=1, le=100)] = 20


class NextUpQuery(RowQuery):
    series: _ID | None = Field(None, description="only this series")


class RecentQuery(RowQuery):
    kind: Literal["movie", "series", "episode"] = "movie"
    library: _ID | None = None


class ItemPath(Input):
    item_id: _ID


class SeriesPath(Input):
    series_id: _ID


class SeasonPath(Input):
    season_id: _ID


class LibraryPath(Input):
    library_id: _ID


class GrantPath(Input):
    library_id: _ID
    user_id: _ID


class StateBody(Input):
    """What to change (at least one field); one left out stays as it is."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": kind}}}
                for name, kind in (
                    ("position_ms", "integer"), ("played", "boolean"), ("favourite", "boolean"),
                )
            ]
        },
    )  # fmt: skip

    position_ms: Annotated[int, Field(ge=0, le=_MAX_POSITION_MS)] | None = None
    played: bool | None = None
    favourite: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> StateBody:
        if self.position_ms is None and self.played is None and self.favourite is None:
            raise ValueError("give position_ms, played or favourite")
        return self


# -- output ---------------------------------------------------------------------------------


class PosterOut(Output):
    id: int
    blurhash: str | None
    url: str


class UserStateOut(Output):
    position_ms: int
    played: bool
    favourite: bool
    play_count: int
    last_played_at: datetime | None


class ItemOut(Output):
    """An item as lists show it (movie, series, season, episode or extra)."""

    id: int
    kind: Literal["movie", "series", "season", "episode", "extra"]
    library_id: int
    parent_id: int | None
    series_id: int | None
    series_title: str | None
    title: str
    original_title: str | None
    year: int | None
    premiered: date | None
    season_number: int | None
    episode_number: int | None
    episode_number_end: int | None
    rating: float | None
    runtime_seconds: int | None
    content_rating: str | None
    genres: list[str]
    date_added: datetime
    available: bool
    """False while every file of it is missing (kept for the grace period)."""
    poster: PosterOut | None
    user: UserStateOut


class SeasonOut(ItemOut):
    episode_count: int
    played_count: int


class ItemPage(Output):
    items: list[ItemOut]
    next_cursor: str | None
    total: int | None
    """On the first page only (no cursor); null on later pages."""
    total_capped: bool
    """True when a filtered total stopped counting at 10,000."""


class ItemList(Output):
    items: list[ItemOut]


class SeasonList(Output):
    items: list[SeasonOut]


class StreamOut(Output):
    index: int
    kind: str
    codec: str | None
    profile: str | None
    level: int | None
    width: int | None
    height: int | None
    bit_depth: int | None
    hdr: str | None
    frame_rate: float | None
    channels: int | None
    channel_layout: str | None
    sample_rate: int | None
    bitrate: int | None
    language: str | None
    title: str | None
    default: bool
    forced: bool
    hearing_impaired: bool
    external: bool


class ChapterOut(Output):
    index: int
    start: float
    end: float | None
    title: str | None


class FileOut(Output):
    id: int
    name: str
    path: str | None
    """The file's path on the server: administrators only (null for others)."""
    size: int
    container: str | None
    duration: float | None
    bitrate: int | None
    width: int | None
    height: int | None
    video_codec: str | None
    hdr: str | None
    version_label: str | None
    part: int | None
    stereo: str | None
    probe_status: Literal["pending", "ok", "failed"]
    probe_reason: str | None
    available: bool
    date_added: datetime
    streams: list[StreamOut]
    chapters: list[ChapterOut]


class ImageOut(Output):
    id: int
    kind: str
    source: str
    width: int | None
    height: int | None
    blurhash: str | None
    status: str
    url: str


class ItemDetailOut(ItemOut):
    """One item with everything about it; ``seasons`` (series) and ``episodes`` (season)
    are empty for the other kinds."""

    overview: str | None
    tagline: str | None
    studios: list[str]
    people: list[dict[str, Any]]
    """From NFOs: ``{"name", "role", "type": "actor|director|writer", "order"}``."""
    provider_ids: dict[str, Any]
    sort_title: str
    extra_type: str | None
    absolute_number: int | None
    updated_at: datetime
    files: list[FileOut]
    images: list[ImageOut]
    seasons: list[SeasonOut]
    episodes: list[ItemOut]
    extras: list[ItemOut]


class StateOut(Output):
    item_id: int
    position_ms: int
    played: bool
    play_count: int
    favourite: bool
    last_played_at: datetime | None
    updated_at: datetime


class GrantOut(Output):
    user_id: int
    username: str
    granted_at: datetime


class GrantList(Output):
    items: list[GrantOut]


# -- routes -----------------------------------------------------------------------------------


def _filters(query: ListQuery) -> Filters:
    return Filters(
        genres=tuple(dict.fromkeys(query.genre)),
        year_min=query.year_min,
        year_max=query.year_max,
        watched=query.watched,
        favourite=query.favourite,
        resolution=getattr(query, "resolution", None),
    )


def _items(items: Sequence[str], **fields: Any) -> Response:
    return Response(200, items_body(items, **fields), [("content-type", "application/json")])


def add_browse_routes(router: Router, service: Callable[[], Browse]) -> None:
    """Add the browse routes; ``service()`` gives the :class:`Browse` once started."""

    def who(request: Request) -> tuple[int, bool]:
        principal = request.principal_or_raise
        return principal.user_id, principal.is_admin

    async def page(request: Request, kind: str, query: ListQuery) -> Response:
        found = await service().page(
            *who(request), kind=kind, library=query.library, sort=query.sort,
            order=query.order, filters=_filters(query), cursor=query.cursor, limit=query.limit,
        )  # fmt: skip
        return _items(
            found.items,
            next_cursor=found.next_cursor,
            total=found.total,
            total_capped=found.total_capped,
        )

    async def movies(request: Request, *, query: MoviesQuery) -> Response:
        """Movies the caller may see, a page at a time (keyset cursor), sorted and filtered."""
        return await page(request, "movie", query)

    async def series(request: Request, *, query: ListQuery) -> Response:
        """Series the caller may see, a page at a time (as movies; no resolution filter)."""
        return await page(request, "series", query)

    async def item(request: Request, *, params: ItemPath) -> Response:
        """One item: files, streams, chapters, images, people, the caller's state, children."""
        return json_response(await service().item(*who(request), params.item_id))

    async def seasons(request: Request, *, params: SeriesPath) -> Response:
        """A series' seasons in order, with episode and played counts."""
        return _items(await service().seasons(*who(request), params.series_id))

    async def episodes(request: Request, *, params: SeasonPath) -> Response:
        """A season's episodes in order."""
        return _items(await service().episodes(*who(request), params.season_id))

    async def next_up(request: Request, *, query: NextUpQuery) -> Response:
        """Per series the caller watched: the next unplayed episode, latest watched first."""
        return _items(await service().next_up(*who(request), query.limit, query.series))

    async def continue_watching(request: Request, *, query: RowQuery) -> Response:
        """Started, unfinished movies and episodes, most recently played first."""
        return _items(await service().continue_watching(*who(request), query.limit))

    async def recently_added(request: Request, *, query: RecentQuery) -> Response:
        """Newest movies, series or episodes first."""
        found = await service().recently_added(
            *who(request), query.kind, query.limit, query.library
        )
        return _items(found)

    async def put_state(request: Request, *, params: ItemPath, body: StateBody) -> Response:
        """Set the caller's position, played flag or favourite flag of an item."""
        change = StateChange(body.position_ms, body.played, body.favourite)
        return json_response(await service().set_state(*who(request), params.item_id, change))

    async def list_grants(request: Request, *, params: LibraryPath) -> Response:
        """Users granted a library (administrators see every library without a grant)."""
        found = await service().grants(params.library_id)
        return json_response(
            {
                "items": [
                    {"user_id": g.user_id, "username": g.username, "granted_at": g.granted_at}
                    for g in found
                ]
            }
        )

    async def put_grant(request: Request, *, params: GrantPath) -> Response:
        """Let a user see a library (idempotent)."""
        await service().grant(params.library_id, params.user_id)
        return empty_response(204)

    async def delete_grant(request: Request, *, params: GrantPath) -> Response:
        """Stop a user seeing a library (idempotent); their watch state is kept."""
        await service().revoke(params.library_id, params.user_id)
        return empty_response(204)

    tags = ("browse",)
    # 422 to schema-valid input: a cursor the server never gave out (cursor_invalid)
    router.add(
        "GET", "/api/v1/movies", movies, tags=tags, query=MoviesQuery, response=ItemPage,
        problems=(422,),
    )  # fmt: skip
    router.add(
        "GET", "/api/v1/series", series, tags=tags, query=ListQuery, response=ItemPage,
        problems=(422,),
    )  # fmt: skip
    router.add(
        "GET", "/api/v1/items/{item_id}", item, tags=tags, params=ItemPath, response=ItemDetailOut
    )
    router.add(
        "PUT",
        "/api/v1/items/{item_id}/state",
        put_state,
        tags=tags,
        params=ItemPath,
        body=StateBody,
        response=StateOut,
        problems=(422,),  # state_invalid: a position on a series or season
    )
    router.add(
        "GET",
        "/api/v1/series/{series_id}/seasons",
        seasons,
        tags=tags,
        params=SeriesPath,
        response=SeasonList,
    )
    router.add(
        "GET",
        "/api/v1/seasons/{season_id}/episodes",
        episodes,
        tags=tags,
        params=SeasonPath,
        response=ItemList,
    )
    router.add("GET", "/api/v1/next-up", next_up, tags=tags, query=NextUpQuery, response=ItemList)
    router.add(
        "GET",
        "/api/v1/continue-watching",
        continue_watching,
        tags=tags,
        query=RowQuery,
        response=ItemList,
    )
    router.add(
        "GET", "/api/v1/recently-added", recently_added, tags=tags, query=RecentQuery,
        response=ItemList,
    )  # fmt: skip
    grants = "/api/v1/libraries/{library_id}/grants"
    router.add(
        "GET", grants, list_grants, tags=("libraries",), params=LibraryPath, response=GrantList,
        admin=True,
    )  # fmt: skip
    for method, handler in (("PUT", put_grant), ("DELETE", delete_grant)):
        router.add(
            method, grants + "/{user_id}", handler, tags=("libraries",), params=GrantPath,
            status=204, admin=True,
        )  # fmt: skip
