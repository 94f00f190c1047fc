"""The scheduled ``backup`` job in a real ``revenge serve`` (in-process worker): backups
appear in the data folder on schedule, each one whole, and only the newest N stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from revenge.infra.db.backup import list_backups, verify_backup
from tests.e2e.conftest import free_port, run_server, serve_argv

pytestmark = pytest.mark.e2e

DEADLINE = 120.0  # generous: the proof is that the schedule fires and prunes, not how fast


def test_scheduled_backups_keep_the_newest(fresh_pg_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        **os.environ,
        "REVENGE_DATABASE__URL": fresh_pg_url,
        "REVENGE_SERVER__DATA_DIR": str(data),
        "REVENGE_BACKUP__SCHEDULE": "* * * * * */2",  # every two seconds (seconds field last)
        "REVENGE_BACKUP__KEEP": "2",
    }
    folder = data / "backups"
    port = free_port()
    argv = serve_argv(port)
    seen: set[str] = set()
    with run_server(argv, port, tmp_path, env) as server:
        deadline = time.monotonic() + DEADLINE
        while len(seen) < 4:
            assert time.monotonic() < deadline, f"backups seen: {sorted(seen)}\n{server.output()}"
            seen.update(path.name for path in list_backups(folder))
            # A new backup is written before the old ones are pruned: never more than keep + 1.
            assert len(list_backups(folder)) <= 3, sorted(p.name for p in folder.iterdir())
            time.sleep(0.2)
    kept = list_backups(folder)  # more may have run while the server stopped
    seen.update(path.name for path in kept)
    assert len(kept) == 2 and [p.name for p in kept] == sorted(seen)[-2:]
    for path in kept:
        manifest = verify_backup(path)
        assert manifest.schema_version > 0
        assert {r.module for r in manifest.schema} >= {"core", "auth"}
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no partial files
