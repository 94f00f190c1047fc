"""A read-only media tree for the tests that prove Revenge never writes media files.

``run_read_only`` runs one child process that sees a folder through a private read-only
bind mount (a mount namespace of its own: nothing else on the machine sees the mount);
``snapshot`` records what a tree looks like on disk, to compare before and after.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest


def snapshot(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """Size, mtime, ctime and mode of every entry under ``root`` (itself included)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames, "."]:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.join(dirpath, name)] = (
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
                st.st_mode,
            )
    return out


def run_read_only(
    tree: Path, command: Callable[[Path], Sequence[str]]
) -> subprocess.CompletedProcess[str]:
    """Run ``command(mount)`` where ``mount`` shows ``tree`` read-only; its output, or the
    test is skipped where the machine refuses the mount (not root, no unshare(1))."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) for a private read-only bind mount")
    mount = Path(tempfile.mkdtemp())
    at, view = shlex.quote(str(tree)), shlex.quote(str(mount))
    script = f'mount --bind {at} {view} && mount -o remount,bind,ro {view} && exec "$@"'
    try:
        return subprocess.run(
            ["unshare", "-m", "sh", "-c", script, "sh", *command(mount)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as err:
        if "mount" in (err.stderr or "") and "Traceback" not in (err.stderr or ""):
            pytest.skip(f"read-only bind mount not permitted here: {err.stderr.strip()}")
        raise
    finally:
        os.rmdir(mount)
