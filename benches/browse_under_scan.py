"""Browse while a scan runs in the same server (issue 10: "browse holds these numbers while a
scan is running"); a phase of ``python -m benches.bench_browse``.

The tree is ``bench_library_walk.make_tree``'s (``--scan-files`` sparse videos with NFOs and
images beside them) under a movies and a TV library made by the administrator over HTTP and
not granted to the measured user (the scan writes the tables the user's pages read). Each
round has two windows, their order alternating:

* idle: ``GET /api/v1/movies?limit=100`` at ``--connections`` and next up at 1 connection;
* scanning: both libraries' first scan is asked for (``POST /api/v1/libraries/{id}/scan``,
  the ``library_scan`` job in the measured server itself) and the same two wrk runs start
  once the jobs run; a window counts only if a scan was still running when it ended.
  With ``profile`` (the server), the first scanning window is followed by one more movies
  run under ``py-spy --gil``: which code holds the worker's GIL while it scans.

After a scanning window the scans are waited for, the ``media_probe`` and
``images_process`` jobs they queued (the scan's fan-out, which would otherwise run on
into the next idle window) are dropped and the running ones waited for, and the libraries
are deleted (by SQL: the route answers in one statement too, but may take longer than an
HTTP client waits on a loaded machine), so every round scans the whole tree afresh.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benches.http import pyspy
from benches.http.harness import Server, Wrk, admin_connect, http_call, run_wrk
from benches.record import RunRecord

FANOUT = ("media_probe", "images_process")


@dataclass(frozen=True)
class Window:
    round: int
    scanning: bool
    movies: Wrk
    next_up: Wrk
    overlapped: bool  # a scan was still running when both wrk runs had ended
    scan_seconds: float | None  # asked -> both scans succeeded


def _call(base: str, method: str, path: str, token: str, body: Any = None) -> Any:
    status, raw = http_call(
        base + path,
        method=method,
        body=None if body is None else json.dumps(body).encode(),
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    if status >= 300:
        raise SystemExit(f"{method} {path}: {status} {raw[:300]!r}")
    return json.loads(raw) if raw else None


def _states(base: str, admin: str, jobs: list[int]) -> list[str]:
    return [str(_call(base, "GET", f"/api/v1/jobs/{j}", admin)["state"]) for j in jobs]


def _drain_fanout(db_url: str) -> int:
    """Drop the queued probe and image jobs, wait for the running ones; how many dropped."""
    with admin_connect(db_url) as conn:
        dropped = conn.execute(
            "DELETE FROM pgqueuer WHERE entrypoint = ANY(%s) AND status = 'queued'", (list(FANOUT),)
        ).rowcount
        deadline = time.monotonic() + 120
        while conn.execute(
            "SELECT count(*) FROM pgqueuer WHERE entrypoint = ANY(%s)", (list(FANOUT),)
        ).fetchone()[0]:
            if time.monotonic() > deadline:
                raise SystemExit("probe/image jobs still running after 120 s")
            time.sleep(0.2)
    return int(dropped)


def _wrk_pair(
    base: str, movies: str, next_up: str, connections: int, seconds: float,
    headers: list[str], record: RunRecord, name: str,
) -> tuple[Wrk, Wrk]:  # fmt: skip
    page, output = run_wrk(base + movies, connections=connections, seconds=seconds,
                           headers=headers)  # fmt: skip
    record.raw(f"{name}-movies-c{connections}", output)
    nxt, output = run_wrk(base + next_up, connections=1, seconds=seconds, headers=headers)
    record.raw(f"{name}-next-up-c1", output)
    return page, nxt


def _gil_profile(
    server: Server, url: str, connections: int, seconds: float, headers: list[str],
    record: RunRecord,
) -> None:  # fmt: skip
    """Who holds the worker's GIL while the scan runs and browse is loaded (py-spy --gil)."""
    if not pyspy.available():
        return
    out = record.dir / "raw" / "pyspy-gil-scanning.txt"
    sampler = pyspy.record(server, seconds, out, gil=True)
    time.sleep(0.5)
    _, output = run_wrk(url, connections=connections, seconds=seconds, headers=headers)
    record.raw("profile-gil-scanning-wrk", output)
    sampler.communicate(timeout=120)
    if out.exists():
        record.print("\nthe GIL holder of the Revenge worker while it scans and serves the movies "
                     "page (py-spy --gil, first scanning window):\n")  # fmt: skip
        for line in pyspy.summary(out, top=10):
            record.print(line)
        record.print()


