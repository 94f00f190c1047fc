"""Where a server worker's CPU goes under load: py-spy samples it while wrk runs.

``record(server, seconds, out)`` starts ``py-spy record`` on the server's first Granian
worker (``--nonblocking``: the worker is never paused; idle samples left out, so a sample
is the worker running or runnable); ``summary(out)`` reads py-spy's collapsed stacks and
gives the functions by own time and by time under them. ``scheduled(pid)`` reads the
kernel's account of a process: time on a CPU and time runnable but waiting for one. On a
loaded machine the sampler counts the waiting too (where the worker was preempted: often
right after a send wakes the peer), which ``scheduled`` tells apart.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import psutil
from benches.http.harness import Server

_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def available() -> bool:
    return shutil.which("py-spy") is not None


def workers(server: Server) -> list[int]:
    """The server's worker processes (Granian's children), else the server itself."""
    try:
        children = psutil.Process(server.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [c.pid for c in children] or [server.process.pid]


def scheduled(pid: int) -> tuple[float, float]:
    """Seconds the threads of ``pid`` have run on a CPU, and waited runnable for one
    (``/proc/<pid>/task/*/schedstat``): the second is the machine's share of a latency,
    time the worker was ready to go on and another process had the CPU."""
    on_cpu = waiting = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            ran, waited, _ = stat.read_text().split()
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
        on_cpu += int(ran)
        waiting += int(waited)
    return on_cpu / 1e9, waiting / 1e9


def record(
    server: Server, seconds: float, out: Path, *, gil: bool = False
) -> subprocess.Popen[bytes]:
    """Start sampling the (first) worker for ``seconds``; wait on the returned process.
    ``gil``: only the thread holding the GIL is sampled (who keeps the others waiting)."""
    pid = workers(server)[0]
    return subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
         "--rate", "250", "--nonblocking", "--format", "raw", "--output", str(out),
         *(["--gil"] if gil else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/python/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['name']} ({path})"


def summary(out: Path, top: int = 15) -> list[str]:
    """Markdown lines: samples, then the top functions by own and by inclusive share."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";")[1:]]  # the first is the thread
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            under[frame] += n
    if not total:
        return ["(py-spy recorded no samples)"]
    lines = [f"{total:,} samples of the worker on a CPU", "", "| own % | function |", "|---:|---|"]
    lines += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in own.most_common(top)]
    # the start-up chain (runpy, granian's process spawn) is under every sample: left out
    below = [(f, n) for f, n in under.most_common() if n < max(under.values())]
    lines += ["", "| under % | function (the start-up chain above all samples left out) |",
              "|---:|---|"]  # fmt: skip
    lines += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in below[: top * 2]]
    return lines
