"""HTTP face of playback: sessions (``/api/v1/playback/sessions``) and their media URLs.

The session routes need the caller's credential. The media routes (the direct file, HLS
playlists and segments, subtitles) are public to the router and guarded here: they take a
signed URL (``?exp=&sig=``, see :mod:`.signing`) or, without one, the usual credential; a
session of another user is a 404, a tampered or expired signature a 403, and nothing at all a
401, so no media URL works with a bare id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from revenge.http import (
    Authenticate,
    Input,
    Output,
    Problem,
    Request,
    Response,
    Router,
    empty_response,
    file_response,
    model_response,
    text,
)
from revenge.http.response import FileResponse
from revenge.modules.playback.sessions import (
    API,
    Playback,
    SegmentNotFound,
    Session,
    SessionNotFound,
    content_type,
    direct_content_type,
)

_TAGS = ("playback",)


def _whole(value: object) -> object:
    """JSON Schema's integer includes ``2.0``; the strict decoder's int does not: take it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_WHOLE = BeforeValidator(_whole)  # after the Field, so the schema keeps minimum/maximum
_MAX_ID = 2**63 - 1
_NAME = Annotated[str, text(max_length=64)]


class VideoCapability(Input):
    codec: _NAME
    profiles: Annotated[list[_NAME], Field(max_length=32)] = []
    max_level: Annotated[float, Field(ge=0, le=100)] | None = None
    max_bit_depth: Annotated[int, Field(ge=8, le=16), _WHOLE] = 8
    hdr: Annotated[list[Literal["hdr10", "hlg", "dolby-vision"]], Field(max_length=3)] = []


class AudioCapability(Input):
    codec: _NAME
    max_channels: Annotated[int, Field(ge=1, le=32), _WHOLE] = 2


class Capabilities(Input):
    """What the client plays: containers for direct play, codecs with profiles and levels, its
    largest picture and bit rate, the HLS segment format and the subtitle formats it renders."""

    containers: Annotated[list[_NAME], Field(max_length=32)] = []
    video: Annotated[list[VideoCapability], Field(max_length=32)] = []
    audio: Annotated[list[AudioCapability], Field(max_length=32)] = []
    max_width: Annotated[int, Field(ge=16, le=16384), _WHOLE] | None = None
    max_height: Annotated[int, Field(ge=16, le=16384), _WHOLE] | None = None
    max_bitrate: Annotated[int, Field(ge=64_000, le=10_000_000_000), _WHOLE] | None = None
    segment_format: Literal["fmp4", "ts"] = "fmp4"
    subtitles: Annotated[list[_NAME], Field(max_length=16)] = ["vtt"]


class NewSessionBody(Input):
    """Play an item: which file (version), what the client can play, where to start."""

    item_id: Annotated[int, Field(ge=1, le=_MAX_ID), _WHOLE]
    file_id: Annotated[int, Field(ge=1, le=_MAX_ID), _WHOLE] | None = None
    capabilities: Capabilities
    start_position_ms: Annotated[int, Field(ge=0, le=1_000_000_000), _WHOLE] | None = None
    """Where to start; left out: where the user stopped (their ``resume`` preference), else 0."""
    audio_stream: Annotated[int, Field(ge=0, le=100_000), _WHOLE] | None = None
    subtitle_stream: Annotated[int, Field(ge=0, le=100_000), _WHOLE] | None = None
    subtitle_mode: Literal["off", "forced", "always"] | None = None
    burn_in_image_subtitles: bool = False
    max_bitrate: Annotated[int, Field(ge=64_000, le=10_000_000_000), _WHOLE] | None = None
    audio_languages: Annotated[list[_NAME], Field(max_length=16)] | None = None
    subtitle_languages: Annotated[list[_NAME], Field(max_length=16)] | None = None
    """Languages, mode and bit-rate cap left out are the user's saved preferences."""


class SessionPath(Input):
    session_id: _NAME


