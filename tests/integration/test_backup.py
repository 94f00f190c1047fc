"""Backups against the machine's real PostgreSQL: bad files, busy and in-use databases,
newer and older schemas, a failed restore, a full disk. Every refusal leaves the
database exactly as it was and no stray database behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import subprocess
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from revenge import wiring
from revenge.config import load_settings
from revenge.infra.db import Migration, migrate
from revenge.infra.db.backup import (
    BackupBusy,
    BackupError,
    BackupInvalid,
    RestoreRefused,
    backup_name,
    create_backup,
    list_backups,
    prune_backups,
    restore_backup,
    verify_backup,
)
from revenge.infra.db.backup.archive import DUMP, MANIFEST, Manifest, write_archive
from revenge.infra.db.backup.create import LOCK_KEY
from tests.backup_support import databases, revenge, table_rows
from tests.conftest import PG_ADMIN_URL

pytestmark = pytest.mark.integration


def all_migrations() -> list[Migration]:
    return list(wiring.migrations(load_settings(env={})))


def _create(name: str) -> str:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


@pytest.fixture
def db() -> Iterator[tuple[str, str]]:
    """A migrated database with a few rows; every database named after it is dropped after."""
    name = f"revenge_bt_{uuid.uuid4().hex[:10]}"
    url = _create(name)
    asyncio.run(migrate(url, all_migrations()))
    fill(url, 200)
    yield name, url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for leftover in databases(PG_ADMIN_URL, name):
            conn.execute(f'DROP DATABASE IF EXISTS "{leftover}" WITH (FORCE)')


def fill(url: str, rows: int, payload: str = "'x'") -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO users (username, password_hash, role) "
            "SELECT 'user' || n || '-' || md5(random()::text), 'hash', 'user' "
            "FROM generate_series(1, %s) AS n",
            (max(1, rows // 100),),
        )
        conn.execute(
            "INSERT INTO search_documents (id, kind, title, overview) "
            f"SELECT md5(random()::text), 'movie', 'Title ' || n, {payload} "
            "FROM generate_series(1, %s) AS n",
            (rows,),
        )


def backup(url: str, dest: Path) -> Path:
    return create_backup(url, dest, revenge_version="test").path


def test_a_backup_holds_a_checked_manifest_and_a_dump(db: tuple[str, str], tmp_path: Path) -> None:
    name, url = db
    path = backup(url, tmp_path / "b.tar")
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # password and token hashes inside
    with tarfile.open(path) as tar:
        assert tar.getnames() == [MANIFEST, DUMP]
        raw = tar.extractfile(MANIFEST).read()  # type: ignore[union-attr]
        dump = tar.extractfile(DUMP).read()  # type: ignore[union-attr]
    manifest = Manifest.from_json(raw)
    assert manifest.database == name
    assert manifest.dump_sha256 == hashlib.sha256(dump).hexdigest()
    assert manifest.dump_bytes == len(dump)
    wanted = sorted((m.module, m.version, m.name, m.checksum) for m in all_migrations())
    assert sorted((r.module, r.version, r.name, r.checksum) for r in manifest.schema) == wanted
    assert manifest.server_major >= 13 and manifest.pg_dump_major >= manifest.server_major
    assert dump.startswith(b"PGDMP")  # pg_dump's custom (compressed) format
    assert verify_backup(path) == manifest
    assert not [p for p in tmp_path.iterdir() if p.name != "b.tar"]  # no temp files left


def _damaged(path: Path, tmp_path: Path) -> dict[str, Path]:
    data = path.read_bytes()
    with tarfile.open(path) as tar:
        dump = tar.getmember(DUMP)
        manifest = tar.getmember(MANIFEST)
    variants: dict[str, bytes] = {
        "empty": b"",
        "not a tar": os.urandom(4096),
        "cut in the manifest": data[: manifest.offset_data + 10],
        "cut before the dump": data[: dump.offset],
        "cut in the dump": data[: dump.offset_data + dump.size // 2],
        "cut at the dump's last byte": data[: dump.offset_data + dump.size - 1],
    }
    flipped = bytearray(data)
    flipped[dump.offset_data + dump.size // 3] ^= 0x01
    variants["one bit of the dump flipped"] = bytes(flipped)
    text = data[manifest.offset_data : manifest.offset_data + manifest.size]
    digest = Manifest.from_json(text).dump_sha256
    forged = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    variants["the manifest's checksum altered"] = data.replace(digest.encode(), forged.encode())
    out = {}
    for label, content in variants.items():
        target = tmp_path / f"{label.replace(' ', '_')}.tar"
        target.write_bytes(content)
        out[label] = target
    return out


def test_truncated_or_tampered_backups_are_refused_and_nothing_changes(
    db: tuple[str, str], tmp_path: Path
) -> None:
    name, url = db
    good = backup(url, tmp_path / "good.tar")
    fill(url, 10)  # the database moved on since the backup
    before = table_rows(url)
    for label, path in _damaged(good, tmp_path).items():
        with pytest.raises(BackupInvalid):
            verify_backup(path)
        with pytest.raises(BackupInvalid) as refused:
            restore_backup(url, path, all_migrations())
        assert str(path) in str(refused.value), label
        assert table_rows(url) == before, label
        assert databases(PG_ADMIN_URL, name) == {name}, label
    cli = revenge("restore", str(tmp_path / "one_bit_of_the_dump_flipped.tar"), url=url)
    assert cli.returncode == 1 and "checksum does not match" in cli.stderr
    assert "Traceback" not in cli.stderr


def test_restore_is_refused_while_the_database_is_in_use(
    db: tuple[str, str], tmp_path: Path
) -> None:
    name, url = db
    path = backup(url, tmp_path / "b.tar")
    before = table_rows(url)
    with (
        psycopg.connect(url, application_name="revenge-serve-stand-in"),
        pytest.raises(RestoreRefused, match=r"in use.*revenge-serve-stand-in"),
    ):
        restore_backup(url, path, all_migrations())
    assert table_rows(url) == before
    assert databases(PG_ADMIN_URL, name) == {name}


def test_one_backup_at_a_time(db: tuple[str, str], tmp_path: Path) -> None:
    _, url = db
    with psycopg.connect(url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        with pytest.raises(BackupBusy, match="another backup"):
            backup(url, tmp_path / "second.tar")
        cli = revenge("backup", "--to", str(tmp_path / "cli.tar"), url=url)
        assert cli.returncode == 1 and "another backup" in cli.stderr
        assert list(tmp_path.iterdir()) == []
    assert backup(url, tmp_path / "after.tar").exists()  # the lock was released


def test_unwritable_places_are_clear_errors(db: tuple[str, str], tmp_path: Path) -> None:
    _, url = db
    made = revenge("backup", "--to", "/proc/no-such-place/b.tar", url=url)
    assert made.returncode == 1 and "/proc/no-such-place" in made.stderr
    assert "Traceback" not in made.stderr
    missing = revenge("restore", str(tmp_path / "missing.tar"), url=url)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_restore_applies_newer_migrations(tmp_path: Path) -> None:
    name = f"revenge_bt_{uuid.uuid4().hex[:10]}"
    url = _create(name)
    try:
        migrations = all_migrations()
        asyncio.run(migrate(url, migrations[:-1]))
        path = backup(url, tmp_path / "old.tar")
        result = restore_backup(url, path, migrations, keep_previous=False)
        assert result.applied == [migrations[-1].ident]
        assert result.previous is None
        assert databases(PG_ADMIN_URL, name) == {name}
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT module, version FROM schema_migrations").fetchall()
        assert sorted(rows) == sorted(m.key for m in migrations)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for leftover in databases(PG_ADMIN_URL, name):
                conn.execute(f'DROP DATABASE IF EXISTS "{leftover}" WITH (FORCE)')


def test_a_backup_newer_than_the_code_is_refused(db: tuple[str, str], tmp_path: Path) -> None:
    name, url = db
    path = backup(url, tmp_path / "b.tar")
    before = table_rows(url)
    with pytest.raises(RestoreRefused, match="newer than this Revenge"):
        restore_backup(url, path, all_migrations()[:-1])
    assert table_rows(url) == before
    assert databases(PG_ADMIN_URL, name) == {name}


def test_a_failing_restore_leaves_the_old_database_intact(
    db: tuple[str, str], tmp_path: Path
) -> None:
    """A file that passes every check but that pg_restore cannot read."""
    name, url = db
    good = backup(url, tmp_path / "good.tar")
    manifest = verify_backup(good)
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"PGDMP" + os.urandom(5000))
    digest = hashlib.sha256(junk.read_bytes()).hexdigest()
    forged = dataclasses.replace(manifest, dump_sha256=digest, dump_bytes=junk.stat().st_size)
    write_archive(tmp_path / "forged.tar", forged, junk)
    before = table_rows(url)
    with pytest.raises(BackupError, match="pg_restore"):
        restore_backup(url, tmp_path / "forged.tar", all_migrations())
    assert table_rows(url) == before
    assert databases(PG_ADMIN_URL, name) == {name}  # the half-restored copy was dropped


def test_restore_keeps_or_drops_the_previous_database(db: tuple[str, str], tmp_path: Path) -> None:
    name, url = db
    path = backup(url, tmp_path / "b.tar")
    expected = table_rows(url)
    fill(url, 5)
    changed = table_rows(url)
    kept = restore_backup(url, path, all_migrations())
    assert kept.previous is not None and kept.previous.startswith(name)
    assert table_rows(url) == expected
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    assert table_rows(f"{base}/{kept.previous}") == changed
    dropped = restore_backup(url, path, all_migrations(), keep_previous=False)
    assert dropped.previous is None
    assert databases(PG_ADMIN_URL, name) == {name, kept.previous}


def test_pruning_keeps_the_newest(tmp_path: Path) -> None:
    names = [f"revenge-backup-2026010{d}T000000.000Z.tar" for d in range(1, 6)]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a backup")
    (tmp_path / ".revenge-backup-20260109T000000.000Z.tar.abcd.partial").write_bytes(b"x")
    removed = prune_backups(tmp_path, keep=2)
    assert [p.name for p in removed] == names[:3]
    assert [p.name for p in list_backups(tmp_path)] == names[3:]
    assert (tmp_path / "notes.txt").exists()
    assert backup_name() > names[-1]  # names sort in time order


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Real tmpfs mounts of a given size: writes past it fail with ENOSPC."""
    mounts: list[Path] = []

    def mount(size: int) -> Path:
        folder = tmp_path / f"disk{len(mounts)}"
        folder.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {result.stderr.strip()}")
        mounts.append(folder)
        return folder

    try:
        yield mount
    finally:
        for folder in mounts:
            subprocess.run(["umount", "-l", str(folder)], check=False)


