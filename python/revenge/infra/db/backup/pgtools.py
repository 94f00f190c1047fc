"""``pg_dump`` and ``pg_restore`` of a version that can talk to a given server.

A dump must be taken by a ``pg_dump`` at least as new as the server (an older one
refuses), and read by a ``pg_restore`` at least as new as the ``pg_dump`` that wrote
it. The embedded server runs from the machine's binaries (Debian's
``/usr/lib/postgresql/<major>/bin``) or from the ``pgserver`` wheel; the tools are
looked for beside them first, the exact major preferred, then any newer one, then
``PATH``.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

from revenge.infra.db import system_pg
from revenge.infra.db.backup.errors import BackupError

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


class ToolNotFound(BackupError):
    """No ``pg_dump``/``pg_restore`` new enough for the server is installed."""


def tool_major(path: Path) -> int | None:
    """The PostgreSQL major version of a client tool, from ``--version``."""
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    return int(match[1]) if match else None


def _pgserver_bindir() -> Path | None:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return None
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    return bindir if bindir.is_dir() else None


def _candidates(name: str) -> list[Path]:
    found = [b.bindir / name for b in system_pg.find_binaries()]
    pgserver = _pgserver_bindir()
    if pgserver is not None:
        found.append(pgserver / name)
    on_path = shutil.which(name)
    if on_path is not None:
        found.append(Path(on_path))
    return [path for path in found if path.exists()]


def find_tool(name: str, server_major: int) -> tuple[Path, int]:
    """The best ``name`` (``pg_dump``/``pg_restore``) for a server of ``server_major``.

    Raises :class:`ToolNotFound` naming what to install.
    """
    usable: list[tuple[int, Path]] = []
    for path in _candidates(name):
        major = tool_major(path)
        if major is not None and major >= server_major:
            usable.append((major, path))
    if not usable:
        raise ToolNotFound(
            f"no {name} for PostgreSQL {server_major} or newer is installed "
            f"(on Debian: apt-get install postgresql-client-{server_major})"
        )
    # The exact major first (it understands the server best), else the oldest newer one.
    major, path = min(usable, key=lambda item: (item[0] != server_major, item[0]))
    return path, major
