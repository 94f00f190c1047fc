"""Administering users, and a user's own password: the rules, each in one transaction.

* The last enabled administrator cannot be disabled, demoted or deleted: every
  change that could remove an administrator first locks all enabled
  administrators' rows (``repository.lock_active_admins``), so two concurrent
  removals of the last two are serialised and the second is refused.
* No lost update: a change may name the ``version`` it was based on (the ETag of
  the user resource); the row is locked, and a different version is refused
  (:class:`VersionMismatch`, 412 at the HTTP layer).
* Whatever takes away access (disable, demote, delete, password reset or change)
  announces ``u:<id>`` in the same transaction through the revocation path, so
  every worker drops the user's cached sessions, API keys and profile at once.
"""

from __future__ import annotations

from revenge.modules.auth import repository as repo
from revenge.modules.auth.ratings import limit_age
from revenge.modules.auth.revocation import encode_user
from revenge.modules.auth.service import AuthService, check_new_credentials
from revenge.runtime.errors import DomainError


class UserNotFound(DomainError):
    def __init__(self) -> None:
        super().__init__("user_not_found", "User not found", kind="not_found")


class LastAdmin(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "last_admin",
            "The last administrator must stay",
            kind="conflict",
            detail="make another user an administrator first",
        )


class VersionMismatch(DomainError):
    """The row changed since the caller read it (someone else edited it)."""

    def __init__(self, current: int) -> None:
        super().__init__(
            "version_mismatch",
            "The user was changed by someone else",
            kind="conflict",
            detail="read the user again and reapply the change",
            extra={"version": current},
        )


class WrongPassword(DomainError):
    def __init__(self) -> None:
        super().__init__("wrong_password", "The current password is wrong", kind="forbidden")


class UserManagement:
    """Use cases over the auth service's database, hasher and revocation publisher."""

    def __init__(self, auth: AuthService) -> None:
        self.auth = auth
        self.db = auth.db

    async def list_users(self) -> list[repo.UserRecord]:
        async with self.db.connection() as conn:
            return await repo.list_users(conn)

    async def get_user(self, user_id: int) -> repo.UserRecord:
        async with self.db.connection() as conn:
            user = await repo.user_by_id(conn, user_id)
        if user is None:
            raise UserNotFound()
        return user

    async def update(
        self,
        user_id: int,
        *,
        role: repo.Role | None = None,
        disabled: bool | None = None,
        expected_version: int | None = None,
    ) -> repo.UserRecord:
        """Change role and/or disabled; refuses to leave no enabled administrator."""
        async with self.db.transaction() as conn:
            admins = await repo.lock_active_admins(conn)
            current = await self._locked(conn, user_id, expected_version)
            removes_admin = user_id in admins and (role == "user" or disabled is True)
            if removes_admin and len(admins) <= 1:
                raise LastAdmin()
            updated = await repo.update_user(conn, user_id, role=role, disabled=disabled)
            assert updated is not None  # locked above
            # The cached credential holds the role too: any change of either is announced.
            changed = (updated.role, updated.disabled) != (current.role, current.disabled)
            if changed:
                await self.auth.publisher.notify(conn, encode_user(user_id))
        if changed:
            await self._announce(user_id)
        return updated

    async def delete(self, user_id: int, *, expected_version: int | None = None) -> None:
        """Delete the user: sessions, API keys and personal data go with the row."""
        async with self.db.transaction() as conn:
            admins = await repo.lock_active_admins(conn)
            await self._locked(conn, user_id, expected_version)
            if user_id in admins and len(admins) <= 1:
                raise LastAdmin()
            await repo.delete_user(conn, user_id)
            await self.auth.publisher.notify(conn, encode_user(user_id))
        await self._announce(user_id)

    async def reset_password(
        self, user_id: int, password: str, *, expected_version: int | None = None
    ) -> repo.UserRecord:
        """Set a password the user must replace at next sign-in; signs the user out."""
        check_password(password)
        password_hash = await self.auth.hasher.hash(password)
        async with self.db.transaction() as conn:
            await self._locked(conn, user_id, expected_version)
            updated = await repo.update_user(
                conn, user_id, password_hash=password_hash, must_change_password=True
            )
            assert updated is not None
            await repo.delete_user_sessions(conn, user_id)
            await self.auth.publisher.notify(conn, encode_user(user_id))
        await self._announce(user_id)
        return updated

    async def set_email(
        self, user_id: int, address: str | None, *, expected_version: int | None = None
    ) -> repo.UserRecord:
        """Set or clear a user's address (``normal_address`` form: the caller normalises);
        409 ``email_taken`` when another user has it."""
        async with self.db.transaction() as conn:
            await self._locked(conn, user_id, expected_version)
            updated = await repo.set_email(conn, user_id, address)
        assert updated is not None  # locked above
        return updated

    async def set_own_email(self, user_id: int, current: str, address: str | None) -> str | None:
        """The same for oneself, with the current password: whoever holds a stolen session
        must not be able to point the reset e-mail elsewhere."""
        user = await self.get_user(user_id)
        if not await self.auth.hasher.verify(user.password_hash, current):
            raise WrongPassword()
        return (await self.set_email(user_id, address)).email

    async def parental(self, user_id: int) -> repo.Parental:
        async with self.db.connection() as conn:
            found = await repo.parental_of(conn, user_id)
        if found is None:
            raise UserNotFound()
        return found

    async def set_parental(
        self,
        user_id: int,
        max_rating: str | None,
        blocks_unrated: bool,
        *,
        expected_version: int | None = None,
    ) -> repo.Parental:
        """Limit what ``user_id`` sees; ``ValueError`` for a rating no system knows.

        Readers (the library's visibility rule) read the limit from the row with each
        request, so it applies at once on every worker with no announcement.
        """
        age = None if max_rating is None else limit_age(max_rating)
        label = None if max_rating is None else max_rating.strip()
        async with self.db.transaction() as conn:
            await self._locked(conn, user_id, expected_version)
            updated = await repo.set_parental(conn, user_id, label, age, blocks_unrated)
        assert updated is not None  # locked above
        return updated

    async def change_own_password(
        self, user_id: int, current: str, new: str, keep_session_hash: str | None
    ) -> int:
        """Replace the password; every other session ends. Returns how many ended."""
        check_password(new)
        async with self.db.connection() as conn:
            user = await repo.user_by_id(conn, user_id)
        if user is None:
            raise UserNotFound()
        if not await self.auth.hasher.verify(user.password_hash, current):
            raise WrongPassword()
        password_hash = await self.auth.hasher.hash(new)
        async with self.db.transaction() as conn:
            await repo.update_user(
                conn, user_id, password_hash=password_hash, must_change_password=False
            )
            ended = await repo.delete_other_sessions(conn, user_id, keep_session_hash)
            await self.auth.publisher.notify(conn, encode_user(user_id))
        await self._announce(user_id)
        return ended

    async def _locked(
        self, conn: repo.Conn, user_id: int, expected_version: int | None
    ) -> repo.UserRecord:
        current = await repo.lock_user(conn, user_id)
        if current is None:
            raise UserNotFound()
        if expected_version is not None and current.version != expected_version:
            raise VersionMismatch(current.version)
        return current

    async def _announce(self, user_id: int) -> None:
        """This worker forgets at once; other hosts hear it through Redis as well."""
        self.auth.authenticator.revoke_user(user_id)
        await self.auth.publisher.broadcast(encode_user(user_id))


def check_password(password: str) -> None:
    """``ValueError`` if the password's length is outside the allowed range."""
    check_new_credentials("x", password)