RANDOM_TEXT = "encode(sha512(random()::text::bytea), 'base64')"  # compresses badly


def _check_full(url: str, disk: Path, earlier: Path, earlier_sum: str) -> None:
    with pytest.raises(BackupError, match="no space left") as full:
        backup(url, disk / backup_name())
    assert "earlier backups are untouched" in str(full.value)
    assert [p.name for p in disk.iterdir()] == [earlier.name]  # no partial files
    assert hashlib.sha256(earlier.read_bytes()).hexdigest() == earlier_sum
    cli = revenge("backup", "--to", str(disk / "cli.tar"), url=url)
    assert cli.returncode == 1 and "no space left" in cli.stderr, cli.stderr
    assert "Traceback" not in cli.stderr
    assert [p.name for p in disk.iterdir()] == [earlier.name]


def test_disk_full_during_the_dump(db: tuple[str, str], small_disk: Callable[[int], Path]) -> None:
    _, url = db
    disk = small_disk(1 << 20)
    earlier = backup(url, disk / backup_name())
    earlier_sum = hashlib.sha256(earlier.read_bytes()).hexdigest()
    fill(url, 20000, payload=RANDOM_TEXT)  # pg_dump's output alone outgrows the disk
    _check_full(url, disk, earlier, earlier_sum)


def test_disk_full_while_writing_the_archive(
    db: tuple[str, str], small_disk: Callable[[int], Path], tmp_path: Path
) -> None:
    _, url = db
    fill(url, 8000, payload=RANDOM_TEXT)
    probe = backup(url, tmp_path / "probe.tar")
    size = probe.stat().st_size
    # Room for an earlier backup and the dump, not for the archive made from it.
    disk = small_disk(size * 2 + size // 2)
    earlier = backup(url, disk / backup_name())
    earlier_sum = hashlib.sha256(earlier.read_bytes()).hexdigest()
    _check_full(url, disk, earlier, earlier_sum)
