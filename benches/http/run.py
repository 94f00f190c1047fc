"""HTTP load harness for the hot path: ``python -m benches.http.run`` prints the table.

In one run, on this machine, with the same wrk settings for each:

* ``revenge``   — ``granian --interface rsgi --workers 1 revenge.app:app`` (real PostgreSQL)
* ``fastapi``   — reference (a): FastAPI on uvicorn, ``cachetools.TTLCache`` session check
* ``rsgi-floor``— reference (b): bare Granian RSGI app, dict session check

``GET /api/v1/me`` with a valid bearer token at 64 connections: requests/s, p50, p99.
Then, on Revenge: login p50/p99 (argon2id with the configured parameters), the cost of
a session-cache miss (first request after a restart, and 200 fresh sessions), and the
revocation delay across ``--workers 2`` (logout, then fresh connections until every
answer is 401).

Needs wrk (Debian ``wrk``), PostgreSQL (``REVENGE_BENCH_PG_ADMIN_URL``, default the
local trust server). Options: ``--rounds 3 --duration 5 --connections 64 --threads 1 --skip-revocation
--target module:app`` (another build of the Revenge app, e.g. a patched one),
``--variant LABEL:KEY=VALUE,...`` (repeatable: one more Revenge server in the same
interleaved rounds, with these environment variables; ``PYTHONPATH=dir`` is put in
front, so ``PYTHONPATH=/tmp/old/python`` serves an older checkout side by side).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

import psutil
import psycopg

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get(
    "REVENGE_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ADMIN_PASSWORD = "bench-" + secrets.token_urlsafe(12)
ME = "/api/v1/me"


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us: float = 0.0
    """CPU time (user + system) of the server's processes per request: what a request
    costs the server however busy the machine is (throughput there is CPU it got)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- processes ---------------------------------------------------------------------------


