"""The embedded PostgreSQL's major version, recorded next to the cluster, and what happens
when the machine's PostgreSQL moved to another major version.

Only one major version (the machine's 15) can run here, so the move is simulated on a real
cluster: after a real start and stop, its ``PG_VERSION`` and the marker are set to 14 (as a
cluster made by PostgreSQL 14 would read), and the start is refused with the steps to run;
put back, the same cluster starts with its data. The automated dump-and-restore between two
installed major versions is not exercised here (it needs a second major version installed).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from revenge.config import load_settings
from revenge.infra.db import EmbeddedDatabaseError, migrate, start_embedded, system_pg
from revenge.infra.db.cluster_upgrade import upgrade_cluster
from revenge.infra.db.embedded import MARKER, cluster_path, major_change_message, read_marker
from revenge.wiring import migrations

SHIPPED = list(migrations(load_settings(env={})))

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not system_pg.find_binaries(), reason="no PostgreSQL binaries installed on this machine"
    ),
]


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    cluster = cluster_path(tmp_path)
    if not cluster.is_relative_to(tmp_path):  # run as root: the cluster lives elsewhere
        shutil.rmtree(cluster.parent, ignore_errors=True)
    yield tmp_path
    if not cluster.is_relative_to(tmp_path):
        shutil.rmtree(cluster.parent, ignore_errors=True)


def _pretend_major(pgdata: Path, major: int) -> None:
    # PG_VERSION belongs to the postgres OS user (run as root); writing keeps its owner.
    (pgdata / "PG_VERSION").write_text(f"{major}\n")
    marker = pgdata.parent / MARKER
    recorded = json.loads(marker.read_text())
    marker.write_text(json.dumps({**recorded, "major": major}))


def test_a_start_records_the_major_and_a_gone_major_is_refused_with_the_steps(
    data_dir: Path,
) -> None:
    installed = system_pg.find_binaries()[0].major
    server = start_embedded(data_dir, "auto")
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (7)")
    finally:
        server.stop()
    pgdata = cluster_path(data_dir)
    recorded = read_marker(pgdata)
    assert recorded is not None
    assert (recorded["major"], recorded["backend"]) == (installed, "system")
    assert recorded["bindir"].endswith(f"/{installed}/bin")

    old = installed - 1
    _pretend_major(pgdata, old)
    for backend in ("auto", "system"):
        with pytest.raises(EmbeddedDatabaseError) as refused:
            start_embedded(data_dir, backend)
        message = str(refused.value)
        assert f"holds a PostgreSQL {old} cluster" in message
        assert f"PostgreSQL {installed}" in message
        assert f"apt install postgresql-{old}" in message
        assert f"revenge backup --to revenge-pg{old}.tar" in message
        assert f"mv {pgdata} {pgdata}.pg{old}" in message
        assert f"revenge restore revenge-pg{old}.tar" in message
        assert not (pgdata / "postmaster.pid").exists()  # nothing was started

    # The CLI's start path says the same and exits non-zero.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
    done = subprocess.run(
        [sys.executable, "-m", "revenge.cli", "migrate"],
        env={**env, "REVENGE_SERVER__DATA_DIR": str(data_dir)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"apt install postgresql-{old}" in done.stderr, done.stderr

    _pretend_major(pgdata, installed)  # nothing was changed: the cluster starts with its data
    again = start_embedded(data_dir, "auto")
    try:
        with psycopg.connect(again.url) as conn:
            assert conn.execute("SELECT n FROM kept").fetchone() == (7,)
    finally:
        again.stop()


def test_a_recorded_cluster_that_is_gone_is_refused_not_replaced_by_an_empty_one(
    data_dir: Path,
) -> None:
    pgdata = cluster_path(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    (pgdata.parent / MARKER).write_text(json.dumps({"major": 15, "backend": "system"}))
    with pytest.raises(EmbeddedDatabaseError, match="records a PostgreSQL 15 cluster"):
        start_embedded(data_dir, "auto")
    assert not pgdata.exists()  # no initdb of an empty cluster in its place


def test_the_message_names_what_is_installed() -> None:
    message = major_change_message(Path("/srv/revenge/postgres"), 13, [])
    assert "this machine has no usable PostgreSQL" in message
    assert "apt install postgresql-13" in message
    assert "keep PostgreSQL 13 installed" in message
    assert "revenge postgres-upgrade" in message


def test_postgres_upgrade_dumps_restores_and_keeps_the_old_cluster(data_dir: Path) -> None:
    """The automated path, exercised 15 -> 15 (the one major version here): every step but
    the version change is the same (old binaries dump, new cluster, restore, counts, the
    app's role owns the restored objects, the old folder and the dump kept)."""
    installed = system_pg.find_binaries()[0].major
    server = start_embedded(data_dir, "auto")
    try:
        asyncio.run(migrate(server.url, SHIPPED))
        with psycopg.connect(server.url) as conn:
            conn.execute("INSERT INTO users (username, username_key, password_hash)"
                         " SELECT 'u' || n, 'u' || n, 'x' FROM generate_series(1, 250) AS n")  # fmt: skip
        with pytest.raises(EmbeddedDatabaseError, match="is running: stop revenge serve"):
            upgrade_cluster(data_dir, SHIPPED, revenge_version="t", to_major=installed)
    finally:
        server.stop()
    pgdata = cluster_path(data_dir)

    done = upgrade_cluster(data_dir, SHIPPED, revenge_version="t", to_major=installed)
    assert (done.old_major, done.new_major) == (installed, installed)
    assert done.rows["public.users"] == 250
    assert (done.old_cluster / "PG_VERSION").read_text().strip() == str(installed)
    assert done.old_cluster.parent == pgdata.parent and done.backup.is_file()
    assert read_marker(pgdata)["major"] == installed  # type: ignore[index]

    again = start_embedded(data_dir, "auto")  # as the app: its role owns the restored tables
    try:
        with psycopg.connect(again.url) as conn:
            assert conn.execute("SELECT count(*) FROM users").fetchone() == (250,)
            conn.execute("INSERT INTO users (username, username_key, password_hash)"
                         " VALUES ('after', 'after', 'x')")  # fmt: skip
    finally:
        again.stop()


def test_postgres_upgrade_to_an_older_or_missing_version_is_refused(data_dir: Path) -> None:
    server = start_embedded(data_dir, "auto")
    server.stop()
    installed = system_pg.find_binaries()[0].major
    pgdata = cluster_path(data_dir)
    with pytest.raises(EmbeddedDatabaseError, match=f"PostgreSQL {installed + 1} server"):
        upgrade_cluster(data_dir, SHIPPED, revenge_version="t", to_major=installed + 1)
    assert (pgdata / "PG_VERSION").is_file()
    assert not list(pgdata.parent.glob("postgres.pg[0-9]*"))  # nothing moved
