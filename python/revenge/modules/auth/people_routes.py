"""HTTP face of a user's own preferences (``/api/v1/me/preferences``) and of signing in on a TV.

Languages are BCP 47 tags checked against ISO 639 / 15924 / 3166 (``languages.py``);
an unknown one is a 422 ``validation_failed`` naming the field (``audio_languages.1``)
and the subtag no list has. A negative bitrate fails the schema the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from revenge.config import EmailSettings
from revenge.http import Input, Output, Problem, Request, Response, Router, model_response, text
from revenge.infra.db import Database
from revenge.infra.jobs import Jobs
from revenge.modules.auth.device import MAX_USER_CODE_INPUT, DeviceFlow
from revenge.modules.auth.invitations import Invitations
from revenge.modules.auth.languages import MAX_TAG_LENGTH, canonical
from revenge.modules.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from revenge.modules.auth.preferences import UserPreferences, read_preferences, write_preferences
from revenge.modules.auth.repository import Conn, UsernameTaken
from revenge.modules.auth.reset import invitation_mail
from revenge.modules.auth.routes import (
    LoginOut,
    invalid_value,
    login_response,
    set_session_cookie,
)
from revenge.modules.auth.service import MAX_USERNAME_LENGTH
from revenge.modules.auth.throttle import ClientAddress
from revenge.modules.auth.tokens import MAX_CREDENTIAL_LENGTH, token_hash
from revenge.modules.email import EmailDisabled, normal_address, queue_written, write_message

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


# -- sign in on a TV -------------------------------------------------------------------------


class DeviceStartOut(Output):
    user_code: str
    """Shown on the TV (``ABCD-EFGH``); the person types it on a signed-in device."""
    device_secret: str
    """Kept by the TV to poll with; never shown."""
    expires_at: datetime
    interval: int
    """Seconds between polls."""
    approve_path: str


class DevicePollBody(Input):
    device_secret: Annotated[str, text(max_length=MAX_CREDENTIAL_LENGTH)]


class DeviceApproveBody(Input):
    user_code: Annotated[str, text(max_length=MAX_USER_CODE_INPUT)]


class DeviceApprovedOut(Output):
    client: str
    """The TV's own description of itself (its User-Agent), to check before approving."""
    approved_at: datetime


APPROVE_PATH = "/api/v1/auth/device/approve"


def add_device_routes(router: Router, flow: DeviceFlow, addresses: ClientAddress) -> None:
    async def start(request: Request) -> Response:
        """A TV asks to sign in: a code to show and a secret to poll with (no credential)."""
        client = request.headers.get("user-agent", "")
        started = await flow.start(addresses.of(request), client)
        return model_response(
            DeviceStartOut(
                user_code=started.user_code,
                device_secret=started.device_secret,
                expires_at=started.expires_at,
                interval=started.interval,
                approve_path=APPROVE_PATH,
            ),
            201,
        )

    async def poll(request: Request, *, body: DevicePollBody) -> Response:
        """The TV polls: 400 ``authorization_pending`` until approved, then its session once."""
        client = request.headers.get("user-agent", "")
        result = await flow.poll(body.device_secret, addresses.of(request), client)
        return login_response(result)

    async def approve(request: Request, *, body: DeviceApproveBody) -> Response:
        """Approve the code a TV shows: it signs in as me (from a session, not an API key)."""
        principal = request.principal_or_raise
        if principal.via != "session":
            # A leaked key must not be able to mint sessions.
            raise Problem(
                403, "session_required", "Session required", "approve from a signed-in session"
            )
        approval = await flow.approve(principal.user_id, body.user_code, addresses.of(request))
        return model_response(
            DeviceApprovedOut(client=approval.client, approved_at=approval.approved_at)
        )

    tags = ("auth",)
    router.add(
        "POST",
        "/api/v1/auth/device",
        start,
        public=True,
        tags=tags,
        cache_control="no-store",
        response=DeviceStartOut,
        status=201,
    )
    router.add(
        "POST",
        "/api/v1/auth/device/token",
        poll,
        public=True,
        tags=tags,
        cache_control="no-store",
        body=DevicePollBody,
        response=LoginOut,
        # pending (400), disabled approver (403), unknown secret (404), expired or used (410)
        problems=(400, 403, 404, 410),
    )
    router.add(
        "POST",
        APPROVE_PATH,
        approve,
        tags=tags,
        body=DeviceApproveBody,
        response=DeviceApprovedOut,
        # an API key (403), no such code (404), already approved, expired (410)
        problems=(403, 404, 410),
    )


