"""HTTP load harness for DB-backed routes: wrk at 16 and 64 connections, rps / p50 / p99.

    python benches/http_db.py --floor                      # start the floor app, measure it
    python benches/http_db.py --floor --revenge-pool       # + the same app through Database
    python benches/http_db.py --floor http://127.0.0.1:8096/some/db/route
    python benches/http_db.py URL_A URL_B                  # B compared with A

With ``--floor`` the bare Granian RSGI app of ``benches/floor_db_rsgi.py`` is
started on a free port (one worker, uvloop) and measured first; it is the
baseline every other URL is compared with (``x floor`` = that URL's
requests/s over the floor's at the same connection count). Targets from
issue 5: p99 < 5 ms at 16 connections; at 64, >= 0.9x the floor's requests/s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BENCHES = Path(__file__).resolve().parent
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Result:
    label: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str) -> tuple[float, float, float, int]:
    """``(requests/s, p50 ms, p99 ms, non-2xx + socket errors)`` from ``wrk --latency`` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M)[1])  # type: ignore[index]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(m[1])
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(g) for g in m.groups())
    return rps, p50, p99, errors


def run_wrk(url: str, connections: int, seconds: float, threads: int) -> str:
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", url]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer 200 within {limit:g}s")


def start_floor(workers: int, pool: str = "bare") -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [
        sys.executable, "-m", "granian", "--interface", "rsgi", "--loop", "uvloop",
        "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port),
        "--working-dir", str(BENCHES), "--log-level", "warning", "floor_db_rsgi:app",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, start_new_session=True, env={**os.environ, "FLOOR_POOL": pool})
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_ready(url)
    except BaseException:
        stop(proc)
        raise
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def measure(
    targets: list[tuple[str, str]],
    connections: list[int],
    seconds: float,
    threads: int,
    repeat: int = 1,
) -> list[Result]:
    """Each target at each connection count, ``repeat`` times interleaved; medians reported.

    Interleaving (A B A B ...) spreads load from anything else on the machine over
    all targets alike, so the ratios stay fair when the absolute numbers are not.
    """
    for _, url in targets:
        run_wrk(url, connections[0], 1, threads)  # warm-up: pool grown, caches hot
    runs: dict[tuple[str, int], list[tuple[float, float, float, int]]] = {}
    for _ in range(repeat):
        for conns in connections:
            for label, url in targets:
                runs.setdefault((label, conns), []).append(
                    parse_wrk(run_wrk(url, conns, seconds, threads))
                )
    results = []
    for label, _ in targets:
        for conns in connections:
            got = runs[(label, conns)]
            results.append(
                Result(
                    label,
                    conns,
                    statistics.median(r[0] for r in got),
                    statistics.median(r[1] for r in got),
                    statistics.median(r[2] for r in got),
                    sum(r[3] for r in got),
                )
            )
    return results


def table(results: list[Result]) -> str:
    baseline = {r.connections: r.rps for r in results if r.label == results[0].label}
    lines = [
        f"{'target':<28} {'conns':>5} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'x ' + results[0].label:>12}",
    ]
    for r in results:
        ratio = r.rps / baseline[r.connections] if baseline.get(r.connections) else float("nan")
        lines.append(
            f"{r.label:<28} {r.connections:>5} {r.rps:>9.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} "
            f"{r.errors:>6} {ratio:>12.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("urls", nargs="*", help="URLs to measure (the first is the baseline)")
    parser.add_argument(
        "--floor", action="store_true", help="start and measure the floor app first"
    )
    parser.add_argument("--floor-workers", type=int, default=1)
    parser.add_argument(
        "--revenge-pool",
        action="store_true",
        help="also measure the floor app going through revenge.infra.database.Database",
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", default="16,64")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds (medians)")
    args = parser.parse_args(argv)
    if not args.urls and not args.floor:
        parser.error("give URLs, --floor, or both")
    connections = [int(c) for c in args.connections.split(",")]

    servers: list[subprocess.Popen[bytes]] = []
    targets = [(url, url) for url in args.urls]
    try:
        if args.revenge_pool:
            proc, url = start_floor(args.floor_workers, "revenge")
            servers.append(proc)
            targets.insert(0, ("same app, revenge Database", url))
        if args.floor:
            proc, url = start_floor(args.floor_workers)
            servers.append(proc)
            targets.insert(0, ("floor (granian+psycopg_pool)", url))
        results = measure(targets, connections, args.seconds, args.threads, args.repeat)
    finally:
        for proc in servers:
            stop(proc)
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
