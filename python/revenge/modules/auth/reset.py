"""Password reset by e-mail, and the e-mail of an invitation.

Asking for a reset (:meth:`PasswordResets.request`) does the same work whatever the
address: count the attempt (429 past the allowance, per client network and per
address) and queue a ``password_reset_mail`` job keyed by the address. The answer
(status, body) is the same and so is its cost (two statements), so neither tells
whether the address belongs to anyone. The job looks the address up; for an enabled
user it makes a token (256 bits; only its SHA-256 is kept, single use, 30 minutes)
and stores the e-mail in the outbox in the same transaction, then queues it.

Using a token (:meth:`PasswordResets.confirm`) sets the password, spends the token and
every other open token of the user, and ends all the user's sessions through the
revocation path, in one transaction, as an administrator's reset does.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from revenge.config import EmailSettings
from revenge.contract import JobKind, RetryPolicy
from revenge.infra.jobs import Jobs
from revenge.modules.auth import repository as repo
from revenge.modules.auth.management import check_password
from revenge.modules.auth.revocation import encode_user
from revenge.modules.auth.service import AuthService
from revenge.modules.auth.throttle import LoginThrottle, Policy, network_of
from revenge.modules.auth.tokens import new_session_token, token_hash
from revenge.modules.email import EmailDisabled, normal_address, queue_written, write_message
from revenge.runtime.errors import DomainError

log = logging.getLogger(__name__)

RESET_TTL = 30 * 60.0
RESET_PATH = "/api/v1/auth/password-reset/confirm"

PASSWORD_RESET_MAIL = JobKind(
    "password_reset_mail",
    queue="email",
    unique=True,  # key: the address; asking again while one waits adds nothing
    retry=RetryPolicy(max_attempts=5, initial_delay=2.0),
    timeout=60.0,
)

# Counted in the login throttle's table under keys of their own ("reset ..."): a few
# requests per address an hour (each one can put a mail in someone's inbox), more per
# network, then a growing wait.
RESET_NETWORK = Policy(free=10, base=60.0, cap=3600.0)
RESET_ADDRESS = Policy(free=3, base=300.0, cap=3600.0)


def reset_throttle() -> LoginThrottle:
    return LoginThrottle(
        ip=RESET_NETWORK,
        pair=replace(RESET_ADDRESS, free=RESET_ADDRESS.free + 1),
        account=RESET_ADDRESS,
        window=3600.0,
    )


class ResetNotFound(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "reset_not_found",
            "No such password reset",
            kind="not_found",
            detail="ask for a new reset e-mail",
        )


class ResetSpent(DomainError):
    def __init__(self, why: str) -> None:
        super().__init__(
            "reset_expired" if why == "expired" else "reset_used",
            "The reset link has expired" if why == "expired" else "The reset link was used",
            kind="gone",
            detail="ask for a new reset e-mail",
        )


def link(base_url: str, fragment: str) -> str:
    """``base_url`` + a client route (a fragment: the token never reaches a server log)."""
    return f"{base_url.rstrip('/')}/#/{fragment}" if base_url else ""


def reset_mail(username: str, token: str, base_url: str) -> tuple[str, str]:
    url = link(base_url, f"reset-password/{token}")
    how = (
        f"Open {url} to choose a new password" if url else "Use this code to choose a new password"
    )
    body = (
        f"Someone (probably you) asked to reset the password of {username} on Revenge.\n\n"
        f"{how} within 30 minutes:\n\n{token}\n\n"
        f"(An app sends the code to {RESET_PATH}.) If it was not you, ignore this e-mail:\n"
        "your password stays as it is.\n"
    )
    return "Reset your Revenge password", body


def invitation_mail(token: str, base_url: str, accept_path: str) -> tuple[str, str]:
    url = link(base_url, f"invitation/{token}")
    how = f"Open {url}" if url else "Use this invitation code"
    body = (
        "You are invited to a Revenge media server.\n\n"
        f"{how} to choose your user name and password (within 7 days):\n\n{token}\n\n"
        f"(An app sends the code to {accept_path}.)\n"
    )
    return "You are invited to Revenge", body


class PasswordResets:
    def __init__(self, auth: AuthService, email: EmailSettings) -> None:
        self.auth = auth
        self.db = auth.db
        self.email = email
        self.throttle = reset_throttle()

    async def request(self, jobs: Jobs, address: str, ip: str) -> None:
        """Queue the reset of ``address`` (whoever owns it, if anyone); 429 when throttled.

        ``ValueError`` for a string that is no address, ``EmailDisabled`` without SMTP:
        neither depends on whether the address is known.
        """
        if not self.email.host:
            raise EmailDisabled()
        normal = normal_address(address)
        async with self.db.connection() as conn:
            await self.throttle.reserve(
                conn, "reset " + network_of(ip), "reset " + normal.casefold()
            )
        await jobs.enqueue(PASSWORD_RESET_MAIL.name, {"address": normal}, key=normal.casefold())

    async def mail(self, jobs: Jobs, address: str) -> str | None:
        """The ``password_reset_mail`` body: the outbox key queued, or ``None`` (no such user)."""
        token = new_session_token()
        async with self.db.transaction() as conn:
            user = await repo.user_by_email(conn, address)
            if user is None or user.disabled or user.email is None:
                return None
            digest = token_hash(token)
            await conn.execute(
                "INSERT INTO password_resets (token_hash, user_id, expires_at) "
                "VALUES (%s, %s, now() + make_interval(secs => %s))",
                (digest, user.id, RESET_TTL),
            )
            subject, body = reset_mail(user.username, token, self.email.base_url)
            key = f"password-reset:{digest[:32]}"
            await write_message(
                conn, self.email, to=user.email, subject=subject, body=body, key=key
            )
        await queue_written(jobs, key)
        return key

    async def confirm(self, token: str, password: str) -> int:
        """Set the password of the token's user; every session ends. The user's id.

        ``ValueError`` for an unusable password (the token is not spent then).
        """
        check_password(password)
        password_hash = await self.auth.hasher.hash(password)
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT user_id, used_at IS NOT NULL, expires_at <= now() FROM password_resets "
                "WHERE token_hash = %s FOR UPDATE",
                (token_hash(token),),
            )
            row = await cur.fetchone()
            if row is None:
                raise ResetNotFound()
            user_id, used, expired = int(row[0]), bool(row[1]), bool(row[2])
            if used:
                raise ResetSpent("used")
            if expired:
                raise ResetSpent("expired")
            user = await repo.lock_user(conn, user_id)
            if user is None or user.disabled:
                raise ResetNotFound()
            await repo.update_user(
                conn, user_id, password_hash=password_hash, must_change_password=False
            )
            await conn.execute(
                "UPDATE password_resets SET used_at = now() WHERE user_id = %s AND used_at IS NULL",
                (user_id,),
            )
            await repo.delete_user_sessions(conn, user_id)
            await self.auth.publisher.notify(conn, encode_user(user_id))
        self.auth.authenticator.revoke_user(user_id)
        await self.auth.publisher.broadcast(encode_user(user_id))
        log.info("user %d reset their password by e-mail; their sessions ended", user_id)
        return user_id


async def delete_stale_resets(conn: repo.Conn) -> int:
    """Reset tokens a day past their expiry (until then a late click hears 'expired')."""
    cur = await conn.execute(
        "DELETE FROM password_resets WHERE expires_at < now() - interval '1 day'"
    )
    return cur.rowcount
