"""A user's preferences: display language, audio and subtitle languages, subtitle mode, bitrate cap, resume.

Stored in ``user_preferences`` (one row once a user changed anything; the
defaults otherwise). :func:`read_preferences` is the plain function other
modules call (the playback decision: default audio and subtitle tracks and the
bitrate cap); it is exported by ``revenge.modules.auth``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from revenge.modules.auth.repository import Conn

SubtitleMode = Literal["off", "forced", "always"]
Resume = Literal["resume", "start_over", "ask"]


@dataclass(frozen=True, slots=True)
class UserPreferences:
    display_language: str | None = None
    """BCP 47 tag of the interface language; ``None``: the client's own."""
    audio_languages: tuple[str, ...] = ()
    """BCP 47 tags, most wanted first; empty: the file's default track."""
    subtitle_languages: tuple[str, ...] = ()
    subtitle_mode: SubtitleMode = "forced"
    """``off``: none; ``forced``: forced subtitles only (signs, foreign dialogue); ``always``."""
    max_bitrate: int | None = None
    """Bits per second over all streams; ``None``: no cap."""
    resume: Resume = "resume"
    """Playing a started item: carry on, start over, or ask."""


DEFAULTS = UserPreferences()

_COLUMNS = (
    "display_language, audio_languages, subtitle_languages, subtitle_mode, max_bitrate, resume"
)


def _preferences(row: tuple[object, ...]) -> UserPreferences:
    display, audio, subtitles, mode, bitrate, resume = row
    assert mode in ("off", "forced", "always") and resume in ("resume", "start_over", "ask")
    return UserPreferences(
        display_language=display if isinstance(display, str) else None,
        audio_languages=tuple(audio) if isinstance(audio, list) else (),
        subtitle_languages=tuple(subtitles) if isinstance(subtitles, list) else (),
        subtitle_mode=mode,
        max_bitrate=bitrate if isinstance(bitrate, int) else None,
        resume=resume,
    )


async def read_preferences(conn: Conn, user_id: int) -> UserPreferences:
    """The preferences of ``user_id`` (the defaults when none were saved)."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM user_preferences WHERE user_id = %s",  # noqa: S608 (constant)
        (user_id,),
    )
    row = await cur.fetchone()
    return DEFAULTS if row is None else _preferences(row)


async def write_preferences(conn: Conn, user_id: int, prefs: UserPreferences) -> UserPreferences:
    """Replace the preferences of ``user_id`` (an existing user; the caller checked)."""
    cur = await conn.execute(
        f"INSERT INTO user_preferences (user_id, {_COLUMNS}) "  # noqa: S608 (constant)
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET "
        "display_language = excluded.display_language, "
        "audio_languages = excluded.audio_languages, "
        "subtitle_languages = excluded.subtitle_languages, "
        "subtitle_mode = excluded.subtitle_mode, max_bitrate = excluded.max_bitrate, "
        f"resume = excluded.resume, updated_at = now() RETURNING {_COLUMNS}",
        (
            user_id,
            prefs.display_language,
            list(prefs.audio_languages),
            list(prefs.subtitle_languages),
            prefs.subtitle_mode,
            prefs.max_bitrate,
            prefs.resume,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return _preferences(row)
