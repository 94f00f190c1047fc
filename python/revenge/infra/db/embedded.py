"""The embedded default: with no ``database.url``, run PostgreSQL in the data folder.

Two ways to get a server, chosen in this order (``backend="auto"``):

1. ``system`` — the machine's own PostgreSQL binaries (e.g. Debian's
   postgresql-15 package), when they include the contrib extensions Revenge's
   migrations use (``pg_trgm`` for typo-tolerant search). See
   :mod:`revenge.infra.db.system_pg`.
2. ``pgserver`` — PostgreSQL 16 inside a pip wheel, so a machine without any
   PostgreSQL package still comes up. Its bundle has no contrib extensions
   (only plpgsql and pgvector), so migrations that need ``pg_trgm`` fail there.

A data folder initialised by one keeps using it (its ``PG_VERSION`` decides).
Each start records the cluster's major version, backend and binaries next to it
(:data:`MARKER`). At the next start a cluster no installed server can read (the
machine's PostgreSQL moved to a new major version) is refused with the exact
dump-and-restore steps (:func:`major_change_message`), and a recorded cluster
whose folder has gone is refused too, instead of silently starting an empty one.
The cluster lives in ``<server.data_dir>/postgres`` and listens on a Unix
socket only; Revenge uses a database named ``revenge`` in it.

Processes: resolve once in the serving parent (:func:`resolve_url_sync`, before
Granian starts its workers), export the URL as ``REVENGE_DATABASE__URL`` and
call the stop function at exit. Workers that resolve on their own still share
one server (start-up is serialised by a file lock; pgserver also refcounts),
but then the starter's exit stops it for everyone.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import logging
import os
import pwd
import subprocess
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from psycopg import sql

from revenge.infra.db import system_pg
from revenge.infra.db.errors import EmbeddedDatabaseError
from revenge.infra.db.guard import spawn_guard

if TYPE_CHECKING:
    from revenge.config import Settings

log = logging.getLogger(__name__)

DATABASE_NAME = "revenge"
CLUSTER_DIR = "postgres"
REQUIRED_EXTENSIONS = ("pg_trgm",)
PGSERVER_MAJOR = 16
GUARD_STOP_MODE = "immediate"
"""The owner died without stopping the server: stop it at once, as after a crash
(no shutdown checkpoint to wait for; WAL makes the next start consistent)."""
_CREATE_LOCK = 0x5245_5645_4E47_4501  # "REVENGE" + 1: creating the embedded database

MARKER = "postgres-version.json"
"""Next to the cluster: ``{"major": 15, "backend": "system", "bindir": ..., "revenge": ...}``."""

Backend = Literal["auto", "system", "pgserver"]
Stop = Callable[[], None]


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    url: str  # reaches the ``revenge`` database
    stop: Stop  # idempotent; stops the server if this process is its last user
    backend: Literal["system", "pgserver"]
    # Whether stop() can stop the server: with system binaries only the process that
    # started it; with pgserver any user, and the last one to stop does.
    stops_server: bool


_lock = threading.Lock()
_handles: dict[Path, tuple[Any, int]] = {}  # pgserver: cluster -> (handle, users in this process)
_guards: dict[Path, subprocess.Popen[bytes]] = {}  # pgserver: cluster -> its guard


ROOT_CLUSTERS = Path("/var/lib/revenge/clusters")
"""Run as root, a cluster the ``postgres`` user cannot reach in the data folder lives here."""


def cluster_path(data_dir: Path) -> Path:
    """``<data_dir>/postgres``; run as root, somewhere the server's OS user can reach.

    Revenge never opens up a folder it did not create (``/root`` stays 0700): when
    the ``postgres`` user could not traverse to the data folder, the cluster lives
    in ``/var/lib/revenge/clusters/<hash of the data folder>/postgres`` instead.
    """
    preferred = data_dir.expanduser().resolve() / CLUSTER_DIR
    if os.geteuid() != 0:
        return preferred
    try:
        owner = system_pg.run_as()
    except PermissionError:
        return preferred  # no postgres user: start_embedded says what to do
    if owner is None or system_pg.blocking_folder(preferred, owner) is None:
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:16]
    return ROOT_CLUSTERS / digest / CLUSTER_DIR


def relocated_from(cluster_home: Path) -> Path | None:
    """The data folder a cluster in :data:`ROOT_CLUSTERS` was moved away from (or None)."""
    try:
        return Path((cluster_home / "data_dir").read_text())
    except OSError:
        return None


def _say_where(data_dir: Path, pgdata: Path) -> None:
    preferred = data_dir.expanduser().resolve() / CLUSTER_DIR
    if pgdata != preferred:
        (pgdata.parent / "data_dir").write_text(str(preferred.parent))  # whose cluster this is
        owner = system_pg.run_as()
        blocker = system_pg.blocking_folder(preferred, owner) if owner else None
        log.warning(
            "running as root: the %s OS user cannot enter %s, and Revenge does not change the "
            "permissions of folders it did not create; the embedded PostgreSQL's data lives "
            "in %s (set server.data_dir to a folder that user can reach to keep it there)",
            system_pg.SERVICE_USER,
            blocker,
            pgdata,
        )


def _existing_major(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        return None


def marker_path(pgdata: Path) -> Path:
    return pgdata.parent / MARKER


def read_marker(pgdata: Path) -> dict[str, Any] | None:
    """What the last start recorded (None when nothing was, or the file is unreadable)."""
    try:
        recorded = json.loads(marker_path(pgdata).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or not isinstance(recorded.get("major"), int):
        return None
    return recorded


def record_major(pgdata: Path, backend: str, bindir: Path | None) -> None:
    """Write :data:`MARKER` for the cluster that just started (atomically: a crash leaves the old one)."""
    from revenge import __version__

    major = _existing_major(pgdata)
    if major is None:
        return
    recorded = read_marker(pgdata)
    if recorded is not None and recorded["major"] != major:
        log.warning(
            "the embedded PostgreSQL cluster in %s is now version %s (recorded: %s); "
            "it was upgraded outside Revenge",
            pgdata,
            major,
            recorded["major"],
        )
    body = {
        "major": major,
        "backend": backend,
        "bindir": str(bindir) if bindir is not None else None,
        "revenge": __version__,
    }
    if recorded is not None and {k: recorded.get(k) for k in body} == body:
        return
    target = marker_path(pgdata)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(body, indent=2) + "\n")
    os.replace(partial, target)


def major_change_message(pgdata: Path, existing: int, found: list[int]) -> str:
    """What to run when no installed server can read the cluster (its major version is gone)."""
    recorded = read_marker(pgdata) or {}
    by = f" (recorded by Revenge {recorded['revenge']})" if recorded.get("revenge") else ""
    newest = max(found, default=None)
    have = ", ".join(f"PostgreSQL {m}" for m in sorted(set(found))) or "no usable PostgreSQL"
    dump = f"revenge-pg{existing}.tar"
    target = f"PostgreSQL {newest}" if newest is not None else "the new PostgreSQL"
    return (
        f"{pgdata} holds a PostgreSQL {existing} cluster{by}, but this machine has {have}. "
        "One major version cannot read another's data folder, so nothing was started or "
        f"changed. To move the data to {target}: install PostgreSQL {existing} again next "
        f"to it (Debian: apt install postgresql-{existing}) and run: revenge postgres-upgrade "
        "(it dumps with the old server, restores into a new cluster, compares row counts and "
        "keeps the old folder). Or by hand:\n"
        f"  1. with PostgreSQL {existing} installed, run: revenge backup --to {dump}\n"
        f"  2. move the old cluster aside: mv {pgdata} {pgdata}.pg{existing}\n"
        f"  3. run: revenge restore {dump}   (a new {target} cluster is created and the "
        "backup restored into it, newer migrations applied)\n"
        f"  4. once Revenge serves from it, delete {pgdata}.pg{existing}.\n"
        f"Or keep PostgreSQL {existing} installed: Revenge goes on using it."
    )


def check_cluster(pgdata: Path) -> None:
    """Refuse a recorded cluster that has vanished (an empty one would start in its place)."""
    recorded = read_marker(pgdata)
    if recorded is not None and _existing_major(pgdata) is None:
        raise EmbeddedDatabaseError(
            f"{marker_path(pgdata)} records a PostgreSQL {recorded['major']} cluster in "
            f"{pgdata}, but it is not there (moved or deleted?). Nothing was started. Put it "
            "back, or restore a backup (revenge restore FILE after deleting "
            f"{marker_path(pgdata)}), or delete {marker_path(pgdata)} to start with an "
            "empty database"
        )


def _pgserver_installed() -> bool:
    return importlib.util.find_spec("pgserver") is not None


def choose_backend(pgdata: Path) -> tuple[Literal["system", "pgserver"], system_pg.Binaries | None]:
    """System binaries with the needed extensions, else pgserver; an existing cluster's version wins."""
    existing = _existing_major(pgdata)
    found = system_pg.find_binaries()
    for binaries in found:
        if existing is not None:
            if binaries.major == existing:
                return "system", binaries
        elif all(binaries.has_extension(ext) for ext in REQUIRED_EXTENSIONS):
            return "system", binaries
    if existing is not None and (existing != PGSERVER_MAJOR or not _pgserver_installed()):
        majors = [b.major for b in found] + ([PGSERVER_MAJOR] if _pgserver_installed() else [])
        raise EmbeddedDatabaseError(major_change_message(pgdata, existing, majors))
    return "pgserver", None