class VariantPath(Input):
    session_id: _NAME
    variant: _NAME
    name: _NAME


class SignedQuery(Input):
    """A signed URL's proof; without it the request needs a credential."""

    exp: Annotated[str, text(max_length=20, pattern=r"^[0-9]+$")] | None = None
    sig: Annotated[str, text(max_length=64)] | None = None


class ProgressBody(Input):
    position_ms: Annotated[int, Field(ge=0, le=1_000_000_000), _WHOLE]
    ended: bool = False


class VideoOut(Output):
    stream: int
    action: Literal["copy", "transcode"]
    codec: str
    width: int
    height: int
    bit_rate: int | None
    profile: str | None


class AudioOut(Output):
    stream: int
    action: Literal["copy", "transcode"]
    codec: str
    channels: int
    bit_rate: int | None


class SubtitleOut(Output):
    stream: int
    delivery: Literal["embedded", "webvtt", "burn_in"]
    codec: str
    language: str | None
    forced: bool
    selected: bool
    url: str | None  # the WebVTT file (signed), for webvtt deliveries


class VariantOut(Output):
    name: str
    width: int | None
    height: int | None
    bandwidth: int
    codecs: str


class TranscodeOut(Output):
    variant: str
    running: bool
    paused: bool
    start_segment: int
    next_segment: int


class UrlsOut(Output):
    direct: str | None
    master: str | None


class SessionOut(Output):
    id: str
    item_id: int
    file_id: int
    method: Literal["direct", "remux", "transcode"]
    reasons: list[str]
    container: str
    duration: float | None
    start_position_ms: int
    expires_at: datetime
    video: VideoOut | None
    audio: AudioOut | None
    subtitles: list[SubtitleOut]
    variants: list[VariantOut]
    urls: UrlsOut
    transcode: TranscodeOut | None
    bandwidth_bps: int
    recommended_variant: str | None


class ProgressOut(Output):
    position_ms: int
    played: bool
    bandwidth_bps: int
    recommended_variant: str | None


def session_out(playback: Playback, session: Session) -> SessionOut:
    d = session.decision
    urls = playback.urls(session)
    info = playback.info(session)
    variants = (
        [
            VariantOut(
                name=v.name,
                width=v.video.width if v.video else None,
                height=v.video.height if v.video else None,
                bandwidth=v.bandwidth,
                codecs=v.codecs,
            )
            for v in session.plan.variants
        ]
        if session.plan
        else []
    )
    return SessionOut(
        id=session.id,
        item_id=session.item_id,
        file_id=session.file.id,
        method=d.method.value,
        reasons=[r.value for r in d.reasons],
        container=d.container,
        duration=session.media.duration,
        start_position_ms=session.position_ms,
        expires_at=datetime.fromtimestamp(session.expires_at, UTC),
        video=VideoOut(
            stream=d.video.stream,
            action=d.video.action.value,
            codec=d.video.codec,
            width=d.video.width,
            height=d.video.height,
            bit_rate=d.video.bit_rate,
            profile=d.video.profile,
        )
        if d.video
        else None,
        audio=AudioOut(
            stream=d.audio.stream,
            action=d.audio.action.value,
            codec=d.audio.codec,
            channels=d.audio.channels,
            bit_rate=d.audio.bit_rate,
        )
        if d.audio
        else None,
        subtitles=[
            SubtitleOut(
                stream=s.stream,
                delivery=s.delivery.value,
                codec=s.codec,
                language=s.language,
                forced=s.forced,
                selected=s.selected,
                url=urls["subtitles"].get(str(s.stream)),
            )
            for s in d.subtitles
        ],
        variants=variants,
        urls=UrlsOut(direct=urls["direct"], master=urls["master"]),
        transcode=TranscodeOut(**info["transcode"]) if info["transcode"] else None,
        bandwidth_bps=info["bandwidth_bps"],
        recommended_variant=info["recommended_variant"],
    )


