"""``revenge user create [--admin]`` against a fresh database."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from tests.cheap_settings import FAST_ARGON2

pytestmark = pytest.mark.e2e


def user_create(url: str, *args: str, password: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **FAST_ARGON2, "REVENGE_DATABASE__URL": url}
    return subprocess.run(
        [sys.executable, "-m", "revenge.cli", "user", "create", *args, "--password-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_user_create_admin_on_a_new_database(fresh_pg_url: str) -> None:
    made = user_create(fresh_pg_url, "root", "--admin", password="a long admin password")
    assert made.returncode == 0, made.stderr
    assert "created admin 'root'" in made.stdout
    assert "a long admin password" not in made.stdout + made.stderr
    with psycopg.connect(fresh_pg_url) as conn:
        row = conn.execute(
            "SELECT role, password_hash FROM users WHERE username = 'root'"
        ).fetchone()
    assert row is not None and row[0] == "admin" and row[1].startswith("$argon2id$")

    again = user_create(fresh_pg_url, "ROOT", password="another long password")
    assert again.returncode == 1 and "already exists" in again.stderr
    short = user_create(fresh_pg_url, "bob", password="short")
    assert short.returncode == 1 and "password" in short.stderr
    plain = user_create(fresh_pg_url, "carol", password="carol's long password")
    assert plain.returncode == 0 and "created user 'carol'" in plain.stdout