def start_embedded(data_dir: Path, backend: Backend = "auto") -> EmbeddedServer:
    """Start (or join) the cluster in ``data_dir``. Blocking; see :func:`resolve_url`."""
    pgdata = cluster_path(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _say_where(data_dir, pgdata)
    check_cluster(pgdata)
    if backend == "auto":
        chosen, binaries = choose_backend(pgdata)
    elif backend == "system":
        found = system_pg.find_binaries()
        if not found:
            raise EmbeddedDatabaseError("no PostgreSQL binaries installed on this machine")
        existing = _existing_major(pgdata)
        matching = [b for b in found if existing in (None, b.major)]
        if not matching:
            raise EmbeddedDatabaseError(
                major_change_message(pgdata, existing or 0, [b.major for b in found])
            )
        chosen, binaries = "system", matching[0]
    else:
        chosen, binaries = "pgserver", None
    if chosen == "system":
        assert binaries is not None
        server = _start_system(binaries, pgdata)
    else:
        server = _start_pgserver(pgdata)
    try:
        record_major(pgdata, chosen, binaries.bindir if binaries is not None else None)
    except OSError as exc:  # a read-only data folder still serves; the next start checks PG_VERSION
        log.warning("could not record the PostgreSQL version in %s: %s", marker_path(pgdata), exc)
    return server


def _start_system(binaries: system_pg.Binaries, pgdata: Path) -> EmbeddedServer:
    try:
        admin_url, started = system_pg.start(binaries, pgdata)
        url = _provision(admin_url, pgdata)
    except (OSError, RuntimeError, psycopg.Error) as exc:
        raise EmbeddedDatabaseError(
            f"could not start PostgreSQL {binaries.major} ({binaries.bindir}) in {pgdata}: "
            f"{exc}{_log_tail(pgdata)}"
        ) from exc
    done = threading.Event()
    # The postmaster is detached: without a guard it would outlive a SIGKILLed owner.
    guard = (
        spawn_guard(system_pg.stop_argv(binaries, pgdata, GUARD_STOP_MODE), system_pg.run_as())
        if started
        else None
    )

    def stop() -> None:
        if started and not done.is_set():
            done.set()
            _end_guard(guard)
            system_pg.stop(binaries, pgdata)

    return EmbeddedServer(url, stop, "system", started)


def _end_guard(guard: subprocess.Popen[bytes] | None) -> None:
    """A normal stop: the guard exits without stopping anything (we stop the server)."""
    if guard is not None and guard.poll() is None:
        guard.terminate()
        try:
            guard.wait(5)
        except subprocess.TimeoutExpired:
            guard.kill()
            guard.wait()


def _start_pgserver(pgdata: Path) -> EmbeddedServer:
    with _lock:
        server, users = _handles.get(pgdata, (None, 0))
        if server is None:
            if os.geteuid() == 0:
                # As root pgserver creates an OS user and opens the folders above the
                # cluster to everyone (g+rx, o+rx): not on our watch.
                raise EmbeddedDatabaseError(
                    "running as root, the embedded PostgreSQL needs the machine's PostgreSQL "
                    "with its contrib extensions (Debian: apt install postgresql); or run "
                    "revenge as an unprivileged user, or set database.url "
                    "(REVENGE_DATABASE__URL) to a PostgreSQL server"
                )
            server = _get_pgserver(pgdata)
            _guards[pgdata] = spawn_guard(_pgserver_stop_argv(pgdata), _pgserver_owner(server))
        _handles[pgdata] = (server, users + 1)
    try:
        url = _provision(server.get_uri(), pgdata)
    except (OSError, RuntimeError, psycopg.Error) as exc:
        _release(pgdata)
        raise EmbeddedDatabaseError(f"embedded PostgreSQL in {pgdata}: {exc}") from exc
    done = threading.Event()

    def stop() -> None:
        if not done.is_set():
            done.set()
            _release(pgdata)

    return EmbeddedServer(url, stop, "pgserver", True)


def _get_pgserver(pgdata: Path) -> Any:
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, containers)
            # and falls back to /tmp, which is fine for pgserver's lock file.
            warnings.simplefilter("ignore")
            import pgserver

            return pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    except Exception as exc:
        raise EmbeddedDatabaseError(
            f"could not start the embedded PostgreSQL (pgserver) in {pgdata}: "
            f"{exc}{_log_tail(pgdata)}"
        ) from exc


