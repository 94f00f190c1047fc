"""Migrations: the modules' files, the runner, the advisory lock, checksums, and the upgrade
of a database migrated before modules owned their SQL (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from revenge.infra.db import (
    DatabaseNewerThanCode,
    Migration,
    MigrationChecksumMismatch,
    MigrationError,
    MigrationOutOfOrder,
    applied_migrations,
    load_migrations,
    migrate,
)
from revenge.infra.db.migrate import LOCK_KEY, checksum, parse_name
from revenge.wiring import migrations as module_migrations

pytestmark = pytest.mark.integration


def _write(folder: Path, files: dict[str, str], module: str = "t") -> list[Migration]:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return load_migrations(module, folder)


def _shipped() -> list[Migration]:
    from revenge.config import load_settings

    return list(module_migrations(load_settings(env={})))


def test_shipped_migrations_follow_the_convention() -> None:
    migrations = _shipped()
    assert migrations[0].ident == "core/0001_init.sql"  # the platform's, always first
    keys = [m.key for m in migrations]
    assert len(keys) == len(set(keys))
    for m in migrations:
        assert parse_name(m.name) is not None
        assert m.checksum == checksum(m.sql)
    by_module = [m.module for m in migrations]
    assert by_module.index("auth") < by_module.index("search")  # the module list's order


async def test_applies_the_shipped_migrations_once(fresh_pg_url: str) -> None:
    shipped = _shipped()
    idents = [m.ident for m in shipped]
    assert await migrate(fresh_pg_url, shipped) == idents
    assert await migrate(fresh_pg_url, shipped) == []
    recorded = await applied_migrations(fresh_pg_url)
    assert sorted(recorded) == sorted(m.key for m in shipped)
    with psycopg.connect(fresh_pg_url) as conn:
        assert conn.execute(
            "SELECT to_regprocedure('set_updated_at()') IS NOT NULL"
        ).fetchone() == (True,)


async def test_numbers_are_per_module(fresh_pg_url: str, tmp_path: Path) -> None:
    """Two modules may both ship 0001: identity is (module, version)."""
    library = _write(
        tmp_path / "library", {"0001_library.sql": "CREATE TABLE lib (n int);"}, "library"
    )
    people = _write(tmp_path / "people", {"0001_people.sql": "CREATE TABLE ppl (n int);"}, "people")
    assert await migrate(fresh_pg_url, [*library, *people]) == [
        "library/0001_library.sql",
        "people/0001_people.sql",
    ]
    assert sorted(await applied_migrations(fresh_pg_url)) == [("library", 1), ("people", 1)]


async def test_a_database_migrated_before_module_ownership_upgrades_in_place(
    fresh_pg_url: str,
) -> None:
    """The previous runner's table (version only) and files: nothing re-applied or changed."""
    shipped = _shipped()
    legacy = [m for m in shipped if m.name in ("0001_init.sql", "0002_auth.sql", "0003_search.sql")]
    assert [m.version for m in legacy] == [1, 2, 3]
    with psycopg.connect(fresh_pg_url, autocommit=True) as conn:
        # Exactly what the previous runner created and recorded.
        conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
            " duration_ms integer NOT NULL)"
        )
        for m in legacy:
            conn.execute(m.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, duration_ms)"
                " VALUES (%s, %s, %s, 1)",
                (m.version, m.name, m.checksum),
            )
        conn.execute("INSERT INTO users (username, password_hash) VALUES ('kept', 'x')")
    applied = await migrate(fresh_pg_url, shipped)
    assert applied == [m.ident for m in shipped if m not in legacy]  # only files new since
    recorded = await applied_migrations(fresh_pg_url)
    names = {key: name for key, (name, _) in recorded.items()}
    assert (
        names.items()
        >= {
            ("core", 1): "0001_init.sql",
            ("auth", 2): "0002_auth.sql",
            ("search", 3): "0003_search.sql",
        }.items()
    )
    assert await migrate(fresh_pg_url, shipped) == []
    with psycopg.connect(fresh_pg_url) as conn:
        assert conn.execute("SELECT username FROM users").fetchall() == [("kept",)]


