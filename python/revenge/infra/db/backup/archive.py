"""The backup file: one uncompressed tar holding ``manifest.json`` then ``database.dump``.

The dump is ``pg_dump --format=custom`` (compressed by pg_dump). The manifest records the
Revenge version, the schema (every applied migration: version, name, checksum), the
server's version, the time, and the dump's size and SHA-256. Reading checks the layout,
the size and the checksum before anything is restored, so a truncated, altered or
foreign file is refused. (The checksums catch damage, not a forger who rewrites the
manifest too: keep backups where only the operator can write.)

Writing goes to a hidden temporary file beside the destination, is flushed to disk and
then renamed over it: a failure (a full disk) never leaves a half file under a backup's
name, and never touches earlier backups.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tarfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from revenge.infra.db.backup.errors import BackupError, BackupInvalid

FORMAT = "revenge-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
_CHUNK = 1 << 20
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@dataclass(frozen=True, slots=True)
class SchemaRecord:
    """One applied migration, as ``schema_migrations`` records it (module ``""``: recorded
    before migrations had owners)."""

    module: str
    version: int
    name: str
    checksum: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a backup holds, and how to check it.

    >>> m = Manifest("0.1.0", "2026-01-01T00:00:00Z", "15.2", 15, 15, "revenge",
    ...              (SchemaRecord("core", 1, "0001_init.sql", "ab"),), "00" * 32, 10)
    >>> Manifest.from_json(m.to_json()) == m, m.schema_version
    (True, 1)
    """

    revenge_version: str
    created_at: str  # ISO 8601, UTC
    server_version: str
    server_major: int
    pg_dump_major: int
    database: str  # the name of the database that was dumped
    schema: tuple[SchemaRecord, ...]
    dump_sha256: str
    dump_bytes: int

    @property
    def schema_version(self) -> int:
        return max((record.version for record in self.schema), default=0)

    def to_json(self) -> bytes:
        data = {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}
        data["schema_version"] = self.schema_version
        return json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data: dict[str, Any] = json.loads(raw)
            if data.get("format") != FORMAT:
                raise BackupInvalid("not a Revenge backup (the manifest names another format)")
            if data.get("format_version") != FORMAT_VERSION:
                raise BackupInvalid(
                    f"backup format {data.get('format_version')!r} is not understood by this "
                    f"Revenge (it reads format {FORMAT_VERSION}); use a newer Revenge"
                )
            schema = tuple(
                SchemaRecord(
                    str(r["module"]), int(r["version"]), str(r["name"]), str(r["checksum"])
                )
                for r in data["schema"]
            )
            return cls(
                revenge_version=str(data["revenge_version"]),
                created_at=str(data["created_at"]),
                server_version=str(data["server_version"]),
                server_major=int(data["server_major"]),
                pg_dump_major=int(data["pg_dump_major"]),
                database=str(data["database"]),
                schema=schema,
                dump_sha256=str(data["dump_sha256"]),
                dump_bytes=int(data["dump_bytes"]),
            )
        except BackupInvalid:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupInvalid(f"the backup's manifest is damaged ({exc})") from None


def sha256_file(path: Path) -> tuple[str, int]:
    """(hex digest, size) of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def no_space_message(folder: Path, exc: OSError) -> str:
    try:
        free = os.statvfs(folder)
        left = f"{free.f_bavail * free.f_frsize / 1e6:.1f} MB free"
    except OSError:
        left = "free space unknown"
    return (
        f"no space left in {folder} for the backup ({exc.strerror}; {left}); "
        "nothing was replaced and earlier backups are untouched: free some space "
        "or choose another place with --to"
    )


@contextmanager
def _replacing(dest: Path) -> Iterator[BinaryIO]:
    """A file that becomes ``dest`` (mode 0600) only when the block ends without error."""
    temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.partial")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def write_archive(dest: Path, manifest: Manifest, dump: Path) -> None:
    """Write ``manifest`` and the dump file at ``dump`` as the backup ``dest``, atomically.

    Raises :class:`BackupError` with a clear message when the disk is full.
    """
    try:
        with (
            _replacing(dest) as handle,
            tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            raw = manifest.to_json()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(raw), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(raw))
            info = tar.gettarinfo(str(dump), arcname=DUMP)
            info.uid = info.gid = 0
            info.mode = 0o600
            info.uname = info.gname = ""
            with dump.open("rb") as source:
                tar.addfile(info, source)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise BackupError(no_space_message(dest.parent, exc)) from None
        raise


def read_archive(path: Path, into: Path) -> Manifest:
    """Check the backup at ``path`` and extract its dump as ``into/database.dump``.

    Raises :class:`BackupInvalid` for anything but a whole, unaltered backup.
    """
    try:
        with tarfile.open(path, mode="r:") as tar:
            members = iter(tar)
            first = next(members, None)
            if first is None or first.name != MANIFEST or not first.isfile():
                raise BackupInvalid(f"{path} is not a Revenge backup (no manifest first)")
            if first.size > 1 << 20:
                raise BackupInvalid(f"{path}: the manifest is implausibly large")
            source = tar.extractfile(first)
            assert source is not None
            manifest = Manifest.from_json(source.read())
            second = next(members, None)
            if second is None or second.name != DUMP or not second.isfile():
                raise BackupInvalid(f"{path} has no database dump after its manifest")
            if second.size != manifest.dump_bytes:
                raise BackupInvalid(
                    f"{path}: the dump holds {second.size} bytes, the manifest says "
                    f"{manifest.dump_bytes}"
                )
            digest, size = _copy_hashing(tar, second, into / DUMP)
            if next(members, None) is not None:
                raise BackupInvalid(f"{path} holds more than a manifest and a dump")
    except (tarfile.TarError, EOFError) as exc:
        raise BackupInvalid(f"{path} is truncated or damaged ({exc})") from None
    except FileNotFoundError:
        raise BackupInvalid(f"{path} does not exist") from None
    if size != manifest.dump_bytes or digest != manifest.dump_sha256:
        raise BackupInvalid(
            f"{path}: the dump's checksum does not match the manifest "
            f"(sha256 {digest[:16]}..., expected {manifest.dump_sha256[:16]}...); "
            "the file was altered or damaged"
        )
    return manifest


def _copy_hashing(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> tuple[str, int]:
    source = tar.extractfile(member)
    assert source is not None
    digest, size = hashlib.sha256(), 0
    with dest.open("wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return digest.hexdigest(), size
