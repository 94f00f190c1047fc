"""Raw outputs of a benchmark run, kept next to the table it prints.

Every harness that prints a table or a verdict makes one ``RunRecord``: a folder
``benches/results/<harness>-<UTC time>/`` holding

* ``meta.json``: the exact command, the git commit (and whether the tree had
  local changes, with their names), the machine's CPU count and load averages
  at start and end, Python's version, start and end times;
* ``rounds.jsonl``: one JSON object per measured round (every number the table
  is computed from, so each ratio can be re-derived);
* ``raw/``: the tools' own outputs (wrk's text, logs), one file each;
* ``table.md``: what the harness printed, verdicts included.

``benches/results/`` is git-ignored; the run that backs a published RESULTS
table is committed with ``git add -f benches/results/<folder>`` (a few KB).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benches" / "results"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine() -> dict[str, Any]:
    """CPU count, the CPUs this process may use, and the load averages now."""
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


class RunRecord:
    """One run's folder; ``print`` both prints a line and keeps it for ``table.md``."""

    def __init__(self, harness: str) -> None:
        started = datetime.now(UTC)
        self.dir = RESULTS / f"{harness}-{started:%Y%m%dT%H%M%SZ}"
        (self.dir / "raw").mkdir(parents=True, exist_ok=True)
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        # The interpreter's own command line: ``-m benches.http.run --rounds 1`` as typed.
        command = ["python", *sys.orig_argv[1:]]
        self.meta: dict[str, Any] = {
            "harness": harness,
            "command": shlex.join(command),
            "commit": _git("rev-parse", "HEAD"),
            "local_changes": dirty.splitlines(),
            "python": platform.python_version(),
            "started": started.isoformat(timespec="seconds"),
            "machine_at_start": machine(),
        }
        self._lines: list[str] = []
        self._started = time.monotonic()
        self._write_meta()

    def raw(self, name: str, text: str) -> Path:
        """Keep one raw output (``raw/<name>.txt``)."""
        path = self.dir / "raw" / f"{name}.txt"
        path.write_text(text)
        return path

    def round(self, **numbers: Any) -> None:
        """One measured round's numbers (a line of ``rounds.jsonl``)."""
        with (self.dir / "rounds.jsonl").open("a") as out:
            out.write(json.dumps(numbers, sort_keys=True) + "\n")

    def print(self, line: str = "") -> None:
        print(line, flush=True)
        self._lines.append(line)

    def header(self) -> None:
        """The command, commit and machine, printed first so a quoted table carries them."""
        m = self.meta["machine_at_start"]
        local = " (with local changes)" if self.meta["local_changes"] else ""
        self.print(f"command: `{self.meta['command']}`")
        self.print(
            f"commit {self.meta['commit'][:12]}{local}; {m['nproc']} CPUs, "
            f"load average {m['loadavg'][0]:.2f} at start; raw outputs: {self.relative}"
        )
        self.print()

    @property
    def relative(self) -> str:
        return str(self.dir.relative_to(ROOT))

    def finish(self, verdicts: dict[str, Any] | None = None) -> None:
        self.meta["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.meta["seconds"] = round(time.monotonic() - self._started, 1)
        self.meta["machine_at_end"] = machine()
        if verdicts is not None:
            self.meta["verdicts"] = verdicts
        self._write_meta()
        (self.dir / "table.md").write_text("\n".join(self._lines) + "\n")
        print(f"(raw outputs, per-round numbers and this table: {self.relative})")

    def _write_meta(self) -> None:
        (self.dir / "meta.json").write_text(json.dumps(self.meta, indent=1) + "\n")
