"""Upgrades from an earlier schema, built from git: the migration files as an earlier commit
had them, applied to a real PostgreSQL, filled with users, sessions, API keys, libraries,
items and watch state; then ``revenge migrate`` of this tree upgrades it, every row of every
table is compared with what it held, and ``revenge serve`` logs the old user in.

Two earlier states: the parent of the newest commit that changed a migration file (so the
newest migration is always exercised as an upgrade; a state main briefly had that migrate
refuses, two files with one number, is skipped), and a pinned one (the schema before
``auth/0005_user_admin.sql``). A migration file edited after it landed fails here (its
checksum differs from the one the old database recorded): add a new file instead.

Needs the git history (CI clones it whole); outside a git checkout the test is skipped.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import psycopg
import pytest
from argon2 import PasswordHasher, Type

from revenge.infra.db import Migration, migrate
from revenge.infra.db.migrate import checksum, parse_name
from revenge.wiring import MODULES
from tests.backup_support import revenge, table_rows
from tests.e2e.conftest import serve_revenge

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PINNED = "0885ab44e63e40aa38946af95ed50453aae22e6c"
"""main before auth/0005_user_admin.sql: core 0001, auth 0002-0004, search 0003, library 0001."""
_FILE = re.compile(
    r"^python/revenge/(?:infra/db|modules/(?P<module>[a-z0-9_]+))/migrations/(?P<name>\d{4}_[a-z0-9_]+\.sql)$"
)
PASSWORD = "an old but good password"


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@pytest.fixture(scope="module", autouse=True)
def _history() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the earlier migrations come from the history")
    if _git("rev-parse", "--is-shallow-repository").strip() == "true":
        pytest.fail("a shallow clone: fetch the whole history (git fetch --unshallow)")


def previous_state() -> str:
    """The parent of the newest commit that changed a migration file, skipping states no
    database can have run (two files of one module with one number: migrate refuses it)."""
    changed = _git(
        "log", "--format=%H", "-n", "30", "--",
        "python/revenge/infra/db/migrations/*.sql", "python/revenge/modules/*/migrations/*.sql",
    ).split()  # fmt: skip
    assert changed, "no commit changed a migration file"
    for commit in changed:
        parent = _git("rev-parse", f"{commit}^").strip()
        keys = [m.key for m in migrations_at(parent)]
        if len(keys) == len(set(keys)):
            return parent
    raise AssertionError("no runnable migration state in the last 30 changes")


def migrations_at(ref: str) -> list[Migration]:
    """The migrations as ``ref`` shipped them, in the order this tree applies modules."""
    found: dict[str, list[Migration]] = {}
    for path in _git("ls-tree", "-r", "--name-only", ref, "--", "python/revenge").splitlines():
        match = _FILE.match(path)
        if match is None:
            continue
        module = match["module"] or "core"
        name = match["name"]
        parsed = parse_name(name)
        assert parsed is not None
        text = _git("show", f"{ref}:{path}")
        found.setdefault(module, []).append(
            Migration(module, parsed[0], name, text, checksum(text))
        )
    order = ["core", *(path.rsplit(".", 1)[-1] for path in MODULES)]
    ordered = sorted(found, key=lambda m: order.index(m) if m in order else len(order))
    return [m for module in ordered for m in sorted(found[module], key=lambda m: m.version)]


def fill(url: str) -> None:
    """Rows in every kind of table an operator cannot rebuild by rescanning (old columns only)."""
    hashed = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID).hash(
        PASSWORD
    )
    with psycopg.connect(url) as conn:
        users = [
            conn.execute(
                "INSERT INTO users (username, username_key, password_hash, role, disabled,"
                " last_login_at) VALUES (%s, %s, %s, %s, %s, now() - interval '3 days')"
                " RETURNING id",
                (name, name.lower(), hashed, role, disabled),
            ).fetchone()[0]  # type: ignore[index]
            for name, role, disabled in (
                ("Admin", "admin", False),
                ("viewer", "user", False),
                ("gone", "user", True),
            )
        ]
        conn.execute(
            "INSERT INTO sessions (token_hash, user_id, expires_at, client, ip)"
            " VALUES (%s, %s, now() + interval '30 days', 'tv', '192.0.2.7')",
            ("a" * 64, users[1]),
        )
        conn.execute(
            "INSERT INTO api_keys (id, user_id, name, key_hash) VALUES (%s, %s, 'scripts', %s)",
            ("0123456789abcdef", users[0], "b" * 64),
        )
        library = conn.execute(
            "INSERT INTO libraries (name, kind, settings) VALUES ('Films', 'movies',"
            ' \'{"language": "de"}\') RETURNING id'
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO library_roots (library_id, path, path_text) VALUES (%s, %s, %s)",
            (library, b"/media/films\xff", "/media/films\ufffd"),
        )
        conn.execute(
            "INSERT INTO library_grants (user_id, library_id) VALUES (%s, %s)", (users[1], library)
        )
        items = [
            conn.execute(
                "INSERT INTO items (library_id, kind, key, title, sort_title, year, genres,"
                " locked_fields, provider_ids, people) VALUES (%s, 'movie', %s, %s, %s, %s,"
                " %s, %s, %s, %s) RETURNING id",
                (
                    library,
                    f"movie:{n}",
                    f"Film {n}",
                    f"film {n:05d}",
                    1990 + n,
                    ["Drama"],
                    ["title"] if n % 2 else [],
                    json.dumps({"tmdb": str(1000 + n)}),
                    json.dumps([{"name": "A. Actor"}]),
                ),
            ).fetchone()[0]  # type: ignore[index]
            for n in range(20)
        ]
        for n, item in enumerate(items[:7]):
            conn.execute(
                "INSERT INTO user_item_state (user_id, item_id, position_ms, played, play_count,"
                " last_played_at, favourite) VALUES (%s, %s, %s, %s, %s, now(), %s)",
                (users[1], item, 60_000 * n, n % 3 == 0, n, n == 2),
            )


@pytest.mark.parametrize("which", ["previous", "pinned"])
def test_an_earlier_schema_with_data_upgrades_and_keeps_every_row(
    which: str, fresh_pg_url: str, tmp_path: Path
) -> None:
    ref = previous_state() if which == "previous" else PINNED
    _upgrade_from(ref, fresh_pg_url, tmp_path)


def _upgrade_from(ref: str, url: str, tmp_path: Path) -> None:
    old = migrations_at(ref)
    assert {m.module for m in old} >= {"core", "auth", "library"}, ref
    asyncio.run(migrate(url, old))
    fill(url)
    before = table_rows(url)
    assert len(before["public.items"]) == 20

    done = revenge("migrate", url=url)
    assert done.returncode == 0, done.stderr
    after = table_rows(url)
    with psycopg.connect(url) as conn:
        recorded = {
            (str(m), int(v))
            for m, v in conn.execute("SELECT module, version FROM schema_migrations")
        }
    assert recorded > {m.key for m in old}  # the newest file(s) applied as an upgrade
    with psycopg.connect(url) as conn:  # what auth/0005 added: defaults on the old rows
        assert conn.execute(
            "SELECT count(*) FROM users WHERE version = 1 AND NOT must_change_password"
        ).fetchone() == (3,)
    for table, rows in before.items():
        if table == "public.schema_migrations":
            continue
        old_rows = [json.loads(r) for r in rows]
        new_rows = [json.loads(r) for r in after[table]]
        assert len(new_rows) == len(old_rows), table
        projected = sorted(
            json.dumps({k: r[k] for k in old_rows[0]}, sort_keys=True) for r in new_rows
        ) if old_rows else []  # fmt: skip
        assert projected == sorted(json.dumps(r, sort_keys=True) for r in old_rows), table

    with serve_revenge(url, tmp_path, data_dir=tmp_path / ref[:8]) as server:
        reply = httpx.post(
            server.base_url + "/api/v1/auth/login",
            json={"username": "viewer", "password": PASSWORD},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        me = httpx.get(
            server.base_url + "/api/v1/me",
            headers={"authorization": f"Bearer {reply.json()['token']}"},
            timeout=30,
        )
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "viewer"
