"""A private PostgreSQL cluster run from the machine's own binaries (e.g. Debian's postgresql-15).

``initdb`` into the data folder on first use, ``pg_ctl start`` on a Unix socket
only (no TCP port), ``pg_ctl stop`` by the process that started it. As root the
server runs as the ``postgres`` OS user the distribution package created
(PostgreSQL refuses to run as root), and the folders above the cluster get the
"others may traverse" bit so that user can reach it.

Sharing between processes: start-up runs under an ``flock`` on
``<data_dir>/postgres.lock``; a process that finds the server already running
joins it and never stops it. Only the starter (its pid is in
``<data_dir>/postgres.owner``) stops it; a server whose starter died is adopted
by the next process that joins it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVICE_USER = "postgres"
_SOCKET_NAME = ".s.PGSQL.5432"
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin


@dataclass(frozen=True, slots=True)
class Binaries:
    bindir: Path
    sharedir: Path
    major: int

    def has_extension(self, name: str) -> bool:
        return (self.sharedir / "extension" / f"{name}.control").exists()


def find_binaries() -> list[Binaries]:
    """Installed PostgreSQL versions, newest first (Debian layout, then ``pg_config``)."""
    found: dict[Path, Binaries] = {}
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        version = bindir.parent.name
        if version.isdigit() and (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            share = Path("/usr/share/postgresql") / version
            found[bindir] = Binaries(bindir, share, int(version))
    try:
        out = subprocess.run(
            ["pg_config", "--bindir", "--sharedir", "--version"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.split("\n")  # fmt: skip
        bindir, share = Path(out[0]), Path(out[1])
        major = re.search(r"(\d+)", out[2])
        if major and bindir not in found and (bindir / "initdb").exists():
            found[bindir] = Binaries(bindir, share, int(major[1]))
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    return sorted(found.values(), key=lambda b: b.major, reverse=True)


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, or None to run as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise PermissionError(
            f"running as root needs the '{SERVICE_USER}' OS user to run PostgreSQL "
            "(created by the distribution's postgresql package)"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _run(cmd: list[str], owner: tuple[int, int] | None, timeout: float = 60) -> None:
    try:
        subprocess.run(
            cmd,
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=owner[0] if owner else None,
            group=owner[1] if owner else None,
            extra_groups=[] if owner else None,
            cwd="/",
        )
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-5:]
        raise RuntimeError(f"{Path(cmd[0]).name} failed: " + " / ".join(detail)) from None


def open_path_for(pgdata: Path) -> None:
    """Let the service user traverse the folders above the cluster (o+x, never read)."""
    for parent in pgdata.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def socket_dir_for(pgdata: Path) -> Path:
    """The cluster folder itself, unless its socket path would be too long for Unix sockets."""
    if len(str(pgdata / _SOCKET_NAME)) <= _MAX_SOCKET_PATH:
        return pgdata
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"revenge-pg-{digest}"


@contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def running_socket_dir(pgdata: Path) -> Path | None:
    """Socket folder of a live postmaster for ``pgdata`` (from ``postmaster.pid``), else None."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    if not _pid_alive(pid):
        return None
    return Path(lines[4]) if len(lines) > 4 and lines[4] else None


def start(binaries: Binaries, pgdata: Path) -> tuple[str, bool]:
    """Start or join the cluster; ``(admin URL, started by us)``. Blocking."""
    owner = _run_as()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    owner_file = pgdata.parent / "postgres.owner"
    with _locked(pgdata.parent / "postgres.lock"):
        socket_dir = running_socket_dir(pgdata)
        if socket_dir is not None:
            # A server whose starter died (crash, SIGKILL) is adopted, so someone stops it.
            adopt = not _pid_alive(_read_pid(owner_file))
            if adopt:
                owner_file.write_text(str(os.getpid()))
            return _url(socket_dir), adopt
        if not (pgdata / "PG_VERSION").exists():
            pgdata.mkdir(mode=0o700, exist_ok=True)
            if owner:
                os.chown(pgdata, *owner)
                open_path_for(pgdata)
            _initdb(binaries, pgdata, owner)
        elif owner:
            open_path_for(pgdata)
        socket_dir = socket_dir_for(pgdata)
        if socket_dir != pgdata:
            socket_dir.mkdir(mode=0o700, exist_ok=True)
            if owner:
                os.chown(socket_dir, *owner)
        _run(
            [str(binaries.bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "60",
             "-l", str(pgdata / "log"),
             "-o", f"-c listen_addresses='' -k {socket_dir}", "start"],
            owner,
            timeout=90,
        )  # fmt: skip
        owner_file.write_text(str(os.getpid()))
        return _url(socket_dir), True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()
    except OSError:
        return False


def _initdb(binaries: Binaries, pgdata: Path, owner: tuple[int, int] | None) -> None:
    base = [str(binaries.bindir / "initdb"), "-D", str(pgdata), "-U", "postgres",
            "--auth=trust", "--encoding=UTF8", "--no-instructions"]  # fmt: skip
    try:
        # C.UTF-8 gives lower()/upper() and full-text search sane rules beyond ASCII.
        _run([*base, "--locale=C.UTF-8"], owner)
    except RuntimeError:
        for leftover in pgdata.iterdir():
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
        _run([*base, "--locale=C"], owner)


def stop_argv(binaries: Binaries, pgdata: Path, mode: str = "fast") -> list[str]:
    """``pg_ctl stop``; ``immediate`` skips the shutdown checkpoint (the next start replays WAL)."""
    return [str(binaries.bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-m", mode, "stop"]


def run_as() -> tuple[int, int] | None:
    """(uid, gid) the server runs as, or None for this process's own user."""
    return _run_as()


def stop(binaries: Binaries, pgdata: Path) -> None:
    owner = _run_as()
    if running_socket_dir(pgdata) is not None:
        _run(stop_argv(binaries, pgdata), owner)


def _url(socket_dir: Path) -> str:
    return f"postgresql://postgres@/postgres?host={socket_dir}"