# -- invitations -------------------------------------------------------------------------------


class InvitationBody(Input):
    role: Literal["admin", "user"] = "user"
    email: Annotated[str, text(max_length=320)] | None = None
    """Send the invitation to this address (it becomes the new account's); e-mail must be
    configured (409 ``email_disabled``)."""


class InvitationOut(Output):
    token: str
    """Shown once: only its hash is kept. The invited person sends it to ``accept_path``."""
    role: Literal["admin", "user"]
    expires_at: datetime
    accept_path: str
    email: str | None = None
    """Where the invitation e-mail is on its way to."""


class AcceptBody(Input):
    token: Annotated[str, text(max_length=MAX_CREDENTIAL_LENGTH)]
    username: Annotated[str, text(max_length=MAX_USERNAME_LENGTH)]
    password: Annotated[str, text(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]


ACCEPT_PATH = "/api/v1/invitations/accept"


def add_invitation_routes(
    router: Router,
    invitations: Invitations,
    addresses: ClientAddress,
    email: EmailSettings,
    jobs: Callable[[], Jobs],
) -> None:
    async def mail(conn: Conn, address: str, token: str) -> str:
        subject, text_body = invitation_mail(token, email.base_url, ACCEPT_PATH)
        key = f"invitation:{token_hash(token)[:32]}"
        await write_message(conn, email, to=address, subject=subject, body=text_body, key=key)
        return key

    async def invite(request: Request, *, body: InvitationBody) -> Response:
        """Invite someone (administrators only): a single-use token, valid for 7 days; with
        ``email``, sent there too."""
        address = None
        if body.email is not None:
            if not email.host:
                raise EmailDisabled()
            try:
                address = normal_address(body.email)
            except ValueError as exc:
                raise invalid_value(str(exc), "email") from None
        made = await invitations.create(
            request.principal_or_raise.user_id, body.role, address, mail
        )
        if made.mail_key is not None:
            await queue_written(jobs(), made.mail_key)
        out = InvitationOut(
            token=made.token,
            role=made.role,
            expires_at=made.expires_at,
            accept_path=ACCEPT_PATH,
            email=made.email,
        )
        return model_response(out, 201)

    async def accept(request: Request, *, body: AcceptBody) -> Response:
        """Accept an invitation (no credential): choose a name and password, get a session
        (token and cookie, as login)."""
        client = request.headers.get("user-agent", "")
        try:
            result = await invitations.accept(
                body.token, body.username, body.password, addresses.of(request), client
            )
        except ValueError as exc:
            raise invalid_value(str(exc), "username") from None
        except UsernameTaken:
            raise Problem(409, "username_taken", "Username taken") from None
        response = login_response(result)
        set_session_cookie(
            response, invitations.auth.settings, result.token, addresses.is_tls(request)
        )
        return response

    router.add(
        "POST",
        "/api/v1/invitations",
        invite,
        tags=("users",),
        body=InvitationBody,
        response=InvitationOut,
        status=201,
        admin=True,
        # e-mail not configured or the address is a user's (409), not an address (422)
        problems=(409, 422),
    )
    router.add(
        "POST",
        ACCEPT_PATH,
        accept,
        public=True,
        tags=("auth",),
        cache_control="no-store",
        body=AcceptBody,
        response=LoginOut,
        # no such token (404), name taken (409), used or expired (410), a look-alike name (422)
        problems=(404, 409, 410, 422),
    )
