"""HTTP face of a user's own preferences (``/api/v1/me/preferences``).

Languages are BCP 47 tags checked against ISO 639 / 15924 / 3166 (``languages.py``);
an unknown one is a 422 ``validation_failed`` naming the field (``audio_languages.1``)
and the subtag no list has. A negative bitrate fails the schema the same way.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from revenge.http import Input, Output, Request, Response, Router, model_response, text
from revenge.infra.db import Database
from revenge.modules.auth.languages import MAX_TAG_LENGTH, canonical
from revenge.modules.auth.preferences import UserPreferences, read_preferences, write_preferences

_TAGS = ("users",)
_TAG = r"^[A-Za-z0-9]{1,8}([-_][A-Za-z0-9]{1,8})*$"
"""The shape of a language tag; whether its subtags exist is checked against the lists."""
MAX_LANGUAGES = 10
MAX_BITRATE = 10**12


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


LanguageTag = Annotated[
    str, text(max_length=MAX_TAG_LENGTH, pattern=_TAG), AfterValidator(canonical)
]
LanguageList = Annotated[
    list[LanguageTag], Field(max_length=MAX_LANGUAGES), AfterValidator(_unique)
]


class PreferencesBody(Input):
    """Every preference; one left out goes back to its default."""

    display_language: LanguageTag | None = None
    audio_languages: LanguageList = []
    subtitle_languages: LanguageList = []
    subtitle_mode: Literal["off", "forced", "always"] = "forced"
    max_bitrate: Annotated[int, Field(ge=0, le=MAX_BITRATE)] | None = None
    """Bits per second over all streams; 0 or null: no cap."""
    resume: Literal["resume", "start_over", "ask"] = "resume"


class PreferencesOut(Output):
    display_language: str | None
    audio_languages: list[str]
    subtitle_languages: list[str]
    subtitle_mode: Literal["off", "forced", "always"]
    max_bitrate: int | None
    resume: Literal["resume", "start_over", "ask"]


def _out(prefs: UserPreferences) -> PreferencesOut:
    return PreferencesOut(
        display_language=prefs.display_language,
        audio_languages=list(prefs.audio_languages),
        subtitle_languages=list(prefs.subtitle_languages),
        subtitle_mode=prefs.subtitle_mode,
        max_bitrate=prefs.max_bitrate,
        resume=prefs.resume,
    )


def add_preference_routes(router: Router, db: Database) -> None:
    async def show(request: Request) -> Response:
        """My preferences (the defaults until I change one)."""
        user_id = request.principal_or_raise.user_id
        async with db.connection() as conn:
            return model_response(_out(await read_preferences(conn, user_id)))

    async def replace(request: Request, *, body: PreferencesBody) -> Response:
        """Replace my preferences; an unknown language or a negative bitrate is a 422."""
        user_id = request.principal_or_raise.user_id
        prefs = UserPreferences(
            display_language=body.display_language,
            audio_languages=tuple(body.audio_languages),
            subtitle_languages=tuple(body.subtitle_languages),
            subtitle_mode=body.subtitle_mode,
            max_bitrate=body.max_bitrate or None,
            resume=body.resume,
        )
        async with db.connection() as conn:
            return model_response(_out(await write_preferences(conn, user_id, prefs)))

    path = "/api/v1/me/preferences"
    router.add("GET", path, show, tags=_TAGS, response=PreferencesOut)
    router.add(
        "PUT",
        path,
        replace,
        tags=_TAGS,
        body=PreferencesBody,
        response=PreferencesOut,
        # a well-formed tag whose language, script or region no ISO list has
        problems=(422,),
    )