def _release(pgdata: Path) -> None:
    with _lock:
        server, users = _handles.get(pgdata, (None, 0))
        if server is None:
            return
        if users > 1:
            _handles[pgdata] = (server, users - 1)
            return
        del _handles[pgdata]
        guard = _guards.pop(pgdata, None)
    _end_guard(guard)
    server.cleanup()


def _pgserver_stop_argv(pgdata: Path) -> list[str]:
    from pgserver._commands import POSTGRES_BIN_PATH

    return [
        str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-w", "-m", GUARD_STOP_MODE, "stop"
    ]  # fmt: skip


def _pgserver_owner(server: Any) -> tuple[int, int] | None:
    user = getattr(server, "system_user", None)
    if not user:
        return None
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _log_tail(pgdata: Path) -> str:
    log_file = pgdata / "log"
    try:
        lines = log_file.read_text(errors="replace").splitlines()[-10:]
    except OSError:
        return ""
    return "\n" + "\n".join(lines)


def _provision(admin_url: str, pgdata: Path) -> str:
    """Roles, passwords, the ``revenge`` database and ``pg_hba.conf``; the app's URL.

    The app connects as ``revenge``, which owns its database (and may create the
    trusted extensions the migrations use) but is no superuser. Idempotent, and
    it upgrades a cluster from before (``trust`` for everyone, objects owned by
    ``postgres``). Passwords go to the server SCRAM-hashed, never in clear.
    """
    passwords = system_pg.ensure_passwords(pgdata)
    pgpass = system_pg.pgpass_path(pgdata)
    admin_url = _with_param(admin_url, "passfile", str(pgpass))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # Processes sharing the cluster start together: one provisions, the others wait here.
        conn.execute("SELECT pg_advisory_lock(%s)", (_CREATE_LOCK,))
        for role in (system_pg.SUPERUSER, system_pg.APP_ROLE):
            hashed = conn.pgconn.encrypt_password(
                passwords[role].encode(), role.encode(), b"scram-sha-256"
            ).decode()
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            options = "" if role == system_pg.SUPERUSER else " LOGIN NOSUPERUSER NOCREATEROLE"
            conn.execute(
                sql.SQL(verb + " ROLE {}" + options + " PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(hashed)
                )
            )
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        app = sql.Identifier(system_pg.APP_ROLE)
        if row is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE_NAME), app)
            )
        elif row[0] != system_pg.APP_ROLE:
            conn.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(DATABASE_NAME), app)
            )
            with psycopg.connect(_with_database(admin_url, DATABASE_NAME), autocommit=True) as db:
                db.execute(_REASSIGN)
        if system_pg.write_hba(pgdata):
            conn.execute("SELECT pg_reload_conf()")
    return _with_database(
        _with_param(admin_url, "passfile", str(pgpass)), DATABASE_NAME, user=system_pg.APP_ROLE
    )


