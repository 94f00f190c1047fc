"""HTTP face of auth: login/logout, my sessions, my API keys, ``/me``.

Every route here but login requires a session or API key (the router's default).
"""

from __future__ import annotations

import uuid
from typing import Any

from revenge.http import (
    Principal,
    Problem,
    Request,
    Response,
    Router,
    empty_response,
    json_response,
)
from revenge.modules.auth.passwords import MAX_PASSWORD_LENGTH
from revenge.modules.auth.repository import ApiKeyRecord, SessionRecord, UsernameTaken
from revenge.modules.auth.service import MAX_USERNAME_LENGTH, AuthService
from revenge.modules.auth.throttle import ClientAddress
from revenge.modules.auth.usernames import display_name

_TAGS = ("auth",)
_JSON = ("content-type", "application/json")
_MAX_KEY_NAME = 100


def _invalid(detail: str, field: str) -> Problem:
    return Problem(422, "validation_failed", "Validation failed", detail, extra={"field": field})


def _text_field(data: dict[str, Any], name: str, max_length: int) -> str:
    value = data.get(name)
    if value is None:
        raise _invalid(f"{name} is required", name)
    if not isinstance(value, str):
        raise _invalid(f"{name} must be a string", name)
    if not value or len(value) > max_length:
        raise _invalid(f"{name} must have 1 to {max_length} characters", name)
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise _invalid(f"{name} must not contain a NUL character", name)
    return value


async def _object_body(request: Request) -> dict[str, Any]:
    data = await request.json()
    if not isinstance(data, dict):
        raise Problem(422, "validation_failed", "Validation failed", "expected a JSON object")
    return data


def _session_json(record: SessionRecord, current_hash: str | None) -> dict[str, Any]:
    return {
        "id": record.id,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_seen_at": record.last_seen_at,
        "client": record.client,
        "ip": record.ip,
        "current": current_hash is not None and record.token_hash == current_hash,
    }


def _key_json(record: ApiKeyRecord) -> dict[str, Any]:
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
    cookie_max_age = int(service.settings.session_ttl)
    directory = service.authenticator.directory

    async def login(request: Request) -> Response:
        """Log in with username and password: a session token (body) and cookie."""
        data = await _object_body(request)
        username = _text_field(data, "username", MAX_USERNAME_LENGTH)
        password = _text_field(data, "password", MAX_PASSWORD_LENGTH)
        client = request.headers.get("user-agent", "")
        result = await service.login(username, password, addresses.of(request), client)
        response = json_response(
            {
                "token": result.token,
                "token_type": "Bearer",
                "session_id": result.session.id,
                "expires_at": result.session.expires_at,
                "user": {
                    "id": result.user.id,
                    "username": result.user.username,
                    "role": result.user.role,
                },
            },
            headers=[_JSON],
        )
        response.set_cookie(
            cookie_name, result.token, max_age=cookie_max_age, secure=addresses.is_tls(request)
        )
        return response

    async def logout(request: Request) -> Response:
        """Log out: revoke the session this request came with."""
        principal = _principal(request)
        if principal.via != "session":
            raise Problem(
                400, "not_a_session", "Not a session", "log out with a session, not an API key"
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
        return json_response({"sessions": [_session_json(s, current) for s in sessions]})

    async def revoke_session(request: Request) -> Response:
        """Revoke one of my sessions."""
        principal = _principal(request)
        try:
            session_id = uuid.UUID(request.path_params["session_id"])
        except ValueError:
            session_id = None
        if session_id is None or not await service.revoke_session(principal.user_id, session_id):
            raise Problem(404, "session_not_found", "Session not found")
        return empty_response(204)

    async def revoke_all_sessions(request: Request) -> Response:
        """Revoke all my sessions, this one included."""
        principal = _principal(request)
        count = await service.revoke_all_sessions(principal.user_id)
        return json_response({"revoked": count})

    async def create_api_key(request: Request) -> Response:
        """Create an API key; the key is shown once, only its hash is kept."""
        principal = _principal(request)
        if principal.via != "session":
            # A leaked key must not be able to mint more keys.
            raise Problem(
                403, "session_required", "Session required", "API keys cannot create keys"
            )
        data = await _object_body(request)
        name = _text_field(data, "name", _MAX_KEY_NAME).strip()
        if not name:
            raise _invalid("name must not be blank", "name")
        created = await service.create_api_key(principal.user_id, name)
        return json_response(
            {**_key_json(created.record), "key": created.key},
            201,
            headers=[_JSON],
        )

    async def list_api_keys(request: Request) -> Response:
        """My API keys (never the keys themselves)."""
        principal = _principal(request)
        keys = await service.list_api_keys(principal.user_id)
        return json_response({"api_keys": [_key_json(k) for k in keys]})

    async def revoke_api_key(request: Request) -> Response:
        """Revoke one of my API keys."""
        principal = _principal(request)
        if not await service.revoke_api_key(principal.user_id, request.path_params["key_id"]):
            raise Problem(404, "api_key_not_found", "API key not found")
        return empty_response(204)

    async def me(request: Request) -> Response:
        """The current user."""
        principal = request.principal
        assert principal is not None  # the router authenticated this route
        view = directory.get(principal.user_id) or await service.user_view(principal.user_id)
        if view is None:
            raise Problem(401, "unauthenticated", "Authentication required", "no such user")
        return Response(200, view.me_body, [_JSON])

    async def create_user(request: Request) -> Response:
        """Create a user (administrators only); the name must not pass for another's."""
        principal = _principal(request)
        if not principal.is_admin:
            raise Problem(403, "admin_required", "Administrator required")
        data = await _object_body(request)
        username = _text_field(data, "username", MAX_USERNAME_LENGTH)
        password = _text_field(data, "password", MAX_PASSWORD_LENGTH)
        role = data.get("role", "user")
        if role not in ("admin", "user"):
            raise _invalid("role must be admin or user", "role")
        try:
            display_name(username)
        except ValueError as exc:
            raise _invalid(str(exc), "username") from None
        try:
            user = await service.create_user(username, password, admin=role == "admin")
        except ValueError as exc:
            raise _invalid(str(exc), "password") from None
        except UsernameTaken:
            raise Problem(409, "username_taken", "Username taken") from None
        return json_response(
            {
                "id": user.id,
                "username": user.username,
                "role": user.role,
                "created_at": user.created_at,
            },
            201,
        )

    # a token in the answer: no cache keeps it (authenticated routes get no-store anyway)
    router.add(
        "POST", "/api/v1/auth/login", login, public=True, tags=_TAGS, cache_control="no-store"
    )
    router.add("POST", "/api/v1/users", create_user, tags=("users",))
    router.add("POST", "/api/v1/auth/logout", logout, tags=_TAGS)
    router.add("GET", "/api/v1/auth/sessions", list_sessions, tags=_TAGS)
    router.add("DELETE", "/api/v1/auth/sessions", revoke_all_sessions, tags=_TAGS)
    router.add("DELETE", "/api/v1/auth/sessions/{session_id}", revoke_session, tags=_TAGS)
    router.add("POST", "/api/v1/auth/api-keys", create_api_key, tags=_TAGS)
    router.add("GET", "/api/v1/auth/api-keys", list_api_keys, tags=_TAGS)
    router.add("DELETE", "/api/v1/auth/api-keys/{key_id}", revoke_api_key, tags=_TAGS)
    router.add("GET", "/api/v1/me", me, tags=("users",))
