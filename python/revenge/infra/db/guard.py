"""The embedded PostgreSQL's guard: stops the server when the process that owns it dies.

``pg_ctl start`` detaches the postmaster, so nothing ties it to the ``revenge``
process that started it; after a SIGKILL of that process it would run on until
the next start adopted it. The owner therefore spawns this small child::

    python -m revenge.infra.db.guard OWNER_PID UID GID -- pg_ctl -D <pgdata> -m immediate -w stop

It waits; when its parent (the owner, ``OWNER_PID``) is gone it runs the stop command (as
``UID``/``GID`` when not -1: PostgreSQL's own OS user under root) and exits. A
normal stop terminates the guard first (SIGTERM: exit without stopping anything).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from revenge.runtime.orphans import watch_parent


def guard_argv(stop: Sequence[str], owner: tuple[int, int] | None) -> list[str]:
    uid, gid = owner if owner is not None else (-1, -1)
    return [
        sys.executable, "-m", "revenge.infra.db.guard", str(os.getpid()), str(uid), str(gid),
        "--", *stop,
    ]  # fmt: skip


def spawn_guard(stop: Sequence[str], owner: tuple[int, int] | None) -> subprocess.Popen[bytes]:
    """Start the guard for this process; ``terminate()`` it before stopping the server normally."""
    return subprocess.Popen(
        guard_argv(stop, owner),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
        start_new_session=True,  # a Ctrl-C for the owner's group is the owner's to handle
    )


def _stop_server(stop: list[str], uid: int, gid: int) -> None:
    try:
        subprocess.run(
            stop,
            user=uid if uid >= 0 else None,
            group=gid if gid >= 0 else None,
            extra_groups=[] if uid >= 0 else None,
            cwd="/",
            timeout=60,
            check=False,
            capture_output=True,
        )
    finally:
        os._exit(0)


def main(argv: Sequence[str]) -> int:
    owner, uid, gid, separator, *stop = argv
    if separator != "--" or not stop or not Path(stop[0]).is_absolute():
        print("usage: guard OWNER_PID UID GID -- /path/to/pg_ctl ... stop", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch_parent(int(owner), interval=0.1, on_orphan=lambda: _stop_server(stop, int(uid), int(gid)))
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
