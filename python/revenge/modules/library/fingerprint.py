"""A video's content fingerprint: finds a file moved or copied to another filesystem.

A rename keeps the inode (the scanner matches ``(device, inode, size)``); a copy to
another disk followed by deleting the original does not. The fingerprint is SHA-256 of
the size and the first and last 64 KiB: two reads, whatever the file's size. It is
recorded once per file content by the ``media_probe`` job (which reads the file anyway)
and read by the scanner only for candidates: a new path of the same size as a known file
whose own path is gone. A file moved before its first probe is therefore not recognised
(it is a new item and the old one goes missing, as before).
"""

from __future__ import annotations

import asyncio
import hashlib
import os

from revenge.infra.db import Database

__all__ = ["WINDOW", "fingerprint", "record_fingerprint"]

WINDOW = 64 * 1024
DIGEST = 16  # bytes kept: 128 bits among files of one exact size


def fingerprint(path: str | bytes, size: int) -> bytes | None:
    """The fingerprint of the file at ``path`` if it still has ``size`` bytes, else None.

    Blocking (two reads): call it in a thread.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        if os.fstat(fd).st_size != size:
            return None  # changed since it was listed: the next scan sees it
        digest = hashlib.sha256(size.to_bytes(8, "big"))
        digest.update(os.pread(fd, min(WINDOW, size), 0))
        if size > WINDOW:
            tail = max(size - WINDOW, WINDOW)
            digest.update(os.pread(fd, size - tail, tail))
    finally:
        os.close(fd)
    return digest.digest()[:DIGEST]


async def record_fingerprint(db: Database, file_id: int) -> bytes | None:
    """Compute and store file ``file_id``'s fingerprint; None when it cannot be read or it
    changed since the scan listed it (its size or mtime differ: the next scan re-reads it)."""
    row = await db.fetch_one(
        "SELECT path, size, mtime_ns FROM media_files WHERE id = %s", (file_id,)
    )
    if row is None:
        return None
    path, size, mtime_ns = bytes(row[0]), int(row[1]), int(row[2])

    def read() -> bytes | None:
        if os.stat(path).st_mtime_ns != mtime_ns:
            return None
        return fingerprint(path, size)

    try:
        found = await asyncio.to_thread(read)
    except OSError:
        return None  # vanished or unreadable: the probe records why
    if found is not None:
        await db.execute(
            "UPDATE media_files SET fingerprint = %s WHERE id = %s AND size = %s AND mtime_ns = %s",
            (found, file_id, size, mtime_ns),
        )
    return found
