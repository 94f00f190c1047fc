"""HTTP face of user administration (administrators only) and of a user's own password.

A user resource carries its ``version`` in the body and as ``ETag: "<version>"``.
A change sent with ``If-Match: "<version>"`` is refused with 412
``version_mismatch`` when someone else changed the user in between (no lost
update); without ``If-Match`` the change applies to whatever is current.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from revenge.http import (
    Input,
    Output,
    Problem,
    Request,
    Response,
    Router,
    empty_response,
    model_response,
    text,
)
from revenge.modules.auth.management import UserManagement, VersionMismatch
from revenge.modules.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from revenge.modules.auth.repository import Parental, UsernameTaken, UserRecord
from revenge.modules.auth.routes import invalid_value
from revenge.modules.auth.service import MAX_USERNAME_LENGTH
from revenge.modules.auth.usernames import display_name

_TAGS = ("users",)
Password = Annotated[str, text(max_length=MAX_PASSWORD_LENGTH)]
NewPassword = Annotated[str, text(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]
"""A password being set declares its bounds (clients, and the fuzzer, see them)."""


class NewUser(Input):
    username: Annotated[str, text(max_length=MAX_USERNAME_LENGTH)]
    password: NewPassword
    role: Literal["admin", "user"] = "user"
    must_change_password: bool = False
    """An initial password the user replaces at first sign-in."""


class UserChange(Input):
    role: Literal["admin", "user"] | None = None
    disabled: bool | None = None


class PasswordReset(Input):
    password: NewPassword


class OwnPasswordChange(Input):
    current_password: Password
    new_password: NewPassword


class UserPath(Input):
    user_id: Annotated[int, Field(ge=1, le=2**63 - 1)]


class UserOut(Output):
    id: int
    username: str
    role: Literal["admin", "user"]
    disabled: bool
    must_change_password: bool
    created_at: datetime
    last_login_at: datetime | None
    version: int
    email: str | None = None


class ParentalBody(Input):
    max_rating: Annotated[str, text(max_length=32)] | None = None
    """The oldest rating the user may see, in any system (``PG-13``, ``FSK 12``, ``15``,
    ``TV-14``, or an age); null: no limit. Administrators are never limited."""
    unrated: Literal["allow", "block"] = "allow"
    """Items without a known rating: shown, or hidden too."""


class ParentalOut(Output):
    max_rating: str | None
    max_rating_age: int | None
    """The rating as an age on the one scale every system maps to."""
    unrated: Literal["allow", "block"]
    version: int


class UserList(Output):
    users: list[UserOut]


class PasswordChanged(Output):
    other_sessions_ended: int


def _out(user: UserRecord) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        role=user.role,
        disabled=user.disabled,
        must_change_password=user.must_change_password,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        version=user.version,
        email=user.email,
    )


def _parental_response(parental: Parental) -> Response:
    out = ParentalOut(
        max_rating=parental.max_rating,
        max_rating_age=parental.max_rating_age,
        unrated="block" if parental.blocks_unrated else "allow",
        version=parental.version,
    )
    return model_response(out, headers=(("etag", f'"{parental.version}"'),))


def user_response(user: UserRecord, status: int = 200) -> Response:
    return model_response(_out(user), status, headers=(("etag", f'"{user.version}"'),))


def expected_version(request: Request) -> int | None:
    """The version an ``If-Match`` header names (``"3"`` or ``W/"3"``); ``None`` without one.

    >>> class R:
    ...     headers = {"if-match": 'W/"12"'}
    >>> expected_version(R())  # type: ignore[arg-type]
    12
    """
    value = request.headers.get("if-match")
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 18:
        raise Problem(412, "version_mismatch", "Precondition failed", "If-Match names no version")
    return int(tag)


def add_user_routes(router: Router, users: UserManagement) -> None:
    auth = users.auth

    async def list_users(request: Request) -> Response:
        """Every user (administrators only)."""
        return model_response(UserList(users=[_out(u) for u in await users.list_users()]))

    async def create_user(request: Request, *, body: NewUser) -> Response:
        """Create a user (administrators only); the name must not pass for another's."""
        try:
            display_name(body.username)
        except ValueError as exc:
            raise invalid_value(str(exc), "username") from None
        try:
            user = await auth.create_user(
                body.username,
                body.password,
                admin=body.role == "admin",
                must_change_password=body.must_change_password,
            )
        except ValueError as exc:
            raise invalid_value(str(exc), "password") from None
        except UsernameTaken:
            raise Problem(409, "username_taken", "Username taken") from None
        return user_response(user, 201)

    async def show_user(request: Request, *, params: UserPath) -> Response:
        """One user (administrators only)."""
        return user_response(await users.get_user(params.user_id))

    async def change_user(request: Request, *, params: UserPath, body: UserChange) -> Response:
        """Change role or disabled; a disabled user's credentials stop working at once."""
        version = expected_version(request)
        with _precondition():
            user = await users.update(
                params.user_id, role=body.role, disabled=body.disabled, expected_version=version
            )
        return user_response(user)

    async def delete_user(request: Request, *, params: UserPath) -> Response:
        """Delete a user with their sessions, API keys and personal data."""
        version = expected_version(request)
        with _precondition():
            await users.delete(params.user_id, expected_version=version)
        return empty_response(204)

    async def reset_password(
        request: Request, *, params: UserPath, body: PasswordReset
    ) -> Response:
        """Set a password the user must replace at next sign-in; signs them out."""
        version = expected_version(request)
        try:
            with _precondition():
                user = await users.reset_password(
                    params.user_id, body.password, expected_version=version
                )
        except ValueError as exc:
            raise invalid_value(str(exc), "password") from None
        return user_response(user)

    async def show_parental(request: Request, *, params: UserPath) -> Response:
        """A user's content limit (administrators only)."""
        return _parental_response(await users.parental(params.user_id))

    async def set_parental(request: Request, *, params: UserPath, body: ParentalBody) -> Response:
        """Set a user's content limit; items above it disappear for them everywhere at once."""
        version = expected_version(request)
        try:
            with _precondition():
                parental = await users.set_parental(
                    params.user_id,
                    body.max_rating,
                    body.unrated == "block",
                    expected_version=version,
                )
        except ValueError as exc:
            raise invalid_value(str(exc), "max_rating") from None
        return _parental_response(parental)

    async def change_own_password(request: Request, *, body: OwnPasswordChange) -> Response:
        """Change my password (the current one is needed); every other session ends."""
        principal = request.principal_or_raise
        keep = principal.credential_id if principal.via == "session" else None
        try:
            ended = await users.change_own_password(
                principal.user_id, body.current_password, body.new_password, keep
            )
        except ValueError as exc:
            raise invalid_value(str(exc), "new_password") from None
        return model_response(PasswordChanged(other_sessions_ended=ended))

    one = "/api/v1/users/{user_id}"
    router.add("GET", "/api/v1/users", list_users, tags=_TAGS, response=UserList, admin=True)
    router.add(
        "POST",
        "/api/v1/users",
        create_user,
        tags=_TAGS,
        body=NewUser,
        response=UserOut,
        status=201,
        admin=True,
        # a name that passes for another's (look-alikes, mixed scripts): no schema says so
        problems=(409, 422),
    )
    router.add("GET", one, show_user, tags=_TAGS, params=UserPath, response=UserOut, admin=True)
    router.add(
        "PATCH",
        one,
        change_user,
        tags=_TAGS,
        params=UserPath,
        body=UserChange,
        response=UserOut,
        admin=True,
    )
    router.add("DELETE", one, delete_user, tags=_TAGS, params=UserPath, status=204, admin=True)
    router.add(
        "POST",
        one + "/password",
        reset_password,
        tags=_TAGS,
        params=UserPath,
        body=PasswordReset,
        response=UserOut,
        admin=True,
    )
    router.add(
        "GET",
        one + "/parental",
        show_parental,
        tags=_TAGS,
        params=UserPath,
        response=ParentalOut,
        admin=True,
    )
    router.add(
        "PUT",
        one + "/parental",
        set_parental,
        tags=_TAGS,
        params=UserPath,
        body=ParentalBody,
        response=ParentalOut,
        admin=True,
        # a rating no system knows (422); If-Match naming an old version (412)
        problems=(412, 422),
    )
    router.add(
        "POST",
        "/api/v1/me/password",
        change_own_password,
        tags=_TAGS,
        body=OwnPasswordChange,
        response=PasswordChanged,
    )


class _precondition:
    """``VersionMismatch`` as the HTTP 412 it is (If-Match named an old version)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, VersionMismatch):
            raise Problem(
                412,
                "version_mismatch",
                "The user was changed by someone else",
                "read the user again and reapply the change",
                extra={"version": exc.extra["version"]},
            ) from None