@contextmanager
def server(
    argv: Sequence[str], port: int, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as sink:
        process = subprocess.Popen(
            argv, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=ROOT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                sys.exit(f"{argv[2:]} exited {process.returncode}; see {log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health/live")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"{argv[2:]} did not start; see {log}")
                time.sleep(0.1)
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


PIN: dict[str, list[str]] = {"server": [], "load": []}
"""``taskset`` prefixes set by ``--pin``: servers on one set of CPUs, wrk on the other."""


def granian(target: str, port: int, workers: int = 1) -> list[str]:
    return [*PIN["server"],
        sys.executable, "-m", "granian", "--interface", "rsgi", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--no-ws", "--log-level", "warning",
        target,
    ]  # fmt: skip


def uvicorn(target: str, port: int) -> list[str]:
    return [*PIN["server"],
        sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
        "--log-level", "warning", target,
    ]  # fmt: skip


# -- wrk ---------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def wrk(url: str, args: argparse.Namespace, *extra: str, connections: int | None = None,
        duration: float | None = None, env: dict[str, str] | None = None) -> WrkResult:  # fmt: skip
    argv = [
        *PIN["load"], "wrk", f"-t{args.threads}", f"-c{connections or args.connections}",
        f"-d{round(duration or args.duration)}s", "--latency", *extra, url,
    ]  # fmt: skip
    out = subprocess.run(
        argv, capture_output=True, text=True, check=True, env={**os.environ, **(env or {})}
    ).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if len(percentiles) != 2:
        sys.exit(f"cannot read wrk output:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    total = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(bad[1]) if bad else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(rps, _ms(percentiles["50"]), _ms(percentiles["99"]), errors, total)


APPS = ("revenge", "fastapi+uvicorn (a)", "bare rsgi floor (b)")


def median_result(results: list[WrkResult]) -> WrkResult:
    """Per metric median over rounds (errors summed)."""
    return WrkResult(
        statistics.median(r.rps for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
        sum(r.requests for r in results),
        statistics.median(r.cpu_us for r in results),
    )


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``"no-jobs:REVENGE_JOBS__IN_PROCESS_WORKER=false"`` -> label and environment.

    >>> parse_variant("old:PYTHONPATH=/tmp/old/python,A=1")
    ('old', {'PYTHONPATH': '/tmp/old/python', 'A': '1'})
    """
    label, _, spec = text.partition(":")
    env = dict(item.split("=", 1) for item in spec.split(",") if item)
    return label, env


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of a server and its workers so far."""
    total = 0.0
    for proc in (process, *process.children(recursive=True)):
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def bench_me(url: str, token: str, args: argparse.Namespace, process: psutil.Process, *,
             warm: bool = True) -> WrkResult:  # fmt: skip
    auth = ("-H", f"Authorization: Bearer {token}")
    if warm:  # connections, caches, branch predictors
        wrk(url, args, *auth, duration=min(2, args.duration))
    before = cpu_seconds(process)
    result = wrk(url, args, *auth)
    result.cpu_us = (cpu_seconds(process) - before) / max(1, result.requests) * 1e6
    return result


# -- Revenge helpers ---------------------------------------------------------------------


def admin_connect(url: str = PG_ADMIN_URL) -> psycopg.Connection[tuple[object, ...]]:
    """A connection, retried: a shared server may be briefly out of connection slots."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def fresh_database() -> tuple[str, str]:
    name = f"revenge_bench_{uuid.uuid4().hex[:10]}"
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str) -> None:
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def request(conn: http.client.HTTPConnection, method: str, path: str,
            body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:  # fmt: skip
    conn.request(method, path, body=body, headers=headers or {})
    reply = conn.getresponse()
    return reply.status, reply.read()


def login(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode()
    status, data = request(
        conn, "POST", "/api/v1/auth/login", body, {"content-type": "application/json"}
    )
    conn.close()
    if status != 200:
        sys.exit(f"login failed: {status} {data[:200]!r}")
    return str(json.loads(data)["token"])


def timed_get(conn: http.client.HTTPConnection, token: str) -> tuple[int, float]:
    started = time.perf_counter()
    status, _ = request(conn, "GET", ME, headers={"authorization": f"Bearer {token}"})
    return status, (time.perf_counter() - started) * 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def seed_sessions(url: str, count: int) -> list[str]:
    """``count`` valid sessions for the admin, inserted directly: their first use is a miss."""
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    with admin_connect(url) as conn:
        user_id = conn.execute("SELECT id FROM users WHERE username = 'admin'").fetchone()[0]  # type: ignore[index]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (%s, %s, now() + interval '1 day')",
                [(sha256(t.encode()).hexdigest(), user_id) for t in tokens],
            )
    return tokens


def miss_cost(port: int, url: str, token: str, start_server) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """First request after a restart, then 200 fresh sessions: miss vs hit on one connection."""
    result: dict[str, float] = {}
    with start_server():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        request(conn, "GET", "/health/live")  # connection up; not what we measure
        status, first = timed_get(conn, token)
        assert status == 200, status
        hits = [timed_get(conn, token)[1] for _ in range(200)]
        result["restart_first_ms"] = first
        result["restart_hit_p50_ms"] = statistics.median(hits)
        tokens = seed_sessions(url, 200)
        misses = []
        for t in tokens:
            status, elapsed = timed_get(conn, t)
            assert status == 200, status
            misses.append(elapsed)
        hits = [timed_get(conn, t)[1] for t in tokens]
        result.update(
            miss_p50_ms=statistics.median(misses), miss_p99_ms=pct(misses, 0.99),
            hit_p50_ms=statistics.median(hits), hit_p99_ms=pct(hits, 0.99),
        )  # fmt: skip
        conn.close()
    return result


def revocation_delay(port: int, rounds: int) -> list[float]:
    """Per round: ms from sending the logout until no worker accepts the token any more.

    Each probe uses a fresh connection so the kernel spreads probes over both workers;
    the round ends after 100 consecutive 401s. The delay is the time of the last 200
    seen after the logout was sent (0 when the first probe was already refused).
    """
    delays = []
    for _ in range(rounds):
        token = login(port)
        for _ in range(100):  # warm: both workers cache the token
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            assert timed_get(conn, token)[0] == 200
            conn.close()
        logout = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        sent = time.perf_counter()
        status, _ = request(
            logout, "POST", "/api/v1/auth/logout", headers={"authorization": f"Bearer {token}"}
        )
        assert status == 204, status
        last_accept = 0.0
        refused_in_a_row = 0
        deadline = sent + 10
        while refused_in_a_row < 100:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            status, _ = timed_get(conn, token)
            conn.close()
            if status == 200:
                last_accept = (time.perf_counter() - sent) * 1000
                refused_in_a_row = 0
            else:
                refused_in_a_row += 1
            if time.perf_counter() > deadline:
                sys.exit("revocation did not reach every worker within 10 s")
        delays.append(last_accept)
    return delays


# -- main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="turns over the three apps")
    parser.add_argument("--connections", type=int, default=64)
    # One wrk thread: on a 2-core machine a second one takes CPU from the server under test.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-revocation", action="store_true")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="wrk on CPU 0, the servers on the others (taskset): fewer migrations, steadier tails",
    )
    parser.add_argument(
        "--target", default="revenge.app:app", help="the Revenge app to serve (module:attr)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        type=parse_variant,
        help="LABEL:KEY=VALUE,... another Revenge server with this environment (repeatable)",
    )
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if args.pin and len(cpus) >= 2:
        PIN["load"] = ["taskset", "-c", str(cpus[0])]
        PIN["server"] = ["taskset", "-c", ",".join(map(str, cpus[1:]))]

    logs = Path(tempfile.mkdtemp(prefix="revenge-bench-"))
    db_name, db_url = fresh_database()
    try:
        from revenge.infra.database import migrate

        asyncio.run(migrate(db_url))
        env = {
            "REVENGE_DATABASE__URL": db_url,
            "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        port, fastapi_port, floor_port = free_port(), free_port(), free_port()

        def revenge(workers: int = 1):  # type: ignore[no-untyped-def]
            return server(granian(args.target, port, workers), port, env, logs / "revenge.log")

        names = [*APPS, *(f"revenge {label}" for label, _ in args.variant)]
        samples: dict[str, list[WrkResult]] = {name: [] for name in names}
        with revenge() as main_server, ExitStack() as variants:
            token = login(port)
            ref_env = {**env, "BENCH_TOKEN": token}
            fastapi = uvicorn("benches.http.ref_fastapi:app", fastapi_port)
            floor_app = granian("benches.http.ref_rsgi:app", floor_port)
            variant_ports = [free_port() for _ in args.variant]
            processes = [main_server]
            for (label, extra), variant_port in zip(args.variant, variant_ports, strict=True):
                variant_env = {**env, **extra}
                if "PYTHONPATH" in extra:
                    variant_env["PYTHONPATH"] = os.pathsep.join(
                        [extra["PYTHONPATH"], env["PYTHONPATH"]]
                    )
                processes.append(variants.enter_context(
                    server(granian(args.target, variant_port), variant_port, variant_env,
                           logs / f"revenge-{label}.log")
                ))  # fmt: skip
            with (
                server(fastapi, fastapi_port, ref_env, logs / "fastapi.log") as fastapi_server,
                server(floor_app, floor_port, ref_env, logs / "rsgi.log") as floor_server,
            ):
                # All up at once and measured in turns, so a burst of load from
                # elsewhere on the machine spreads over all of them instead of one.
                processes[1:1] = [fastapi_server, floor_server]
                served = list(
                    zip(
                        names,
                        (port, fastapi_port, floor_port, *variant_ports),
                        processes,
                        strict=True,
                    )
                )
                for round_ in range(args.rounds):
                    # Each round starts one app later, so no app always follows the same one.
                    shift = round_ % len(served)
                    for name, app_port, process in served[shift:] + served[:shift]:
                        me_url = f"http://127.0.0.1:{app_port}{ME}"
                        samples[name].append(bench_me(
                            me_url, token, args, psutil.Process(process.pid), warm=round_ == 0
                        ))  # fmt: skip
            login_env = {
                "BENCH_LOGIN_BODY": json.dumps({"username": "admin", "password": ADMIN_PASSWORD})
            }
            login_result = wrk(
                f"http://127.0.0.1:{port}/api/v1/auth/login", args, "-s", str(ROOT / "benches/http/login.lua"),
                connections=4, duration=min(args.duration, 6), env=login_env,
            )  # fmt: skip
        rows = {name: median_result(results) for name, results in samples.items()}
        misses = miss_cost(port, db_url, token, revenge)
        delays: list[float] | None = [] if args.skip_revocation else None
        if delays is None:
            with revenge(workers=2):
                delays = revocation_delay(port, rounds=5)
    finally:
        drop_database(db_name)

    ours, base, floor = (rows[name] for name in APPS)
    print(f"\nGET {ME}, valid bearer token, {args.connections} connections, wrk -t{args.threads}, "
          f"median of {args.rounds} rounds x {args.duration:g}s, 1 worker"
          f"{', wrk and servers pinned to separate CPUs' if PIN['load'] else ''} (logs: {logs})\n")  # fmt: skip
    print("| app | req/s | p50 ms | p99 ms | errors | vs fastapi | vs floor | vs floor, per round "
          "| server CPU us/req | floor CPU / this |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    floor_runs = samples[APPS[2]]
    for name, r in rows.items():
        # The ratio within each round (same minute, same neighbours), then its median.
        per_round = statistics.median(
            s.rps / f.rps for s, f in zip(samples[name], floor_runs, strict=True)
        )
        print(f"| {name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} "
              f"| {r.rps / base.rps:.2f}x | {r.rps / floor.rps:.2f}x | {per_round:.2f}x "
              f"| {r.cpu_us:.1f} | {floor.cpu_us / r.cpu_us:.2f}x |")  # fmt: skip
    print(f"\nlogin (argon2id, 4 connections): {login_result.rps:.1f} req/s, "
          f"p50 {login_result.p50_ms:.1f} ms, p99 {login_result.p99_ms:.1f} ms, "
          f"non-2xx {login_result.errors}")  # fmt: skip
    print(f"session-cache miss: first request after restart {misses['restart_first_ms']:.2f} ms "
          f"(hits then: p50 {misses['restart_hit_p50_ms']:.3f} ms); 200 fresh sessions: "
          f"miss p50 {misses['miss_p50_ms']:.2f} / p99 {misses['miss_p99_ms']:.2f} ms, "
          f"hit p50 {misses['hit_p50_ms']:.3f} / p99 {misses['hit_p99_ms']:.3f} ms "
          f"(one keep-alive connection, sequential)")  # fmt: skip
    if delays:
        print(f"revocation across 2 workers: last acceptance after logout, {len(delays)} rounds: "
              f"max {max(delays):.1f} ms, median {statistics.median(delays):.1f} ms "
              f"(0 = refused from the first probe)")  # fmt: skip
    targets = {
        ">= 4x fastapi": ours.rps >= 4 * base.rps,
        ">= 0.7x floor": ours.rps >= 0.7 * floor.rps,
        "p99 < 3 ms": ours.p99_ms < 3,
    }
    if delays:
        targets["revocation < 1 s"] = max(delays) < 1000
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items()))


if __name__ == "__main__":
    main()
