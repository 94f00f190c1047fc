"""Auth use cases: log in and out, list and revoke sessions, API keys, users, bootstrap.

Every revocation deletes the row and sends the NOTIFY in one transaction, then
evicts locally at once (this worker never serves the credential again), then
copies the message to Redis when configured.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from revenge.config import AuthSettings
from revenge.infra.db import Database
from revenge.modules.auth import repository as repo
from revenge.modules.auth.authenticator import Authenticator
from revenge.modules.auth.directory import UserView
from revenge.modules.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, PasswordHasher
from revenge.modules.auth.revocation import RevocationPublisher, encode_token, encode_user
from revenge.modules.auth.throttle import LoginThrottle, network_of
from revenge.modules.auth.tokens import new_api_key, new_session_token, token_hash
from revenge.modules.auth.usernames import MAX_LENGTH, comparable, display_name
from revenge.runtime.errors import DomainError, ServiceUnavailable

log = logging.getLogger(__name__)

BOOTSTRAP_USERNAME = "admin"
MAX_USERNAME_LENGTH = MAX_LENGTH


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    session: repo.SessionRecord
    user: repo.UserRecord


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key: str
    record: repo.ApiKeyRecord


class InvalidCredentials(DomainError):
    """One answer for unknown user and wrong password: the username's existence is not revealed."""

    def __init__(self) -> None:
        super().__init__(
            "invalid_credentials", "Invalid username or password", kind="unauthenticated"
        )


class AccountDisabled(DomainError):
    def __init__(self) -> None:
        super().__init__("account_disabled", "This account is disabled", kind="forbidden")


class PasswordChangeRequired(DomainError):
    """An administrator reset the password: the next login must choose a new one."""

    def __init__(self) -> None:
        super().__init__(
            "password_change_required",
            "A new password is required",
            kind="forbidden",
            detail="log in again with new_password set to the password you choose",
        )


