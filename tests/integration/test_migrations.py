"""Migrations: the packaged files, the runner, the advisory lock and checksums (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from revenge.infra.database import (
    Migration,
    MigrationChecksumMismatch,
    MigrationError,
    applied_migrations,
    load_migrations,
    migrate,
)
from revenge.infra.db.migrate import LOCK_KEY, checksum, parse_name

pytestmark = pytest.mark.integration


def _write(folder: Path, files: dict[str, str]) -> list[Migration]:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return load_migrations(folder)


def test_packaged_migrations_follow_the_convention() -> None:
    migrations = load_migrations()
    assert migrations[0].name == "0001_init.sql"
    versions = [m.version for m in migrations]
    assert versions == sorted(set(versions))
    for m in migrations:
        assert parse_name(m.name) is not None
        assert m.checksum == checksum(m.sql)


async def test_applies_the_packaged_migrations_once(fresh_pg_url: str) -> None:
    names = [m.name for m in load_migrations()]
    assert await migrate(fresh_pg_url) == names
    assert await migrate(fresh_pg_url) == []
    recorded = await applied_migrations(fresh_pg_url)
    assert [name for name, _ in recorded.values()] == names
    with psycopg.connect(fresh_pg_url) as conn:
        assert conn.execute(
            "SELECT to_regprocedure('set_updated_at()') IS NOT NULL"
        ).fetchone() == (True,)


async def test_new_files_are_applied_in_order(fresh_pg_url: str, tmp_path: Path) -> None:
    first = _write(tmp_path, {"0001_a.sql": "CREATE TABLE a (n int);"})
    assert await migrate(fresh_pg_url, first) == ["0001_a.sql"]
    more = _write(
        tmp_path,
        {
            "0003_c.sql": "INSERT INTO b VALUES (3);",
            "0002_b.sql": "CREATE TABLE b (n int); INSERT INTO b VALUES (2);",
        },
    )
    assert await migrate(fresh_pg_url, more) == ["0002_b.sql", "0003_c.sql"]
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
    assert applied == [["0001_slow.sql", "0002_count.sql"]]
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
    with pytest.raises(MigrationChecksumMismatch, match=r"0001_a\.sql was changed"):
        await migrate(fresh_pg_url, edited)
    # Nothing after the mismatch ran.
    assert list(await applied_migrations(fresh_pg_url)) == [1]


async def test_line_endings_do_not_change_the_checksum(fresh_pg_url: str, tmp_path: Path) -> None:
    await migrate(fresh_pg_url, _write(tmp_path, {"0001_a.sql": "CREATE TABLE a (n int);\n"}))
    (tmp_path / "0001_a.sql").write_bytes(b"CREATE TABLE a (n int);\r\n")
    assert await migrate(fresh_pg_url, load_migrations(tmp_path)) == []


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
    with pytest.raises(MigrationError, match=r"0002_bad\.sql failed: .*nowhere"):
        await migrate(fresh_pg_url, migrations)
    assert list(await applied_migrations(fresh_pg_url)) == [1]
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
    assert await migrate(fresh_pg_url, migrations) == ["0001_t.sql", "0002_idx.sql"]


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
    assert await migrate(fresh_pg_url, migrations) == ["0001_a.sql"]
