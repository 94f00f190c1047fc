"""Invitations: an administrator creates one, the invited person picks a name and password.

The token (256 bits, shown once; only its hash is kept) is single use and lives
``INVITATION_TTL``. Accepting creates the user with the role the invitation names
(the same name rules as any new user: look-alikes of an existing name are refused) and
signs them in, in one transaction: two people accepting one invitation at once make
one account.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from revenge.modules.auth import repository as repo
from revenge.modules.auth.service import AuthService, LoginResult, check_new_credentials
from revenge.modules.auth.tokens import new_session_token, token_hash
from revenge.modules.auth.usernames import comparable
from revenge.runtime.errors import DomainError

INVITATION_TTL = 7 * 86400.0


class InvitationNotFound(DomainError):
    def __init__(self) -> None:
        super().__init__("invitation_not_found", "No such invitation", kind="not_found")


class InvitationExpired(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "invitation_expired",
            "The invitation has expired",
            kind="gone",
            detail="ask for a new invitation",
        )


class InvitationUsed(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "invitation_used",
            "The invitation was already used",
            kind="gone",
            detail="an invitation makes one account",
        )


@dataclass(frozen=True, slots=True)
class NewInvitation:
    token: str
    role: repo.Role
    expires_at: datetime
    email: str | None = None
    mail_key: str | None = None
    """The outbox key of the invitation e-mail (queued by the caller after the commit)."""


class Invitations:
    def __init__(self, auth: AuthService) -> None:
        self.auth = auth
        self.db = auth.db

    async def create(
        self,
        admin_id: int,
        role: repo.Role,
        email: str | None = None,
        mail: Callable[[repo.Conn, str, str], Awaitable[str]] | None = None,
    ) -> NewInvitation:
        """A new invitation. With ``email`` (normalised; 409 ``email_taken`` when a user has
        it) and ``mail``, the invitation e-mail is stored in the same transaction:
        ``mail(conn, address, token)`` returns its outbox key (:attr:`NewInvitation.mail_key`)."""
        token = new_session_token()
        digest = token_hash(token)
        key = None
        async with self.db.transaction() as conn:
            if email is not None and await repo.user_by_email(conn, email) is not None:
                raise repo.EmailTaken()
            cur = await conn.execute(
                "INSERT INTO invitations (token_hash, role, created_by, expires_at, email) "
                "VALUES (%s, %s, %s, now() + make_interval(secs => %s), %s) RETURNING expires_at",
                (digest, role, admin_id, INVITATION_TTL, email),
            )
            row = await cur.fetchone()
            if email is not None and mail is not None:
                key = await mail(conn, email, token)
        assert row is not None
        return NewInvitation(token, role, row[0], email, key)

    async def accept(
        self, token: str, username: str, password: str, ip: str, client: str
    ) -> LoginResult:
        """The new user, signed in; ``ValueError`` for an unusable name or password."""
        name = check_new_credentials(username, password)
        password_hash = await self.auth.hasher.hash(password)
        session_token = new_session_token()
        digest = token_hash(session_token)
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT id, role, expires_at <= now(), used_at IS NOT NULL, email FROM invitations "
                "WHERE token_hash = %s FOR UPDATE",
                (token_hash(token),),
            )
            row = await cur.fetchone()
            if row is None:
                raise InvitationNotFound()
            invitation_id, role, expired, used, email = row
            if used:
                raise InvitationUsed()
            if expired:
                raise InvitationExpired()
            user = await repo.insert_user(
                conn, name, comparable(name), password_hash, repo.as_role(role)
            )
            await conn.execute(
                "UPDATE invitations SET used_at = now(), used_by = %s WHERE id = %s",
                (user.id, invitation_id),
            )
            if email is not None and await repo.user_by_email(conn, email) is None:
                # The invited address becomes the account's (unless someone took it since).
                user = await repo.set_email(conn, user.id, email) or user
            session = await repo.insert_session(
                conn, user.id, digest, self.auth.settings.session_ttl, client, ip
            )
        self.auth.authenticator.remember(
            digest,
            repo.Credential(
                user.id, user.username, user.role, user.created_at, session.expires_at.timestamp()
            ),
        )
        return LoginResult(session_token, session, user)


async def delete_stale_invitations(conn: repo.Conn) -> int:
    """Invitations a month past their expiry (until then an attempt hears 'expired')."""
    cur = await conn.execute(
        "DELETE FROM invitations WHERE expires_at < now() - interval '30 days'"
    )
    return cur.rowcount