class AuthService:
    def __init__(
        self,
        db: Database,
        settings: AuthSettings,
        hasher: PasswordHasher,
        throttle: LoginThrottle,
        authenticator: Authenticator,
        publisher: RevocationPublisher,
    ) -> None:
        self.db = db
        self.settings = settings
        self.hasher = hasher
        self.throttle = throttle
        self.authenticator = authenticator
        self.publisher = publisher

    # -- login / logout ---------------------------------------------------------------

    async def login(
        self, username: str, password: str, ip: str, client: str, new_password: str | None = None
    ) -> LoginResult:
        """Raises 429 while throttled, 401 ``invalid_credentials``, 403 ``account_disabled``.

        A user whose password an administrator reset gets 403 ``password_change_required``
        until the login also carries ``new_password`` (which then replaces it).
        """
        network, account = network_of(ip), comparable(username)
        async with self.db.connection() as conn:
            await self.throttle.reserve(conn, network, account)  # 429, counting nothing
            user = await repo.user_by_username(conn, username, account)
        try:
            if user is None:
                await self.hasher.verify_dummy(password)
                raise InvalidCredentials()
            if not await self.hasher.verify(user.password_hash, password):
                raise InvalidCredentials()
        except ServiceUnavailable:
            # The hasher was too busy to check: this attempt did not guess anything.
            async with self.db.connection() as conn:
                await self.throttle.refund(conn, network, account, succeeded=False)
            raise
        if user.disabled:
            # Told only to whoever knows the password: it reveals nothing to a guesser.
            raise AccountDisabled()
        if user.must_change_password:
            if new_password is None:
                raise PasswordChangeRequired()
            if new_password == password:
                raise DomainError(
                    "password_unchanged", "The new password must differ", kind="invalid"
                )
            check_new_credentials(user.username, new_password)
            rehash: str | None = await self.hasher.hash(new_password)
        else:
            rehash = (
                await self.hasher.hash(password)
                if self.hasher.needs_rehash(user.password_hash)
                else None
            )
        token = new_session_token()
        digest = token_hash(token)
        async with self.db.transaction() as conn:
            session = await repo.insert_session(
                conn, user.id, digest, self.settings.session_ttl, client, ip
            )
            await repo.record_login(conn, user.id, rehash)
            await repo.delete_expired_sessions(conn, user.id)
            await self.throttle.refund(conn, network, account, succeeded=True)
        self.authenticator.remember(
            digest,
            repo.Credential(
                user.id, user.username, user.role, user.created_at, session.expires_at.timestamp()
            ),
        )
        return LoginResult(token, session, user)

    async def revoke_session_hash(self, digest: str) -> bool:
        """Log out the session with this token hash (the caller's own)."""
        async with self.db.transaction() as conn:
            found = await repo.delete_session_by_hash(conn, digest)
            await self.publisher.notify(conn, encode_token(digest))
        await self._after_revoke(encode_token(digest), digest=digest)
        return found

    async def revoke_session(self, user_id: int, session_id: uuid.UUID) -> bool:
        return await self._revoke_credential(
            lambda conn: repo.delete_session(conn, user_id, session_id)
        )

    async def _revoke_credential(
        self, delete: Callable[[repo.Conn], Awaitable[str | None]]
    ) -> bool:
        """Delete one credential and announce its hash in the same transaction."""
        async with self.db.transaction() as conn:
            digest = await delete(conn)
            if digest is not None:
                await self.publisher.notify(conn, encode_token(digest))
        if digest is None:
            return False
        await self._after_revoke(encode_token(digest), digest=digest)
        return True

    async def revoke_all_sessions(self, user_id: int) -> int:
        """Every session of the user, the caller's included (API keys stay)."""
        async with self.db.transaction() as conn:
            count = await repo.delete_user_sessions(conn, user_id)
            await self.publisher.notify(conn, encode_user(user_id))
        await self._after_revoke(encode_user(user_id), user_id=user_id)
        return count

    async def list_sessions(self, user_id: int) -> list[repo.SessionRecord]:
        async with self.db.connection() as conn:
            return await repo.list_sessions(conn, user_id)

    # -- API keys ---------------------------------------------------------------------

    async def create_api_key(self, user_id: int, name: str) -> NewApiKey:
        key, key_id = new_api_key()
        async with self.db.connection() as conn:
            record = await repo.insert_api_key(conn, user_id, key_id, name, token_hash(key))
        return NewApiKey(key, record)

    async def list_api_keys(self, user_id: int) -> list[repo.ApiKeyRecord]:
        async with self.db.connection() as conn:
            return await repo.list_api_keys(conn, user_id)

    async def revoke_api_key(self, user_id: int, key_id: str) -> bool:
        return await self._revoke_credential(
            lambda conn: repo.delete_api_key(conn, user_id, key_id)
        )

    # -- users ------------------------------------------------------------------------

    async def create_user(
        self,
        username: str,
        password: str,
        *,
        admin: bool = False,
        must_change_password: bool = False,
    ) -> repo.UserRecord:
        """Raises ``ValueError`` for an unusable name or password, ``UsernameTaken``."""
        name = check_new_credentials(username, password)
        password_hash = await self.hasher.hash(password)
        async with self.db.connection() as conn:
            return await repo.insert_user(
                conn,
                name,
                comparable(name),
                password_hash,
                "admin" if admin else "user",
                must_change_password,
            )

    async def fill_username_keys(self) -> None:
        """Rows from before ``username_key``: give them theirs (see ``0005_username_key.sql``)."""
        async with self.db.transaction() as conn:
            stepped_aside = await repo.fill_username_keys(conn, comparable)
        for username, key in stepped_aside:
            log.warning(
                "user %r looks like an older account's name: it can no longer log in by name "
                "(its key is %r); rename or delete it",
                username,
                key,
            )

    async def set_disabled(self, user_id: int, disabled: bool) -> bool:
        """Disable (or enable) a user; a disabled user's cached credentials die everywhere."""
        async with self.db.transaction() as conn:
            changed = await repo.set_disabled(conn, user_id, disabled)
            if changed:
                await self.publisher.notify(conn, encode_user(user_id))
        if changed:
            await self._after_revoke(encode_user(user_id), user_id=user_id)
        return changed

    async def user_view(self, user_id: int) -> UserView | None:
        """The profile of ``user_id`` (refilling the directory after an eviction)."""
        view = self.authenticator.directory.get(user_id)
        if view is not None:
            return view
        async with self.db.connection() as conn:
            user = await repo.user_by_id(conn, user_id)
        if user is None or user.disabled:
            return None
        return self.authenticator.directory.put(user.id, user.username, user.role, user.created_at)

    async def bootstrap_admin(self) -> repo.UserRecord | None:
        """First start: create ``admin`` from ``auth.bootstrap_admin_password`` if no user exists.

        Several workers may start at once; an advisory lock makes exactly one create it.
        """
        password = self.settings.bootstrap_admin_password.get_secret_value()
        async with self.db.connection() as conn:
            if await repo.count_users(conn) > 0:
                return None
        if not password:
            await self.announce_setup()
            return None
        check_new_credentials(BOOTSTRAP_USERNAME, password)
        password_hash = await self.hasher.hash(password)
        async with self.db.transaction() as conn:
            await repo.lock_users_table_for_bootstrap(conn)
            if await repo.count_users(conn) > 0:
                return None
            user = await repo.insert_user(
                conn, BOOTSTRAP_USERNAME, comparable(BOOTSTRAP_USERNAME), password_hash, "admin"
            )
        log.info("created the first administrator %r from the bootstrap password", user.username)
        return user

    # -- first run -----------------------------------------------------------------

    async def announce_setup(self) -> str | None:
        """With no user yet: make the one-time setup code and log it, once for all workers.

        Every worker starting on an empty users table tries to store a code; the one
        that stores it prints it (``revenge serve`` clears the previous run's code
        before its workers start, so each start prints a fresh one). Returns the
        code when this call printed it.
        """
        code = new_setup_code()
        async with self.db.transaction() as conn:
            if await repo.count_users(conn) > 0:
                return None
            if not await repo.claim_setup_code(conn, token_hash(normal_setup_code(code))):
                return None
        log.warning(
            "no users exist yet: open the web client from this machine to create the first "
            "administrator, or from elsewhere with the one-time setup code %s; or run "
            "`revenge user create --admin`, or set REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD "
            "and restart",
            code,
        )
        return code

    async def setup_needed(self) -> bool:
        async with self.db.connection() as conn:
            return await repo.count_users(conn) == 0

    async def create_first_admin(
        self, username: str, password: str, *, code: str | None, local: bool
    ) -> repo.UserRecord:
        """The first administrator, if there is no user yet (409 ``setup_done`` otherwise).

        Allowed to a caller on this machine (``local``), or one who gives the setup code
        printed to the log (403 ``setup_code_required`` / ``setup_code_invalid``).
        """
        name = check_new_credentials(username, password)
        password_hash = await self.hasher.hash(password)
        async with self.db.transaction() as conn:
            await repo.lock_users_table_for_bootstrap(conn)
            if await repo.count_users(conn) > 0:
                raise DomainError(
                    "setup_done",
                    "Setup is done",
                    kind="conflict",
                    detail="an administrator exists already: sign in",
                )
            if not local:
                stored = await repo.setup_code_hash(conn)
                if not code:
                    raise DomainError(
                        "setup_code_required",
                        "Setup code required",
                        kind="forbidden",
                        detail="from another machine, enter the setup code printed in the "
                        "server's log",
                    )
                given = token_hash(normal_setup_code(code))
                if stored is None or not hmac.compare_digest(stored, given):
                    raise DomainError(
                        "setup_code_invalid",
                        "Wrong setup code",
                        kind="forbidden",
                        detail="the setup code does not match the one in the server's log",
                    )
            user = await repo.insert_user(conn, name, comparable(name), password_hash, "admin")
            await repo.delete_setup_code(conn)
        log.info("created the first administrator %r through the setup page", user.username)
        return user

    async def _after_revoke(
        self, payload: str, *, digest: str | None = None, user_id: int | None = None
    ) -> None:
        if digest is not None:
            self.authenticator.revoke_hash(digest)
        if user_id is not None:
            self.authenticator.revoke_user(user_id)
        await self.publisher.broadcast(payload)


_SETUP_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a log


def new_setup_code() -> str:
    """Four groups of four (about 79 bits): typed by a person, guessed by nobody.

    >>> code = new_setup_code()
    >>> len(code), code.count("-"), normal_setup_code(code.lower()) == normal_setup_code(code)
    (19, 3, True)
    """
    chars = "".join(secrets.choice(_SETUP_ALPHABET) for _ in range(16))
    return "-".join(chars[i : i + 4] for i in range(0, 16, 4))


def normal_setup_code(code: str) -> str:
    """The code as compared: upper case, without dashes or spaces."""
    return "".join(c for c in code.upper() if c.isalnum())


def check_new_credentials(username: str, password: str) -> str:
    """The name the new account keeps; ``ValueError`` naming what is wrong with either."""
    name = display_name(username)
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValueError(
            f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    return name


def isoformat(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
