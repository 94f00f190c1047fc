"""Administration outside a running server: ``revenge user create [--admin]``.

The caller migrates first (``revenge user create`` does, through the module list),
so the very first command on a new installation can create the first administrator.
"""

from __future__ import annotations

import psycopg

from revenge.config import Settings
from revenge.modules.auth import repository as repo
from revenge.modules.auth.passwords import PasswordHasher
from revenge.modules.auth.service import check_new_credentials
from revenge.modules.auth.usernames import comparable


async def create_user(
    url: str, settings: Settings, username: str, password: str, *, admin: bool = False
) -> repo.UserRecord:
    """Create a user; ``ValueError`` for a bad name or password, ``UsernameTaken`` if it exists."""
    name = check_new_credentials(username, password)
    hasher = PasswordHasher(settings.auth)
    try:
        password_hash = await hasher.hash(password)
    finally:
        hasher.close()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        async with conn.transaction():
            await repo.fill_username_keys(conn, comparable)  # rows an older release wrote
        return await repo.insert_user(
            conn, name, comparable(name), password_hash, "admin" if admin else "user"
        )


def forget_setup_code(url: str) -> None:
    """Drop the previous run's setup code: ``revenge serve`` does this before its workers
    start, so the first of them makes a fresh code and prints it (once, for all)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM setup_code")
