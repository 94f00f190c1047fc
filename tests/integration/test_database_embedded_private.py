"""The embedded PostgreSQL keeps to itself: a private socket folder, passwords, a non-superuser
owner, and (run as root) no folder of anyone else opened up.

Real clusters from the machine's PostgreSQL binaries; the root-only tests run as root
(CI does) and skip otherwise, saying so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from revenge.infra.db import start_embedded, system_pg
from revenge.infra.db.embedded import cluster_path
from revenge.infra.db.errors import EmbeddedDatabaseError

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not system_pg.find_binaries(), reason="no PostgreSQL binaries installed on this machine"
    ),
]
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="checks what running as root does")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    def remove() -> None:
        for folder in (tmp_path, tmp_path / ("d" * 90)):
            relocated = cluster_path(folder).parent
            if not relocated.is_relative_to(tmp_path):  # as root, the cluster may live elsewhere
                shutil.rmtree(relocated, ignore_errors=True)

    remove()
    yield tmp_path
    remove()


def socket_dir_of(data_dir: Path) -> Path:
    lines = (cluster_path(data_dir) / "postmaster.pid").read_text().splitlines()
    return Path(lines[4])


def test_the_app_is_an_owner_not_a_superuser_and_nothing_is_trusted(data_dir: Path) -> None:
    server = start_embedded(data_dir, "system")
    try:
        assert ":" not in server.url.split("@")[0].removeprefix("postgresql://")  # no password
        with psycopg.connect(server.url) as conn:
            user, superuser, owner = conn.execute(
                "SELECT current_user, r.rolsuper, pg_get_userbyid(d.datdba) FROM pg_roles r, "
                "pg_database d WHERE r.rolname = current_user AND d.datname = current_database()"
            ).fetchone()  # type: ignore[misc]
            assert (superuser, owner) == (False, user)
            conn.execute("CREATE TABLE mine (n int)")  # it owns what it makes
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # trusted: the owner may
        hba = (cluster_path(data_dir) / "pg_hba.conf").read_text()
        rules = [line.split() for line in hba.splitlines() if line.strip() and line[0] != "#"]
        assert rules and all(rule[-1] not in ("trust", "ident") for rule in rules), rules
        socket = socket_dir_of(data_dir)
        for user in ("postgres", "revenge"):  # without the password file: refused
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(f"postgresql://{user}@/revenge?host={socket}&passfile=/dev/null")
    finally:
        server.stop()


def test_a_long_path_gets_a_private_unpredictable_socket_folder(data_dir: Path) -> None:
    deep = data_dir / ("d" * 90)
    predictable = Path(tempfile.gettempdir()) / (
        "revenge-pg-" + hashlib.sha256(str(cluster_path(deep)).encode()).hexdigest()[:12]
    )
    bait = data_dir / "bait"
    bait.mkdir()
    predictable.unlink(missing_ok=True)
    predictable.symlink_to(bait)  # someone else got there first
    try:
        server = start_embedded(deep, "system")
        try:
            socket = socket_dir_of(deep)
            assert socket != predictable and not socket.is_relative_to(bait)
            info = socket.lstat()
            assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
            assert info.st_uid == (system_pg.run_as() or (os.getuid(), 0))[0]
            assert list(bait.iterdir()) == []
            with psycopg.connect(server.url) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            server.stop()
    finally:
        predictable.unlink(missing_ok=True)


@pytest.mark.parametrize("flaw", ["symlink", "group-writable", "someone-else"])
def test_a_socket_folder_that_is_not_private_is_refused(tmp_path: Path, flaw: str) -> None:
    folder = tmp_path / "sock"
    folder.mkdir(mode=0o700)
    if flaw == "symlink":
        link = tmp_path / "link"
        link.symlink_to(folder)
        folder = link
    elif flaw == "group-writable":
        folder.chmod(0o770)
    else:
        os.chown(folder, 12345, 12345) if os.geteuid() == 0 else pytest.skip("needs root to chown")
    with pytest.raises(RuntimeError, match="socket folder"):
        system_pg.check_private_dir(folder, os.geteuid())


@as_root
def test_root_leaves_other_folders_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)  # like /root: nobody else may enter
    data = home / ".local" / "share" / "revenge"
    before = {p: stat.S_IMODE(p.stat().st_mode) for p in [home, *home.parents]}
    caplog.set_level(logging.INFO)
    server = start_embedded(data, "system")
    try:
        after = {p: stat.S_IMODE(p.stat().st_mode) for p in before}
        assert after == before
        pgdata = cluster_path(data)
        assert not pgdata.is_relative_to(home)
        assert str(pgdata) in caplog.text  # it says where the data went
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
        shutil.rmtree(cluster_path(data).parent, ignore_errors=True)


@as_root
def test_root_refuses_the_pgserver_fallback_saying_how_to_run(tmp_path: Path) -> None:
    try:
        pwd.getpwnam("pgserver")
        existed = True
    except KeyError:
        existed = False
    mode = stat.S_IMODE(tmp_path.stat().st_mode)
    with pytest.raises(EmbeddedDatabaseError, match=r"unprivileged user|database\.url"):
        start_embedded(tmp_path / "data", "pgserver")
    assert stat.S_IMODE(tmp_path.stat().st_mode) == mode
    if not existed:
        with pytest.raises(KeyError):
            pwd.getpwnam("pgserver")


def test_a_cluster_from_before_is_upgraded(data_dir: Path) -> None:
    """Made by an older Revenge: trust for everyone, tables owned by the superuser."""
    binaries = system_pg.find_binaries()[0]
    pgdata = cluster_path(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    pgdata.mkdir(mode=0o700)
    owner = system_pg.run_as()
    if owner:
        os.chown(pgdata, *owner)
    system_pg._run(
        [str(binaries.bindir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust"],
        owner,
    )
    socket = system_pg.socket_dir_for(pgdata, owner)
    system_pg._run(
        [str(binaries.bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-l", str(pgdata / "log"),
         "-o", f"-c listen_addresses='' -k {socket}", "start"],
        owner,
    )  # fmt: skip
    try:
        old = f"postgresql://postgres@/postgres?host={socket}"
        with psycopg.connect(old, autocommit=True) as conn:
            conn.execute("CREATE DATABASE revenge")
        with psycopg.connect(old.replace("/postgres?", "/revenge?"), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (id bigint GENERATED ALWAYS AS IDENTITY, n int)")
            conn.execute("INSERT INTO kept (n) VALUES (7)")
            conn.execute("CREATE FUNCTION seven() RETURNS int LANGUAGE sql AS 'SELECT 7'")
    finally:
        system_pg.stop(binaries, pgdata)

    server = start_embedded(data_dir, "system")
    try:
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("revenge",)
            conn.execute("INSERT INTO kept (n) VALUES (8)")  # its own table now
            assert conn.execute("SELECT sum(n), seven() FROM kept").fetchone() == (15, 7)
            conn.execute("ALTER TABLE kept ADD COLUMN m int")  # owner's rights
        with pytest.raises(psycopg.OperationalError):  # trust is gone
            psycopg.connect(old)
    finally:
        server.stop()
