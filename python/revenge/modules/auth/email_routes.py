"""HTTP face of e-mail addresses and of password reset by e-mail.

* ``PUT /api/v1/users/{user_id}/email`` (administrators), ``PUT /api/v1/me/email`` (the
  user, with the current password): set or clear (``null``) an address. An address that
  is not one plain ``local@domain`` (or carries CR/LF) is 422 ``validation_failed``; one
  another user has is 409 ``email_taken``.
* ``POST /api/v1/auth/password-reset`` (anyone): 202 and the same body whether or not the
  address belongs to someone; 429 ``too_many_attempts`` past the allowance.
* ``POST /api/v1/auth/password-reset/confirm`` (anyone, with the e-mailed token): 204; the
  user's sessions end. 404 ``reset_not_found``, 410 ``reset_used`` / ``reset_expired``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from revenge.http import Input, Output, Request, Response, Router, empty_response, model_response
from revenge.http import text as bounded
from revenge.infra.jobs import Jobs
from revenge.modules.auth.management import UserManagement
from revenge.modules.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from revenge.modules.auth.reset import PasswordResets
from revenge.modules.auth.routes import invalid_value
from revenge.modules.auth.throttle import ClientAddress
from revenge.modules.auth.tokens import MAX_CREDENTIAL_LENGTH
from revenge.modules.auth.user_routes import UserOut, UserPath, expected_version, user_response
from revenge.modules.email import normal_address

MAX_ADDRESS_INPUT = 320
"""What a field accepts before normalising (254 after it, as mail servers require)."""

Address = Annotated[str, bounded(max_length=MAX_ADDRESS_INPUT)]


class EmailBody(Input):
    email: Address | None
    """The address; null: none."""


class OwnEmailBody(EmailBody):
    current_password: Annotated[str, bounded(max_length=MAX_PASSWORD_LENGTH)]


class EmailOut(Output):
    email: str | None


class ResetRequestBody(Input):
    email: Address


class ResetRequestOut(Output):
    status: Literal["accepted"] = "accepted"
    detail: str = (
        "if the address belongs to an account, a reset link is on its way (valid 30 minutes)"
    )


class ResetConfirmBody(Input):
    token: Annotated[str, bounded(max_length=MAX_CREDENTIAL_LENGTH)]
    password: Annotated[
        str, bounded(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
    ]


def normal_or_422(address: str | None) -> str | None:
    if address is None:
        return None
    try:
        return normal_address(address)
    except ValueError as exc:
        raise invalid_value(str(exc), "email") from None


_RESET_ANSWER = ResetRequestOut()


def add_email_routes(
    router: Router,
    users: UserManagement,
    resets: PasswordResets,
    jobs: Callable[[], Jobs],
    addresses: ClientAddress,
) -> None:
    async def set_user_email(request: Request, *, params: UserPath, body: EmailBody) -> Response:
        """Set or clear a user's e-mail address (administrators only)."""
        address = normal_or_422(body.email)
        version = expected_version(request)
        user = await users.set_email(params.user_id, address, expected_version=version)
        return user_response(user)

    async def set_own_email(request: Request, *, body: OwnEmailBody) -> Response:
        """Set or clear my e-mail address (the current password is needed)."""
        address = normal_or_422(body.email)
        principal = request.principal_or_raise
        stored = await users.set_own_email(principal.user_id, body.current_password, address)
        return model_response(EmailOut(email=stored))

    async def request_reset(request: Request, *, body: ResetRequestBody) -> Response:
        """Ask for a password-reset e-mail: the same answer whether or not the address is known."""
        try:
            await resets.request(jobs(), body.email, addresses.of(request))
        except ValueError as exc:
            raise invalid_value(str(exc), "email") from None
        return model_response(_RESET_ANSWER, 202)

    async def confirm_reset(request: Request, *, body: ResetConfirmBody) -> Response:
        """Choose a new password with the e-mailed token; every session of the user ends."""
        try:
            await resets.confirm(body.token, body.password)
        except ValueError as exc:
            raise invalid_value(str(exc), "password") from None
        return empty_response(204)

    router.add(
        "PUT",
        "/api/v1/users/{user_id}/email",
        set_user_email,
        tags=("users",),
        params=UserPath,
        body=EmailBody,
        response=UserOut,
        admin=True,
        # not one plain address (422), another user's (409), If-Match naming an old version (412)
        problems=(409, 412, 422),
    )
    router.add(
        "PUT",
        "/api/v1/me/email",
        set_own_email,
        tags=("users",),
        body=OwnEmailBody,
        response=EmailOut,
        # wrong current password (403), another user's (409), not one plain address (422)
        problems=(403, 409, 422),
    )
    router.add(
        "POST",
        "/api/v1/auth/password-reset",
        request_reset,
        public=True,
        tags=("auth",),
        cache_control="no-store",
        body=ResetRequestBody,
        response=ResetRequestOut,
        status=202,
        # not an address (422), e-mail not configured (409), throttled (429)
        problems=(409, 422, 429),
    )
    router.add(
        "POST",
        "/api/v1/auth/password-reset/confirm",
        confirm_reset,
        public=True,
        tags=("auth",),
        cache_control="no-store",
        body=ResetConfirmBody,
        status=204,
        # no such token (404), used or expired (410), an unusable password (422)
        problems=(404, 410, 422),
    )
