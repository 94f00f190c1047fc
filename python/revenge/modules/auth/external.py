"""Sign-in by an outside identity provider (single sign-on): the same session as a password login.

A module that proves who someone is another way (OpenID Connect) asks
:meth:`ExternalSignIn.sign_in` for a session. The caller owns its identity table;
this module owns users and sessions. In one transaction:

1. ``find(conn)`` names the account the identity is linked to (or ``None``);
2. with none, a new account is made (a free name from the provider's suggestion, a
   password nobody knows) and ``link(conn, user_id)`` records the identity;
3. the role follows the provider's word when it gives one (never demoting the last
   enabled administrator), a disabled account is refused, and a session is made.

The session is the opaque token of a password login: listed, revoked and expired
the same way.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import psycopg
from argon2 import PasswordHasher as _Argon2

from revenge.modules.auth import repository as repo
from revenge.modules.auth.revocation import encode_user
from revenge.modules.auth.service import AccountDisabled, AuthService, LoginResult
from revenge.modules.auth.tokens import new_session_token, token_hash
from revenge.modules.auth.usernames import MAX_LENGTH, comparable, display_name

Find = Callable[[repo.Conn], Awaitable[int | None]]
Link = Callable[[repo.Conn, int], Awaitable[None]]

_NAME_TRIES = 20
# A valid argon2id hash of 32 random bytes nobody keeps: no password ever matches it,
# and the stored hash looks like any other. Cheap parameters: nothing is ever checked
# against it successfully, so its cost protects nothing.
_UNUSABLE = _Argon2(time_cost=1, memory_cost=8, parallelism=1)


@dataclass(frozen=True, slots=True)
class ExternalAccount:
    """What the provider says about who signed in."""

    username: str
    """The name a new account should get (made free with a ``-2``... suffix)."""
    fallback_username: str
    """Used when ``username`` is not a valid name (mixed scripts, empty)."""
    admin: bool | None
    """``True``/``False``: the role to hold; ``None``: the provider does not say."""
    verified_email: str | None = None
    """An address the provider says is verified, given only where an administrator allowed
    linking by it: an identity seen for the first time signs in to the account that has
    this address (when accounts have addresses), instead of making a new one."""


class ExternalSignIn:
    def __init__(self, auth: AuthService) -> None:
        self.auth = auth
        self.db = auth.db

    async def sign_in(
        self, account: ExternalAccount, find: Find, link: Link, ip: str, client: str
    ) -> LoginResult:
        """A session for the account ``find`` names, or for a new one ``link`` records.

        Raises 403 ``account_disabled``. Two first sign-ins of one identity at once
        make one account: the loser's link collides, its transaction rolls back, and
        it runs again, finding the winner's.
        """
        try:
            return await self._sign_in(account, find, link, ip, client)
        except psycopg.errors.UniqueViolation:
            return await self._sign_in(account, find, link, ip, client)

    async def _sign_in(
        self, account: ExternalAccount, find: Find, link: Link, ip: str, client: str
    ) -> LoginResult:
        token = new_session_token()
        digest = token_hash(token)
        changed_role = False
        async with self.db.transaction() as conn:
            user_id = await find(conn)
            if user_id is None and account.verified_email:
                user_id = await _user_with_email(conn, account.verified_email)
                if user_id is not None:
                    await link(conn, user_id)
            if user_id is None:
                user = await self._new_user(conn, account)
                await link(conn, user.id)
            else:
                admins = await repo.lock_active_admins(conn)
                found = await repo.lock_user(conn, user_id)
                if found is None:  # deleted between find and lock: its identity went with it
                    raise AccountDisabled()
                user = found
                wanted = _role(account.admin, user.role)
                last_admin = user.id in admins and len(admins) <= 1
                if wanted != user.role and not (wanted == "user" and last_admin):
                    updated = await repo.update_user(conn, user.id, role=wanted)
                    assert updated is not None  # locked above
                    user, changed_role = updated, True
                    await self.auth.publisher.notify(conn, encode_user(user.id))
            if user.disabled:
                raise AccountDisabled()
            session = await repo.insert_session(
                conn, user.id, digest, self.auth.settings.session_ttl, client, ip
            )
            await repo.record_login(conn, user.id, None)
        if changed_role:
            # Cached credentials hold the role: every worker drops this user's.
            self.auth.authenticator.revoke_user(user.id)
            await self.auth.publisher.broadcast(encode_user(user.id))
        self.auth.authenticator.remember(
            digest,
            repo.Credential(
                user.id, user.username, user.role, user.created_at, session.expires_at.timestamp()
            ),
        )
        return LoginResult(token, session, user)

    async def _new_user(self, conn: repo.Conn, account: ExternalAccount) -> repo.UserRecord:
        base = _usable_name(account.username) or _usable_name(account.fallback_username)
        if base is None:
            base = f"user-{secrets.token_hex(4)}"
        password_hash = _UNUSABLE.hash(secrets.token_urlsafe(32))
        role: repo.Role = "admin" if account.admin else "user"
        for attempt in range(_NAME_TRIES):
            suffix = "" if attempt == 0 else f"-{attempt + 1}"
            name = base[: MAX_LENGTH - len(suffix)] + suffix
            try:
                return await repo.insert_user(conn, name, comparable(name), password_hash, role)
            except repo.UsernameTaken:
                continue
        name = f"{base[: MAX_LENGTH - 9]}-{secrets.token_hex(4)}"
        return await repo.insert_user(conn, name, comparable(name), password_hash, role)


async def _user_with_email(conn: repo.Conn, address: str) -> int | None:
    """The account whose e-mail address is ``address`` (compared case-insensitively).

    Accounts get an address with e-mail support (``users.email``); before that
    column exists there is nothing to link by.
    """
    cur = await conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'users' AND column_name = 'email'"
    )
    if await cur.fetchone() is None:
        return None
    cur = await conn.execute(
        "SELECT id FROM users WHERE lower(email) = lower(%s)",  # the column may be text or citext
        (address,),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else None


def _role(admin: bool | None, current: repo.Role) -> repo.Role:
    if admin is None:
        return current
    return "admin" if admin else "user"


def _usable_name(wanted: str) -> str | None:
    """``wanted`` as a valid account name, or ``None``."""
    try:
        return display_name(wanted[:MAX_LENGTH])
    except ValueError:
        return None