def run_phase(
    *, base: str, db_url: str, tree: Path, admin: str, headers: list[str], movies: str,
    next_up: str, rounds: int, seconds: float, connections: int, record: RunRecord,
    profile: Server | None = None,
) -> list[Window]:  # fmt: skip
    windows: list[Window] = []
    for round_ in range(rounds):
        order = [False, True] if round_ % 2 == 0 else [True, False]
        for scanning in order:
            name = f"scan-r{round_}-{'scanning' if scanning else 'idle'}"
            if not scanning:
                page, nxt = _wrk_pair(base, movies, next_up, connections, seconds, headers,
                                      record, name)  # fmt: skip
                windows.append(Window(round_, False, page, nxt, True, None))
                record.round(phase="scan", round=round_, scanning=False,
                             movies=page.__dict__, next_up=nxt.__dict__)  # fmt: skip
                continue
            libraries = [
                int(_call(base, "POST", "/api/v1/libraries", admin,
                          {"name": f"scan-{kind}-{round_}", "kind": kind,
                           "roots": [str(tree / folder)]})["id"])
                for kind, folder in (("movies", "movies"), ("tv", "tv"))
            ]  # fmt: skip
            asked = time.monotonic()
            jobs = [int(_call(base, "POST", f"/api/v1/libraries/{i}/scan", admin)["job_id"])
                    for i in libraries]  # fmt: skip
            while "running" not in _states(base, admin, jobs):
                if time.monotonic() - asked > 60:
                    raise SystemExit("the scans did not start within 60 s")
                time.sleep(0.05)
            page, nxt = _wrk_pair(base, movies, next_up, connections, seconds, headers, record,
                                  name)  # fmt: skip
            overlapped = "running" in _states(base, admin, jobs)
            if profile is not None and round_ == 0 and overlapped:
                _gil_profile(profile, base + movies, connections, seconds, headers, record)
            while (states := _states(base, admin, jobs)) != ["succeeded", "succeeded"]:
                if any(s in ("failed", "cancelled") for s in states):
                    raise SystemExit(f"a scan did not succeed: {states}")
                if time.monotonic() - asked > 600:
                    raise SystemExit("the scans took over 10 minutes")
                time.sleep(0.1)
            took = time.monotonic() - asked
            dropped = _drain_fanout(db_url)
            with admin_connect(db_url) as conn:  # what DELETE /libraries/{id} does, untimed
                conn.execute("DELETE FROM libraries WHERE id = ANY(%s)", (libraries,))
                conn.execute("VACUUM ANALYZE items")
                conn.execute("VACUUM ANALYZE media_files")
            windows.append(Window(round_, True, page, nxt, overlapped, took))
            record.round(phase="scan", round=round_, scanning=True, overlapped=overlapped,
                         scan_seconds=took, fanout_dropped=dropped, movies=page.__dict__,
                         next_up=nxt.__dict__)  # fmt: skip
            record.print(
                f"round {round_}: scan of the tree {took:.1f} s (asked -> both jobs done), "
                f"{'overlapping' if overlapped else 'NOT overlapping'} both wrk windows; "
                f"{dropped:,} probe/image jobs it queued dropped"
            )
    return windows


def report(
    windows: list[Window], connections: int, record: RunRecord
) -> list[tuple[str, bool, str]]:
    """The table of idle vs scanning windows; the checks it supports."""

    def med(scanning: bool, pick: Any) -> float:
        return statistics.median(pick(w) for w in windows if w.scanning == scanning)

    record.print(
        f"\n| window | movies c{connections} req/s | p50 ms | p99 ms | next up c1 p50 ms "
        "| p99 ms | errors |"
    )
    record.print("|---|---:|---:|---:|---:|---:|---:|")
    for scanning in (False, True):
        mine = [w for w in windows if w.scanning == scanning]
        errors = sum(w.movies.errors + w.next_up.errors for w in mine)
        record.print(
            f"| {'scanning' if scanning else 'idle'} | {med(scanning, lambda w: w.movies.rps):,.0f}"
            f" | {med(scanning, lambda w: w.movies.p50_ms):.2f}"
            f" | {med(scanning, lambda w: w.movies.p99_ms):.2f}"
            f" | {med(scanning, lambda w: w.next_up.p50_ms):.2f}"
            f" | {med(scanning, lambda w: w.next_up.p99_ms):.2f} | {errors} |"
        )
    ratios = []
    for round_ in sorted({w.round for w in windows}):
        idle = next(w for w in windows if w.round == round_ and not w.scanning)
        busy = next(w for w in windows if w.round == round_ and w.scanning)
        ratios.append((busy.movies.p99_ms / idle.movies.p99_ms,
                       busy.movies.rps / idle.movies.rps,
                       busy.next_up.p99_ms / idle.next_up.p99_ms))  # fmt: skip
    p99_ratio = statistics.median(r[0] for r in ratios)
    rps_ratio = statistics.median(r[1] for r in ratios)
    next_ratio = statistics.median(r[2] for r in ratios)
    record.print(
        f"\nscanning / idle, median of per-round ratios: movies p99 {p99_ratio:.2f}x, "
        f"movies req/s {rps_ratio:.2f}x, next up p99 {next_ratio:.2f}x"
    )
    overlapped = all(w.overlapped for w in windows if w.scanning)
    busy_p99 = med(True, lambda w: w.movies.p99_ms)
    busy_next = med(True, lambda w: w.next_up.p99_ms)
    if not overlapped:
        record.print("(a scan ended before its window did: the scanning numbers are not all "
                     "under a scan; use a larger --scan-files or a shorter --seconds)")  # fmt: skip
    return [
        (f"while scanning: movies p99 < 20 ms at {connections}", overlapped and busy_p99 < 20,
         f"{busy_p99:.2f} ms (idle {med(False, lambda w: w.movies.p99_ms):.2f} ms)"),
        ("while scanning: next up < 20 ms (p99, 1 connection)", overlapped and busy_next < 20,
         f"{busy_next:.2f} ms (idle {med(False, lambda w: w.next_up.p99_ms):.2f} ms)"),
    ]  # fmt: skip
