"""A private PostgreSQL cluster run from the machine's own binaries (e.g. Debian's postgresql-15).

``initdb`` into the data folder on first use, ``pg_ctl start`` on a Unix socket
only (no TCP port), ``pg_ctl stop`` by the process that started it. As root the
server runs as the ``postgres`` OS user the distribution package created
(PostgreSQL refuses to run as root); the permissions of folders Revenge did not
create are never changed: a cluster that user could not reach goes elsewhere
(:func:`revenge.infra.db.embedded.cluster_path`).

Nothing is trusted: ``pg_hba.conf`` allows SCRAM passwords over the socket only.
The passwords (the ``postgres`` superuser's, for set-up, and the ``revenge``
role's, which owns the database the app uses) are generated on first start and
kept in ``<data_dir>/postgres.pgpass`` (mode 0600), which the URLs name as
libpq's ``passfile``: no secret appears in a URL or an environment variable.

The socket lives in the cluster folder (mode 0700), or, when that path is too
long for a Unix socket, in a fresh ``mkdtemp`` folder; either is checked with
``lstat`` (a directory, not a link, owned by the server's user, mode 0700)
before anything connects through it.

Sharing between processes: start-up runs under an ``flock`` on
``<data_dir>/postgres.lock``; a process that finds the server already running
joins it and never stops it. Only the starter (its pid is in
``<data_dir>/postgres.owner``) stops it; a server whose starter died is adopted
by the next process that joins it.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import re
import secrets
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


def blocking_folder(path: Path, owner: tuple[int, int]) -> Path | None:
    """The first existing folder above ``path`` that ``owner`` may not traverse, or None."""
    uid, gid = owner
    for folder in reversed(path.parents):
        try:
            info = folder.stat()
        except FileNotFoundError:
            return None  # created by us from here down
        if info.st_uid == uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return folder
    return None


def check_private_dir(folder: Path, uid: int) -> None:
    """``RuntimeError`` unless ``folder`` is a real directory of ``uid`` that nobody else may use."""
    try:
        info = folder.lstat()
    except OSError as exc:
        raise RuntimeError(f"socket folder {folder}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise RuntimeError(f"socket folder {folder} is not a directory (a link?): refusing it")
    if info.st_uid != uid:
        raise RuntimeError(f"socket folder {folder} belongs to uid {info.st_uid}, not {uid}")
    if info.st_mode & 0o077:
        raise RuntimeError(
            f"socket folder {folder} has mode {stat.S_IMODE(info.st_mode):o}; expected 700"
        )


def socket_dir_for(pgdata: Path, owner: tuple[int, int] | None) -> Path:
    """The cluster folder itself, unless its socket path would be too long for Unix sockets;
    then a new private folder (random name, created exclusively, 0700)."""
    if len(str(pgdata / _SOCKET_NAME)) <= _MAX_SOCKET_PATH:
        return pgdata
    folder = Path(tempfile.mkdtemp(prefix="revenge-pg-"))  # O_EXCL, 0700: nobody's but ours
    if owner:
        os.chown(folder, *owner)
    return folder


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
    server_uid = owner[0] if owner else os.getuid()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    owner_file = pgdata.parent / "postgres.owner"
    with _locked(pgdata.parent / "postgres.lock"):
        passwords = ensure_passwords(pgdata)
        socket_dir = running_socket_dir(pgdata)
        if socket_dir is not None:
            check_private_dir(socket_dir, server_uid)
            # A server whose starter died (crash, SIGKILL) is adopted, so someone stops it.
            adopt = not _pid_alive(_read_pid(owner_file))
            if adopt:
                owner_file.write_text(str(os.getpid()))
            return admin_url(socket_dir, pgdata), adopt
        if not (pgdata / "PG_VERSION").exists():
            pgdata.mkdir(mode=0o700, exist_ok=True)
            if owner:
                os.chown(pgdata, *owner)
            _initdb(binaries, pgdata, owner, passwords[SUPERUSER])
        socket_dir = socket_dir_for(pgdata, owner)
        check_private_dir(socket_dir, server_uid)
        _run(
            [str(binaries.bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "60",
             "-l", str(pgdata / "log"),
             "-o", f"-c listen_addresses='' -k {socket_dir}", "start"],
            owner,
            timeout=90,
        )  # fmt: skip
        owner_file.write_text(str(os.getpid()))
        return admin_url(socket_dir, pgdata), True


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


def _initdb(binaries: Binaries, pgdata: Path, owner: tuple[int, int] | None, password: str) -> None:
    # The superuser's password reaches initdb in a file only the server's user can read.
    fd, pwfile = tempfile.mkstemp(prefix=".pw-", dir=pgdata.parent)
    try:
        os.write(fd, password.encode() + b"\n")
        os.close(fd)
        if owner:
            os.chown(pwfile, *owner)
        base = [str(binaries.bindir / "initdb"), "-D", str(pgdata), "-U", SUPERUSER,
                "--auth=scram-sha-256", f"--pwfile={pwfile}",
                "--encoding=UTF8", "--no-instructions"]  # fmt: skip
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
    finally:
        Path(pwfile).unlink(missing_ok=True)


def stop_argv(binaries: Binaries, pgdata: Path, mode: str = "fast") -> list[str]:
    """``pg_ctl stop``; ``immediate`` skips the shutdown checkpoint (the next start replays WAL)."""
    return [str(binaries.bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-m", mode, "stop"]


def run_as() -> tuple[int, int] | None:
    """(uid, gid) the server runs as, or None for this process's own user."""
    return _run_as()


def stop(binaries: Binaries, pgdata: Path) -> None:
    owner = _run_as()
    socket_dir = running_socket_dir(pgdata)
    if socket_dir is not None:
        _run(stop_argv(binaries, pgdata), owner)
        if socket_dir != pgdata and socket_dir.name.startswith("revenge-pg-"):
            shutil.rmtree(socket_dir, ignore_errors=True)  # our mkdtemp folder


# -- passwords --------------------------------------------------------------------------

SUPERUSER = "postgres"
APP_ROLE = "revenge"
HBA = """\
# Written by Revenge: SCRAM passwords over the Unix socket; no TCP, nothing trusted.
local all all scram-sha-256
"""


def pgpass_path(pgdata: Path) -> Path:
    return pgdata.parent / "postgres.pgpass"


def ensure_passwords(pgdata: Path) -> dict[str, str]:
    """``role -> password`` from the password file, created (0600, exclusively) on first use."""
    path = pgpass_path(pgdata)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            for role in (SUPERUSER, APP_ROLE):
                handle.write(f"*:*:*:{role}:{secrets.token_urlsafe(32)}\n")
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RuntimeError(f"{path} must be a file of this user with mode 600")
    passwords = {}
    for line in path.read_text().splitlines():
        fields = line.split(":")
        if len(fields) == 5:
            passwords[fields[3]] = fields[4]
    if set(passwords) != {SUPERUSER, APP_ROLE}:
        raise RuntimeError(f"{path} lacks the {SUPERUSER} or {APP_ROLE} password")
    return passwords


def write_hba(pgdata: Path) -> bool:
    """Our ``pg_hba.conf`` (in place: its owner stays the server's user); True when it changed."""
    hba = pgdata / "pg_hba.conf"
    if hba.read_text() == HBA:
        return False
    with hba.open("w") as handle:
        handle.write(HBA)
    return True


def admin_url(socket_dir: Path, pgdata: Path) -> str:
    return f"postgresql://{SUPERUSER}@/postgres?host={socket_dir}&passfile={pgpass_path(pgdata)}"
