"""HTTP face of auth: login/logout, my sessions, my API keys, ``/me``.

Every route here but login requires a session or API key (the router's default).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from revenge.config import AuthSettings
from revenge.http import (
    Input,
    Output,
    Principal,
    Problem,
    Request,
    Response,
    Router,
    empty_response,
    model_response,
    text,
)
from revenge.modules.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from revenge.modules.auth.repository import ApiKeyRecord, SessionRecord
from revenge.modules.auth.service import MAX_USERNAME_LENGTH, AuthService, LoginResult
from revenge.modules.auth.throttle import ClientAddress

_TAGS = ("auth",)
_JSON = ("content-type", "application/json")
_MAX_KEY_NAME = 100
_MAX_KEY_ID = 64
_NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
"""No NUL, and one character at least that is not white space."""


class LoginBody(Input):
    username: Annotated[str, text(max_length=MAX_USERNAME_LENGTH)]
    password: Annotated[str, text(max_length=MAX_PASSWORD_LENGTH)]
    new_password: (
        Annotated[str, text(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)] | None
    ) = None
    """Required (and then stored) when an administrator reset the password."""


class ApiKeyBody(Input):
    name: Annotated[str, text(max_length=_MAX_KEY_NAME, pattern=_NOT_BLANK)]


class SessionPath(Input):
    session_id: uuid.UUID


class ApiKeyPath(Input):
    key_id: Annotated[str, text(max_length=_MAX_KEY_ID)]


class UserOut(Output):
    id: int
    username: str
    role: Literal["admin", "user"]


class MeOut(UserOut):
    created_at: datetime


class LoginOut(Output):
    token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    session_id: uuid.UUID
    expires_at: datetime
    user: UserOut


class SessionOut(Output):
    id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    client: str
    ip: str | None
    current: bool


class SessionsOut(Output):
    sessions: list[SessionOut]


class RevokedOut(Output):
    revoked: int


class ApiKeyOut(Output):
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class ApiKeysOut(Output):
    api_keys: list[ApiKeyOut]


class CreatedApiKeyOut(ApiKeyOut):
    key: str
    """Shown once: only its hash is kept."""


def invalid_value(detail: str, field: str) -> Problem:
    """A value the model let through but a rule of the service refused (same code)."""
    message = detail
    return Problem(
        422,
        "validation_failed",
        "Validation failed",
        f"{field}: {message}",
        extra={
            "field": field,
            "errors": [{"field": field, "reason": "value_error", "message": message}],
        },
    )


def login_response(result: LoginResult) -> Response:
    """A new session as login (and a TV's approved code) answers it."""
    return model_response(
        LoginOut(
            token=result.token,
            session_id=result.session.id,
            expires_at=result.session.expires_at,
            user=UserOut(id=result.user.id, username=result.user.username, role=result.user.role),
        )
    )


def set_session_cookie(response: Response, settings: AuthSettings, token: str, tls: bool) -> None:
    """The session as the web client keeps it (HttpOnly), beside the token in the body."""
    response.set_cookie(settings.cookie_name, token, max_age=int(settings.session_ttl), secure=tls)


def _session_out(record: SessionRecord, current_hash: str | None) -> SessionOut:
    return SessionOut(
        id=record.id,
        created_at=record.created_at,
        expires_at=record.expires_at,
        last_seen_at=record.last_seen_at,
        client=record.client,
        ip=record.ip,
        current=current_hash is not None and record.token_hash == current_hash,
    )


def _key_fields(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "created_at": record.created_at,
        "last_used_at": record.last_used_at,
        "expires_at": record.expires_at,
    }


def _principal(request: Request) -> Principal:
    return request.principal_or_raise


def add_routes(router: Router, service: AuthService, addresses: ClientAddress) -> None:
    cookie_name = service.settings.cookie_name
    directory = service.authenticator.directory

    async def login(request: Request, *, body: LoginBody) -> Response:
        """Log in with username and password: a session token (body) and cookie."""
        client = request.headers.get("user-agent", "")
        try:
            result = await service.login(
                body.username, body.password, addresses.of(request), client, body.new_password
            )
        except ValueError as exc:  # an unusable new password
            raise invalid_value(str(exc), "new_password") from None
        response = login_response(result)
        set_session_cookie(response, service.settings, result.token, addresses.is_tls(request))
        return response

    async def logout(request: Request) -> Response:
        """Log out: revoke the session this request came with."""
        principal = _principal(request)
        if principal.via != "session":
            # Like creating a key: a credential of the wrong kind for this, not bad input.
            raise Problem(
                403, "not_a_session", "Not a session", "log out with a session, not an API key"
            )
        await service.revoke_session_hash(principal.credential_id)
        response = empty_response(204)
        response.set_cookie(cookie_name, "", max_age=0, secure=addresses.is_tls(request))
        return response

    async def list_sessions(request: Request) -> Response:
        """My sessions (the one in use is marked ``current``)."""
        principal = _principal(request)
        current = principal.credential_id if principal.via == "session" else None
        sessions = await service.list_sessions(principal.user_id)
        return model_response(SessionsOut(sessions=[_session_out(s, current) for s in sessions]))

    async def revoke_session(request: Request, *, params: SessionPath) -> Response:
        """Revoke one of my sessions."""
        principal = _principal(request)
        if not await service.revoke_session(principal.user_id, params.session_id):
            raise Problem(404, "session_not_found", "Session not found")
        return empty_response(204)

    async def revoke_all_sessions(request: Request) -> Response:
        """Revoke all my sessions, this one included."""
        principal = _principal(request)
        count = await service.revoke_all_sessions(principal.user_id)
        return model_response(RevokedOut(revoked=count))

    async def create_api_key(request: Request, *, body: ApiKeyBody) -> Response:
        """Create an API key; the key is shown once, only its hash is kept."""
        principal = _principal(request)
        if principal.via != "session":
            # A leaked key must not be able to mint more keys.
            raise Problem(
                403, "session_required", "Session required", "API keys cannot create keys"
            )
        created = await service.create_api_key(principal.user_id, body.name.strip())
        return model_response(
            CreatedApiKeyOut(**_key_fields(created.record), key=created.key),
            201,
        )

    async def list_api_keys(request: Request) -> Response:
        """My API keys (never the keys themselves)."""
        principal = _principal(request)
        keys = await service.list_api_keys(principal.user_id)
        return model_response(ApiKeysOut(api_keys=[ApiKeyOut(**_key_fields(k)) for k in keys]))

    async def revoke_api_key(request: Request, *, params: ApiKeyPath) -> Response:
        """Revoke one of my API keys."""
        principal = _principal(request)
        if not await service.revoke_api_key(principal.user_id, params.key_id):
            raise Problem(404, "api_key_not_found", "API key not found")
        return empty_response(204)

    async def me(request: Request) -> Response:
        """The current user."""
        principal = request.principal
        assert principal is not None  # the router authenticated this route
        view = directory.get(principal.user_id) or await service.user_view(principal.user_id)
        if view is None:
            raise Problem(401, "unauthenticated", "Authentication required", "no such user")
        return Response(200, view.me_body, [_JSON])  # prebuilt: MeOut, serialised once

    # a token in the answer: no cache keeps it (authenticated routes get no-store anyway)
    router.add(
        "POST",
        "/api/v1/auth/login",
        login,
        public=True,
        tags=_TAGS,
        cache_control="no-store",
        body=LoginBody,
        response=LoginOut,
    )
    router.add("POST", "/api/v1/auth/logout", logout, tags=_TAGS, status=204)
    router.add("GET", "/api/v1/auth/sessions", list_sessions, tags=_TAGS, response=SessionsOut)
    router.add(
        "DELETE", "/api/v1/auth/sessions", revoke_all_sessions, tags=_TAGS, response=RevokedOut
    )
    router.add(
        "DELETE",
        "/api/v1/auth/sessions/{session_id}",
        revoke_session,
        tags=_TAGS,
        params=SessionPath,
        status=204,
    )
    router.add(
        "POST",
        "/api/v1/auth/api-keys",
        create_api_key,
        tags=_TAGS,
        body=ApiKeyBody,
        response=CreatedApiKeyOut,
        status=201,
    )
    router.add("GET", "/api/v1/auth/api-keys", list_api_keys, tags=_TAGS, response=ApiKeysOut)
    router.add(
        "DELETE",
        "/api/v1/auth/api-keys/{key_id}",
        revoke_api_key,
        tags=_TAGS,
        params=ApiKeyPath,
        status=204,
    )
    router.add("GET", "/api/v1/me", me, tags=("users",), response=MeOut)