def add_routes(
    router: Router, playback: Callable[[], Playback], authenticate: Authenticate | None
) -> None:
    async def create(request: Request, *, body: NewSessionBody) -> Response:
        """Start playing an item: the decision (direct, remux, transcode, and why) and its URLs."""
        principal = request.principal_or_raise
        service = playback()
        raw = body.model_dump(mode="json", exclude={"item_id", "file_id", "start_position_ms"})
        session = await service.create(
            principal.user_id,
            body.item_id,
            body.file_id,
            raw,
            body.start_position_ms,
            admin=principal.is_admin,
        )
        return model_response(session_out(service, session), 201)

    async def own_session(request: Request, session_id: str) -> Session:
        principal = request.principal_or_raise
        session = await playback().find(session_id)
        if session is None or session.user_id != principal.user_id:
            raise SessionNotFound()
        return session

    async def show(request: Request, *, params: SessionPath) -> Response:
        """A playback session: its decision, URLs, transcode state and measured bandwidth."""
        session = await own_session(request, params.session_id)
        session.touch()
        return model_response(session_out(playback(), session))

    async def delete(request: Request, *, params: SessionPath) -> Response:
        """Stop playing: ffmpeg killed, cached segments released, the URLs refused from now."""
        session = await own_session(request, params.session_id)
        await playback().end(session)
        return empty_response(204)

    async def progress(request: Request, *, params: SessionPath, body: ProgressBody) -> Response:
        """Heartbeat: the position (and watched state) saved into the user's item state."""
        service = playback()
        session = await own_session(request, params.session_id)
        position, played = await service.progress(session, body.position_ms, ended=body.ended)
        info = service.info(session)
        out = ProgressOut(
            position_ms=position,
            played=played,
            bandwidth_bps=info["bandwidth_bps"],
            recommended_variant=info["recommended_variant"],
        )
        return model_response(out)

    async def media_session(request: Request, session_id: str, query: SignedQuery) -> Session:
        """The session a media request may open: by its signature, else by the credential."""
        service = playback()
        if query.exp is not None or query.sig is not None:
            session = await service.find(session_id)
            signer = service.signer
            verdict = (
                "invalid"
                if session is None or signer is None
                else signer.check(
                    session.id, session.user_id, session.item_id, query.exp or "",
                    query.sig or "", now=time.time(),
                )
            )  # fmt: skip
            if verdict == "expired":
                raise Problem(403, "playback_url_expired", "This media URL has expired")
            if verdict != "ok" or session is None:
                raise Problem(403, "playback_url_invalid", "This media URL is not valid")
            session.touch()
            return session
        if authenticate is None:
            raise Problem(401, "unauthenticated", "Authentication required")
        cached = getattr(authenticate, "cached", None)
        principal = cached(request) if cached is not None else None
        if principal is None:
            principal = await authenticate(request)
        request.principal = principal
        session = await service.find(session_id)
        if session is None or session.user_id != principal.user_id:
            raise SessionNotFound()
        session.touch()
        return session

    async def direct(request: Request, *, params: SessionPath, query: SignedQuery) -> Response:
        """The file itself, with Range (direct play); a signed URL or a credential."""
        service = playback()
        session = await media_session(request, params.session_id, query)
        if session.plan is not None:
            raise SegmentNotFound("this session plays through HLS")
        response = await file_response(
            request, session.file.fspath, content_type=direct_content_type(session.media),
            headers=[("cache-control", "private, no-transform")],
        )  # fmt: skip
        if isinstance(response, FileResponse) and request.method == "GET":
            service.metrics.bytes_served.labels("direct").inc(response.length)
            session.bandwidth.add(response.length)
        return response

    async def master(request: Request, *, params: SessionPath, query: SignedQuery) -> Response:
        """The HLS master playlist: the variants (source by copy where possible, then a
        ladder) and the WebVTT subtitle renditions."""
        service = playback()
        session = await media_session(request, params.session_id, query)
        return _playlist(service.master(session))

    async def variant_file(
        request: Request, *, params: VariantPath, query: SignedQuery
    ) -> Response:
        """A variant's playlist (``index.m3u8``), init section (``init.mp4``) or segment
        (``<n>.m4s`` / ``<n>.ts``); under ``subtitles/``: ``<stream>.m3u8`` / ``<stream>.vtt``."""
        service = playback()
        session = await media_session(request, params.session_id, query)
        variant, name = params.variant, params.name
        if variant == "subtitles":
            stem, _, ext = name.partition(".")
            stream = _number(stem)
            if ext == "m3u8":
                return _playlist(service.subtitle_playlist(session, stream))
            if ext == "vtt":
                path = await service.subtitle_file(session, stream)
                return await file_response(request, path, content_type=content_type(name))
            raise SegmentNotFound(f"no subtitle file {name[:40]}")
        if name == "index.m3u8":
            return _playlist(service.media_playlist(session, variant))
        if name == "init.mp4":
            data = await service.init_section(session, variant)
            return Response(200, data, [("content-type", "video/mp4"), _PRIVATE])
        stem, _, ext = name.partition(".")
        fmt = session.plan.segment_format if session.plan else None
        if fmt is None or ext != ("m4s" if fmt == "fmp4" else "ts"):
            raise SegmentNotFound(f"no segment {name[:40]}")
        served = await service.segment(session, variant, _number(stem))
        headers = [("content-type", served.content_type), _PRIVATE]
        if request.method == "HEAD":
            return Response(200, b"", [*headers, ("content-length", str(len(served.data)))])
        return Response(200, served.data, headers)

    guarded = {"public": True, "tags": _TAGS, "query": SignedQuery}
    media = {**guarded, "problems": (401, 403, 404, 409)}
    # 409 media unavailable or transcode failed, 422 no playable format (what a schema cannot
    # know), 429 limits; 416/412 from Range and If-Match on the direct file
    router.add("POST", API, create, body=NewSessionBody, response=SessionOut, status=201,
               tags=_TAGS, problems=(404, 409, 422, 429))  # fmt: skip
    router.add("GET", API + "/{session_id}", show, params=SessionPath, response=SessionOut,
               tags=_TAGS, problems=(404,))  # fmt: skip
    router.add("DELETE", API + "/{session_id}", delete, params=SessionPath, status=204,
               tags=_TAGS, problems=(404,))  # fmt: skip
    router.add("POST", API + "/{session_id}/progress", progress, params=SessionPath,
               body=ProgressBody, response=ProgressOut, tags=_TAGS, problems=(404,))  # fmt: skip
    router.add("GET", API + "/{session_id}/direct", direct, params=SessionPath,
               problems=(401, 403, 404, 409, 412, 416), **guarded)  # type: ignore[arg-type]  # fmt: skip
    router.add("GET", API + "/{session_id}/hls/master.m3u8", master, params=SessionPath,
               **media)  # type: ignore[arg-type]  # fmt: skip
    router.add("GET", API + "/{session_id}/hls/{variant}/{name}", variant_file,
               params=VariantPath, **media)  # type: ignore[arg-type]  # fmt: skip


GUARDED_PATHS = (
    API + "/{session_id}/direct",
    API + "/{session_id}/hls/master.m3u8",
    API + "/{session_id}/hls/{variant}/{name}",
)
"""Public to the router, guarded by their handlers (signed URL or credential)."""

_PRIVATE = ("cache-control", "private, max-age=3600")


def _playlist(body: str) -> Response:
    return Response(
        200,
        body.encode(),
        [("content-type", "application/vnd.apple.mpegurl"), ("cache-control", "no-cache")],
    )


def _number(text: str) -> int:
    """A segment or stream number: decimal digits, at most 9 (no sign, no huge values)."""
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise SegmentNotFound(f"no segment {text[:40]}")
    return int(text)