_REASSIGN = """
DO $$
DECLARE r record;
BEGIN
    -- Objects an older Revenge created as the superuser pass to the app's role
    -- (extension members and sequences owned by a column stay as they are).
    FOR r IN
        SELECT c.oid::regclass AS name,
               CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                              WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END AS kind
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
           AND c.relowner <> 'revenge'::regrole
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                              AND d.deptype IN ('e', 'a', 'i'))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO revenge', r.kind, r.name);
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure AS name
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public' AND p.proowner <> 'revenge'::regrole
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                              AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO revenge', r.name);
    END LOOP;
END $$
"""


def _with_param(url: str, name: str, value: str) -> str:
    """``url`` with the query parameter ``name`` set (pgserver's URL carries an empty password,
    which makes libpq read the passfile too).

    >>> _with_param("postgresql://postgres:@/postgres?host=/run/pg", "passfile", "/d/pgpass")
    'postgresql://postgres:@/postgres?host=/run/pg&passfile=/d/pgpass'
    """
    prefix, _, query = url.partition("?")
    params = [p for p in query.split("&") if p and not p.startswith(f"{name}=")]
    return f"{prefix}?{'&'.join([*params, f'{name}={value}'])}"


def _with_database(url: str, database: str, *, user: str | None = None) -> str:
    """``url`` pointed at ``database`` (as ``user``).

    >>> _with_database("postgresql://postgres:@/postgres?host=/run/pg", "revenge", user="revenge")
    'postgresql://revenge@/revenge?host=/run/pg'
    """
    prefix, _, query = url.partition("?")
    scheme, _, rest = prefix.partition("://")
    authority = rest.rsplit("/", 1)[0]
    if user is not None:
        authority = f"{user}@{authority.rsplit('@', 1)[-1]}"
    return f"{scheme}://{authority}/{database}" + (f"?{query}" if query else "")


def resolve_url_sync(settings: Settings) -> tuple[str, Stop | None]:
    """The database URL to use: ``database.url`` if set, else the embedded server's.

    Returns ``(url, stop)``; ``stop`` is None for an external server. Blocking:
    call it before the event loop starts (the serving parent) or use
    :func:`resolve_url`.
    """
    configured = settings.database.url.get_secret_value()
    if configured:
        return configured, None
    server = start_embedded(settings.server.data_path)
    log.info(
        "embedded PostgreSQL (%s) %s in %s",  # "joined": another process owns it
        server.backend,
        "started" if server.stops_server else "joined",
        cluster_path(settings.server.data_path),
    )
    return server.url, server.stop


async def resolve_url(settings: Settings) -> tuple[str, Stop | None]:
    """:func:`resolve_url_sync` in a thread, so the event loop keeps running."""
    return await asyncio.to_thread(resolve_url_sync, settings)