async def test_new_files_are_applied_in_order(fresh_pg_url: str, tmp_path: Path) -> None:
    first = _write(tmp_path, {"0001_a.sql": "CREATE TABLE a (n int);"})
    assert await migrate(fresh_pg_url, first) == ["t/0001_a.sql"]
    more = _write(
        tmp_path,
        {
            "0003_c.sql": "INSERT INTO b VALUES (3);",
            "0002_b.sql": "CREATE TABLE b (n int); INSERT INTO b VALUES (2);",
        },
    )
    assert await migrate(fresh_pg_url, more) == ["t/0002_b.sql", "t/0003_c.sql"]
    with psycopg.connect(fresh_pg_url) as conn:
        assert conn.execute("SELECT n FROM b ORDER BY n").fetchall() == [(2,), (3,)]


async def test_concurrent_appliers_apply_each_file_exactly_once(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    # Neither file is idempotent: a second application would fail (table exists)
    # or double the rows, so a race shows up as an error or a wrong count.
    migrations = _write(
        tmp_path,
        {
            "0001_slow.sql": "CREATE TABLE runs (n int); SELECT pg_sleep(0.3);",
            "0002_count.sql": "INSERT INTO runs VALUES (1);",
        },
    )
    results = await asyncio.gather(*(migrate(fresh_pg_url, migrations) for _ in range(6)))
    applied = [r for r in results if r]
    assert applied == [["t/0001_slow.sql", "t/0002_count.sql"]]
    assert results.count([]) == 5
    with psycopg.connect(fresh_pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)


async def test_changed_applied_file_is_an_error_naming_it(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    migrations = _write(tmp_path, {"0001_a.sql": "CREATE TABLE a (n int);"})
    await migrate(fresh_pg_url, migrations)
    edited = _write(
        tmp_path,
        {"0001_a.sql": "CREATE TABLE a (n bigint);", "0002_b.sql": "CREATE TABLE b ();"},
    )
    with pytest.raises(MigrationChecksumMismatch, match=r"t/0001_a\.sql was changed"):
        await migrate(fresh_pg_url, edited)
    # Nothing after the mismatch ran.
    assert list(await applied_migrations(fresh_pg_url)) == [("t", 1)]


async def test_line_endings_do_not_change_the_checksum(fresh_pg_url: str, tmp_path: Path) -> None:
    await migrate(fresh_pg_url, _write(tmp_path, {"0001_a.sql": "CREATE TABLE a (n int);\n"}))
    (tmp_path / "0001_a.sql").write_bytes(b"CREATE TABLE a (n int);\r\n")
    assert await migrate(fresh_pg_url, load_migrations("t", tmp_path)) == []


def test_the_checksum_ignores_line_endings_whatever_read_the_text() -> None:
    """read_text() already turns CRLF into LF; a text from anywhere else must not differ."""
    assert checksum("CREATE TABLE a (n int);\r\n") == checksum("CREATE TABLE a (n int);\n")


async def test_a_migration_and_its_record_commit_together(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    """If recording the file fails, what the file did is rolled back too: never applied
    but unrecorded (the next start would apply it again)."""
    migrations = _write(
        tmp_path,
        {
            "0001_x.sql": "CREATE TABLE x (n int); "
            "ALTER TABLE schema_migrations ADD COLUMN must int NOT NULL;"  # the record fails
        },
    )
    with pytest.raises(MigrationError, match=r"0001_x\.sql failed"):
        await migrate(fresh_pg_url, migrations)
    with psycopg.connect(fresh_pg_url) as conn:
        assert conn.execute("SELECT to_regclass('x')").fetchone() == (None,)


async def test_failing_file_rolls_back_and_names_itself(fresh_pg_url: str, tmp_path: Path) -> None:
    migrations = _write(
        tmp_path,
        {
            "0001_ok.sql": "CREATE TABLE ok (n int);",
            "0002_bad.sql": "CREATE TABLE half (n int); SELECT * FROM nowhere;",
        },
    )
    with pytest.raises(MigrationError, match=r"t/0002_bad\.sql failed: .*nowhere"):
        await migrate(fresh_pg_url, migrations)
    assert list(await applied_migrations(fresh_pg_url)) == [("t", 1)]
    with psycopg.connect(fresh_pg_url) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)


async def test_no_transaction_files_run_outside_one(fresh_pg_url: str, tmp_path: Path) -> None:
    migrations = _write(
        tmp_path,
        {
            "0001_t.sql": "CREATE TABLE t (n int);",
            "0002_idx.sql": "-- revenge:no-transaction\nCREATE INDEX CONCURRENTLY t_n ON t (n);",
        },
    )
    assert not migrations[1].in_transaction
    assert await migrate(fresh_pg_url, migrations) == ["t/0001_t.sql", "t/0002_idx.sql"]


def test_badly_named_or_duplicate_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        _write(tmp_path / "a", {"1_init.sql": "SELECT 1;"})
    with pytest.raises(MigrationError, match="share version 0002"):
        _write(tmp_path / "b", {"0002_auth.sql": "SELECT 1;", "0002_search.sql": "SELECT 1;"})


async def test_lock_held_elsewhere_times_out_with_an_error(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    migrations = _write(tmp_path, {"0001_a.sql": "CREATE TABLE a (n int);"})
    async with await psycopg.AsyncConnection.connect(fresh_pg_url, autocommit=True) as holder:
        await holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        with pytest.raises(MigrationError, match="migration lock"):
            await migrate(fresh_pg_url, migrations, lock_timeout=0.3)
    assert await migrate(fresh_pg_url, migrations) == ["t/0001_a.sql"]


async def test_a_database_newer_than_the_code_is_refused_before_anything_is_applied(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    """A newer Revenge applied auth/0007; this code ships up to 0002 plus a pending file of
    another module: the run stops naming the file and what to do, nothing is applied."""
    newer = _write(
        tmp_path / "newer",
        {"0001_a.sql": "CREATE TABLE a (n int);", "0002_b.sql": "CREATE TABLE b (n int);",
         "0007_new.sql": "CREATE TABLE from_the_future (n int);"},
        "auth",
    )  # fmt: skip
    await migrate(fresh_pg_url, newer)
    other = _write(tmp_path / "other", {"0001_o.sql": "CREATE TABLE o (n int);"}, "other")
    with pytest.raises(DatabaseNewerThanCode) as refused:
        await migrate(fresh_pg_url, [*newer[:2], *other])
    message = str(refused.value)
    assert "auth/0007_new.sql" in message
    assert "Nothing was changed" in message and "revenge restore" in message
    with psycopg.connect(fresh_pg_url) as conn:
        assert conn.execute("SELECT to_regclass('o')").fetchone() == (None,)
    assert ("other", 1) not in await applied_migrations(fresh_pg_url)


async def test_a_module_no_longer_installed_keeps_its_tables_and_does_not_block(
    fresh_pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    extra = _write(tmp_path / "extra", {"0001_x.sql": "CREATE TABLE x (n int);"}, "thirdparty")
    ours = _write(tmp_path / "ours", {"0001_t.sql": "CREATE TABLE t (n int);"})
    await migrate(fresh_pg_url, [*ours, *extra])
    with caplog.at_level("WARNING", logger="revenge.infra.db.migrate"):
        assert await migrate(fresh_pg_url, ours) == []
    assert "'thirdparty'" in caplog.text


async def test_a_new_file_numbered_below_an_applied_one_is_refused(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    """Migrations only move forward: 0002 arriving after 0003 was applied would give an
    upgraded database another order than a fresh one."""
    first = _write(
        tmp_path / "a", {"0001_a.sql": "CREATE TABLE a (n int);", "0003_c.sql": "SELECT 1;"}
    )
    await migrate(fresh_pg_url, first)
    later = _write(tmp_path / "a", {"0002_b.sql": "CREATE TABLE b (n int);"})
    with pytest.raises(MigrationOutOfOrder, match=r"t/0002_b\.sql .* renumber it after 0003"):
        await migrate(fresh_pg_url, later)
    with psycopg.connect(fresh_pg_url) as conn:
        assert conn.execute("SELECT to_regclass('b')").fetchone() == (None,)


async def test_serve_refuses_a_newer_database_with_the_message(fresh_pg_url: str) -> None:
    """The CLI's start path: exit 1 before serving, the message on stderr."""
    await migrate(fresh_pg_url, _shipped())
    with psycopg.connect(fresh_pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (module, version, name, checksum, duration_ms)"
            " VALUES ('auth', 9999, '9999_future.sql', %s, 1)",
            ("0" * 64,),
        )
    done = subprocess.run(
        [sys.executable, "-m", "revenge.cli", "migrate"],
        env={**os.environ, "REVENGE_DATABASE__URL": fresh_pg_url},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "newer than this Revenge" in done.stderr and "auth/9999_future.sql" in done.stderr
