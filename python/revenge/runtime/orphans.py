"""Processes that must not outlive their parent: serving workers, ffmpeg, the database guard.

Two tools, for two kinds of child:

* :func:`watch_parent` — a daemon thread in the child that notices its parent
  is gone (``os.getppid()`` changes: the orphan was re-parented) and stops the
  process: SIGTERM to itself for a graceful stop, ``os._exit`` if that has not
  finished within ``grace`` seconds. Used by Granian's worker processes, which
  Granian spawns from threads of its own (``PR_SET_PDEATHSIG`` fires when the
  *thread* that forked exits, so it would kill a healthy worker).
* :func:`die_with_parent` — a ``preexec_fn`` for a program we exec (ffmpeg):
  ``PR_SET_PDEATHSIG`` = SIGKILL, set between fork and exec, kept across exec.
  Spawned from the event loop's thread, which lives as long as the process.
  :func:`dying_with_parent` arms the same signal without a ``preexec_fn`` (the
  child runs ``setpriv --pdeathsig KILL`` first), so the child is started with
  vfork: no copy of the worker's memory map on the path to a first segment.

>>> import subprocess, sys
>>> out = subprocess.run([sys.executable, "-c", "print('ok')"], preexec_fn=die_with_parent,
...                      capture_output=True, text=True).stdout
>>> out.strip()
'ok'
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def die_with_parent() -> None:
    """``preexec_fn``: the child is SIGKILLed when its parent dies (Linux; a no-op elsewhere)."""
    if _libc is None:
        return
    parent = os.getppid()
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


_SETPRIV = shutil.which("setpriv") if _libc is not None else None


def dying_with_parent(
    argv: Sequence[str],
) -> tuple[list[str], Callable[[], None] | None]:
    """``argv`` and the ``preexec_fn`` that make a child die with this process.

    With util-linux's ``setpriv`` (Debian: always there): ``setpriv --pdeathsig KILL --
    argv...`` and no ``preexec_fn``. A ``preexec_fn`` makes Python fork (copy the page tables,
    then copy-on-write faults, then run Python in the child) instead of vfork: starting a
    program from a 150-200 MB worker took 116-185 ms that way against 0.7-14 ms, at load
    10-16 (``/tmp`` experiment, 20 spawns each). The signal is armed by ``setpriv`` a moment
    after the child starts, not before: a parent that dies in that moment leaves the
    program running, which the next start's sweep of the transcode folder ends (ffmpeg).
    Without ``setpriv``: ``argv`` as is and :func:`die_with_parent`.

    >>> import subprocess, sys
    >>> argv, preexec = dying_with_parent([sys.executable, "-c", "print('ok')"])
    >>> subprocess.run(argv, preexec_fn=preexec, capture_output=True, text=True).stdout.strip()
    'ok'
    """
    if _SETPRIV is None:
        return list(argv), die_with_parent
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv], None


def _stop_self(grace: float) -> None:
    log.warning("parent process %d is gone: stopping", os.getppid())
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    os._exit(70)  # EX_SOFTWARE: the graceful stop did not finish


def watch_parent(
    parent: int | None = None,
    *,
    interval: float = 0.25,
    grace: float = 5.0,
    on_orphan: Callable[[], None] | None = None,
) -> threading.Thread:
    """Stop this process soon after its parent dies; returns the (daemon) watching thread.

    ``parent``: the pid the parent had when it spawned us (so a parent that died
    while this process was starting is noticed too); default: the current one.
    """
    parent = os.getppid() if parent is None else parent
    orphaned = on_orphan or (lambda: _stop_self(grace))

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        orphaned()

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread
