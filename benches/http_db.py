"""HTTP load harness for DB-backed routes: wrk at 16 and 64 connections, rps / p50 / p99.

    python benches/http_db.py                              # Revenge's DB route vs its floor
    python benches/http_db.py --floor                      # start the floor app, measure it
    python benches/http_db.py --floor --revenge-pool       # + the same app through Database
    python benches/http_db.py --floor http://127.0.0.1:8096/some/db/route
    python benches/http_db.py URL_A URL_B                  # B compared with A

With no URL and no ``--floor`` (the issue 5 benchmark): a fresh database is
migrated and two servers start side by side, one Granian worker each (uvloop):
``revenge.app:app`` and the ``sessions`` floor of ``benches/floor_db_rsgi.py``.
Both answer ``GET /api/v1/auth/sessions`` for the bootstrap admin (5 sessions):
a bearer-token check (Revenge: its authenticator, Rust session-cache hit; the
floor: a dict), one pooled ``SELECT`` on ``sessions``, the same JSON (checked
equal first). Both reach PostgreSQL the same way, TCP with ``sslmode=disable``
(``--db-socket`` for the Unix socket); the local server would otherwise
negotiate TLS, which costs about 40%. They are measured in interleaved rounds
at 16 and 64 connections; ``x floor`` is the median of the per-round ratios.
About 100 s with the defaults (5 rounds x 4 s).

With ``--floor`` the bare Granian RSGI app of ``benches/floor_db_rsgi.py`` is
started on a free port (one worker, uvloop) and measured first; it is the
baseline every other URL is compared with (``x floor`` = that URL's
requests/s over the floor's at the same connection count). Targets from
issue 5: p99 < 5 ms at 16 connections; at 64, >= 0.9x the floor's requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import psycopg

BENCHES = Path(__file__).resolve().parent
ROOT = BENCHES.parent
PG_ADMIN_URL = os.environ.get(
    "REVENGE_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SESSIONS_PATH = "/api/v1/auth/sessions"
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


def run_wrk(
    url: str, connections: int, seconds: float, threads: int, headers: Sequence[str] = ()
) -> str:
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    for header in headers:
        cmd += ["-H", header]
    cmd.append(url)
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


Runs = dict[tuple[str, int], list[tuple[float, float, float, int]]]
CpuRuns = dict[tuple[str, int], list[float]]
_TICKS = os.sysconf("SC_CLK_TCK")


def _group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in group ``pgid`` (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[2]) == pgid:  # pgrp; utime and stime follow at 11 and 12
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def measure(
    targets: list[tuple[str, str]],
    connections: list[int],
    seconds: float,
    threads: int,
    repeat: int = 1,
    headers: Sequence[str] = (),
    runs: Runs | None = None,
    cpu: CpuRuns | None = None,
    pgids: dict[str, int] | None = None,
) -> list[Result]:
    """Each target at each connection count, ``repeat`` times interleaved; medians reported.

    Interleaving (A B A B ...) spreads load from anything else on the machine over
    all targets alike, so the ratios stay fair when the absolute numbers are not.
    Pass ``runs`` to get every round's numbers too, and ``pgids`` (label -> the
    server's process group) to get in ``cpu`` its CPU µs per request in each round.
    """
    for _, url in targets:
        for conns in connections:  # warm-up: pool grown, caches hot
            run_wrk(url, conns, 1, threads, headers)
    runs = {} if runs is None else runs
    for _ in range(repeat):
        for conns in connections:
            for label, url in targets:
                pgid = (pgids or {}).get(label)
                before = _group_cpu_seconds(pgid) if pgid else 0.0
                output = run_wrk(url, conns, seconds, threads, headers)
                runs.setdefault((label, conns), []).append(parse_wrk(output))
                if pgid and cpu is not None:
                    used = _group_cpu_seconds(pgid) - before
                    served = int(re.search(r"(\d+) requests in", output)[1])  # type: ignore[index]
                    cpu.setdefault((label, conns), []).append(used / max(served, 1) * 1e6)
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


def table(results: list[Result], runs: Runs | None = None) -> str:
    """One line per target and connection count; the ratio is to the first target.

    With ``runs``, the ratio is the median of the per-round ratios (same minute,
    same neighbours on the machine) rather than the ratio of the medians.
    """
    first = results[0].label
    baseline = {r.connections: r.rps for r in results if r.label == first}
    lines = [
        f"{'target':<28} {'conns':>5} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'x floor':>8}",
    ]
    for r in results:
        if runs is not None:
            ratio = _round_ratio(runs, r.label, first, r.connections)
        elif baseline.get(r.connections):
            ratio = r.rps / baseline[r.connections]
        else:
            ratio = float("nan")
        lines.append(
            f"{r.label:<28} {r.connections:>5} {r.rps:>9.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} "
            f"{r.errors:>6} {ratio:>8.2f}"
        )
    return "\n".join(lines)


# -- the issue 5 benchmark: Revenge's GET /api/v1/auth/sessions against its floor ----------


def _admin_connect(url: str = PG_ADMIN_URL) -> psycopg.Connection[tuple[object, ...]]:
    """A connection, retried: a shared server may be briefly out of connection slots."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextmanager
def fresh_database(socket_dir: str | None) -> Iterator[str]:
    """A migrated throw-away database; its URL avoids TLS (TCP with sslmode=disable, or a socket)."""
    from revenge.infra.database import migrate

    name = f"revenge_benchdb_{uuid.uuid4().hex[:10]}"
    with _admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    if socket_dir:
        url = f"postgresql://postgres@/{name}?host={socket_dir}"
    else:
        url = f"{base}/{name}?sslmode=disable"
    try:
        asyncio.run(migrate(url))
        yield url
    finally:
        with _admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _http(url: str, body: bytes | None = None, token: str | None = None) -> tuple[int, bytes]:
    headers = {"content-type": "application/json"} if body is not None else {}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return int(reply.status), reply.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def _wait_answering(proc: subprocess.Popen[bytes], url: str, limit: float = 60.0) -> None:
    """Until ``url`` answers at all (any status): the server is up."""
    deadline = time.monotonic() + limit
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server for {url} exited with {proc.returncode}")
        try:
            _http(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer within {limit:g}s") from None
            time.sleep(0.1)


def _granian(target: str, port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "granian", "--interface", "rsgi", "--loop", "uvloop",
        "--workers", "1", "--no-ws", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", target,
    ]  # fmt: skip
    return subprocess.Popen(cmd, start_new_session=True, env={**os.environ, **env}, cwd=cwd)


def _seed_sessions(url: str, user_id: int, count: int) -> None:
    """More sessions for the user, so the listing has a few rows to read and encode."""
    rows = [(sha256(uuid.uuid4().bytes).hexdigest(), user_id, n) for n in range(1, count + 1)]
    with _admin_connect(url) as conn, conn.cursor() as cur:
        # Distinct last_seen_at: the listing's ORDER BY has no ties, so its order is fixed.
        cur.executemany(
            "INSERT INTO sessions (token_hash, user_id, expires_at, last_seen_at, client, ip) "
            "VALUES (%s, %s, now() + interval '1 day', now() - make_interval(mins => %s), "
            "'bench/1.0', '10.0.0.7')",
            rows,
        )


def sessions_benchmark(args: argparse.Namespace, connections: list[int]) -> int:
    password = "bench-" + uuid.uuid4().hex
    servers: list[subprocess.Popen[bytes]] = []
    runs: Runs = {}
    cpu: CpuRuns = {}
    with fresh_database(args.db_socket) as db_url:
        try:
            revenge_port, floor_port = _free_port(), _free_port()
            revenge_env = {
                "REVENGE_DATABASE__URL": db_url,
                "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": password,
                "REVENGE_DATABASE__MAX_CONNS": str(args.pool_max),
                "REVENGE_DATABASE__MIN_CONNS": str(args.pool_min),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            }  # fmt: skip
            servers.append(_granian("revenge.app:app", revenge_port, revenge_env, ROOT))
            revenge_url = f"http://127.0.0.1:{revenge_port}{SESSIONS_PATH}"
            _wait_answering(servers[-1], f"http://127.0.0.1:{revenge_port}/health/live")
            status, raw = _http(
                f"http://127.0.0.1:{revenge_port}/api/v1/auth/login",
                json.dumps({"username": "admin", "password": password}).encode(),
            )
            if status != 200:
                raise SystemExit(f"login failed: {status} {raw[:200]!r}")
            login = json.loads(raw)
            token, user_id = str(login["token"]), int(login["user"]["id"])
            _seed_sessions(db_url, user_id, 4)

            floor_env = {
                "REVENGE_BENCH_DB_URL": db_url,
                "BENCH_TOKEN": token,
                "BENCH_USER_ID": str(user_id),
                "FLOOR_POOL_MAX": str(args.pool_max),
                "FLOOR_POOL_MIN": str(args.pool_min),
            }
            servers.append(_granian("floor_db_rsgi:sessions", floor_port, floor_env, BENCHES))
            floor_url = f"http://127.0.0.1:{floor_port}{SESSIONS_PATH}"
            _wait_answering(servers[-1], floor_url)

            targets = [("floor (granian+psycopg_pool)", floor_url), ("revenge", revenge_url)]
            for label, extra in args.variant:
                port = _free_port()
                servers.append(_granian("revenge.app:app", port, {**revenge_env, **extra}, ROOT))
                _wait_answering(servers[-1], f"http://127.0.0.1:{port}/health/live")
                targets.append((f"revenge {label}", f"http://127.0.0.1:{port}{SESSIONS_PATH}"))

            # Same work means the same answer: compare the bodies before timing anything,
            # after one request each (a server's first use of the token is a cache miss,
            # which touches last_seen_at).
            for _, url in targets:
                _http(url, token=token)
            answers = [_http(url, token=token) for _, url in targets]
            if any(status != 200 for status, _ in answers):
                raise SystemExit(f"a server refused the token: {answers}")
            floor_body, *revenge_bodies = (json.loads(body) for _, body in answers)
            for revenge_body in revenge_bodies:
                if floor_body != revenge_body:
                    raise SystemExit(
                        f"bodies differ:\nfloor   {floor_body}\nrevenge {revenge_body}"
                    )
            sessions = len(floor_body["sessions"])

            headers = [f"Authorization: Bearer {token}"]
            pgids = {
                label: proc.pid
                for (label, _), proc in zip(targets, _in_target_order(servers), strict=True)
            }
            results = measure(
                targets, connections, args.seconds, args.threads, args.repeat, headers, runs,
                cpu, pgids,
            )  # fmt: skip
        finally:
            for proc in servers:
                stop(proc)

    how = f"Unix socket {args.db_socket}" if args.db_socket else "TCP, sslmode=disable"
    print(
        f"GET {SESSIONS_PATH} ({sessions} sessions, identical bodies), PostgreSQL over {how}; "
        f"wrk -t{args.threads}, median of {args.repeat} interleaved rounds x {args.seconds:g}s, "
        f"1 Granian worker each, pools min {args.pool_min} / max {args.pool_max}\n"
    )
    print(table(results, runs))
    print("\nserver CPU per request (Granian process group, user+system, median of rounds):")
    for (label, conns), values in cpu.items():
        print(f"  {label:<28} {conns:>3} conns  {statistics.median(values):7.1f} us")
    floor_label, revenge_label = targets[0][0], targets[1][0]
    verdicts = []
    for r in results:
        if r.label != revenge_label:
            continue
        if r.connections == 16:
            verdicts.append(f"p99 < 5 ms at 16: {'met' if r.p99_ms < 5 else 'NOT met'}")
        if r.connections == 64:
            ratio = _round_ratio(runs, revenge_label, floor_label, 64)
            verdicts.append(f">= 0.9x floor at 64: {'met' if ratio >= 0.9 else 'NOT met'}")
    print("targets: " + "; ".join(verdicts))
    return 0


def _in_target_order(servers: list[subprocess.Popen[bytes]]) -> list[subprocess.Popen[bytes]]:
    """Servers start as revenge, floor, variants...; targets list floor, revenge, variants..."""
    return [servers[1], servers[0], *servers[2:]]


def _round_ratio(runs: Runs, label: str, baseline: str, conns: int) -> float:
    """The median over rounds of (this round's req/s / the baseline's in the same round)."""
    ours, theirs = runs[(label, conns)], runs[(baseline, conns)]
    return statistics.median(a[0] / b[0] for a, b in zip(ours, theirs, strict=True))


# -- where the time goes: CPU per request inside one process, layer by layer -------------


class _Scope:
    """Enough of Granian's RSGI scope for ``HttpApp.__rsgi__``."""

    proto = "http"
    method = "GET"
    path = SESSIONS_PATH
    query_string = ""
    client = "127.0.0.1:40000"
    scheme = "http"

    def __init__(self, token: str) -> None:
        self.headers = {"authorization": f"Bearer {token}", "host": "bench"}


class _Proto:
    """Enough of Granian's RSGI protocol: one response, remembered."""

    status = 0

    def response_bytes(self, status: int, headers: object, body: bytes) -> None:
        self.status = status

    def __aiter__(self) -> _Proto:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration


async def _cpu_us(step: object, n: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per call of the coroutine function ``step``, ``n`` calls in a row."""
    call = step  # an async callable without arguments
    for _ in range(n // 10):  # warm: connections, caches, specialised bytecode
        await call()  # type: ignore[operator]
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await call()  # type: ignore[operator]
    return (
        (time.process_time() - cpu) / n * 1e6,
        (time.perf_counter() - wall) / n * 1e6,
    )


async def _profile(db_url: str, n: int) -> list[tuple[str, float, float]]:
    import orjson
    from psycopg_pool import AsyncConnectionPool

    from revenge.app import build_app
    from revenge.config import load_settings
    from revenge.http import Request, json_response
    from revenge.infra.database import Database
    from revenge.modules.auth import repository

    sys.path.insert(0, str(BENCHES))
    from floor_db_rsgi import SESSIONS_SQL

    password = "bench-" + uuid.uuid4().hex
    settings = load_settings(
        env={"REVENGE_DATABASE__URL": db_url, "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": password}
    )
    app = build_app(settings)
    await app.startup()
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        db_url, min_size=2, max_size=4, kwargs={"autocommit": True}, open=False
    )
    await pool.open(wait=True)
    db = Database(db_url)
    await db.start()
    try:
        body = json.dumps({"username": "admin", "password": password}).encode()

        async def once() -> AsyncIterator[bytes]:
            yield body

        login = Request(
            "POST",
            "/api/v1/auth/login",
            "",
            {"content-type": "application/json"},
            "127.0.0.1",
            "http",
            once(),
            1 << 20,
        )
        reply = await app.handle(login)
        login_body = json.loads(reply.body)
        token, user_id = login_body["token"], int(login_body["user"]["id"])
        _seed_sessions(db_url, user_id, 4)
        digest = sha256(token.encode()).hexdigest()
        scope, proto = _Scope(token), _Proto()
        route = app.router.match("GET", SESSIONS_PATH).route
        assert route is not None

        def request() -> Request:
            return Request(
                "GET", SESSIONS_PATH, "", scope.headers, "127.0.0.1", "http", proto, 1 << 20
            )

        authed = request()
        authed.principal = await app.authenticator(authed)

        async def floor_query() -> None:
            async with pool.connection() as conn:
                await (await conn.execute(SESSIONS_SQL, (user_id,))).fetchall()

        async def floor_full() -> None:
            async with pool.connection() as conn:
                rows = await (await conn.execute(SESSIONS_SQL, (user_id,))).fetchall()
            orjson.dumps(
                {
                    "sessions": [
                        {"id": r[0], "created_at": r[2], "expires_at": r[3], "last_seen_at": r[4],
                         "client": r[5], "ip": r[6], "current": r[1] == digest}
                        for r in rows
                    ]
                }
            )  # fmt: skip

        async def database_query() -> None:
            async with db.connection() as conn:
                await repository.list_sessions(conn, user_id)

        records = await database_query_records(db, user_id)

        async def json_only() -> None:
            json_response({"sessions": [_session_view(r, digest) for r in records]})

        async def authenticate() -> None:
            await app.authenticator(request())

        async def handler() -> None:
            await route.handler(authed)

        async def dispatch() -> None:
            await app.handle(request())

        async def rsgi() -> None:
            await app.__rsgi__(scope, proto)

        steps = [
            ("floor: psycopg_pool checkout + SELECT + fetch", floor_query),
            ("floor: + dicts + orjson (whole floor request)", floor_full),
            ("revenge: Database checkout + SELECT + records", database_query),
            ("revenge: session JSON only (no DB)", json_only),
            ("revenge: authenticator only (cache hit)", authenticate),
            ("revenge: route handler (DB + JSON)", handler),
            ("revenge: HttpApp.handle (route + auth + handler)", dispatch),
            ("revenge: __rsgi__ (Request + handle + send)", rsgi),
        ]
        # Three turns over all steps, the least per step: the order of steps (what ran
        # just before, the loop's other tasks) moves single numbers by 10-20%.
        best: dict[str, tuple[float, float]] = {}
        for _ in range(3):
            for label, step in steps:
                cpu, wall = await _cpu_us(step, n)
                old = best.get(label)
                best[label] = (cpu, wall) if old is None else (min(old[0], cpu), min(old[1], wall))
        assert proto.status == 200, proto.status
        return [(label, *best[label]) for label, _ in steps]
    finally:
        await db.close()
        await pool.close()
        await app.shutdown()


async def database_query_records(db: Any, user_id: int) -> list[Any]:
    from revenge.modules.auth import repository

    async with db.connection() as conn:
        return await repository.list_sessions(conn, user_id)


def _session_view(record: Any, digest: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_seen_at": record.last_seen_at,
        "client": record.client,
        "ip": record.ip,
        "current": record.token_hash == digest,
    }


def inprocess_profile(args: argparse.Namespace) -> int:
    """Sequential calls in one process (uvloop): CPU and wall time per request, by layer."""
    import uvloop

    with fresh_database(args.db_socket) as db_url:
        results = uvloop.run(_profile(db_url, args.calls))
    print(
        f"GET {SESSIONS_PATH} in process, {args.calls} sequential calls per line, "
        "least of 3 turns (uvloop)\n"
    )
    print(f"{'step':<52} {'CPU us':>8} {'wall us':>8}")
    for label, cpu, wall in results:
        print(f"{label:<52} {cpu:>8.1f} {wall:>8.1f}")
    return 0


def _variant(text: str) -> tuple[str, dict[str, str]]:
    """``"no-worker:REVENGE_JOBS__IN_PROCESS_WORKER=false"`` -> label and environment."""
    label, _, pairs = text.partition(":")
    env = dict(pair.split("=", 1) for pair in pairs.split(",") if pair)
    if not label or not env:
        raise argparse.ArgumentTypeError("expected LABEL:KEY=VALUE[,KEY=VALUE...]")
    return label, env


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
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", default="16,64")
    # One wrk thread: on a 2-core machine a second one takes CPU from the servers.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument(
        "--pool-min",
        type=int,
        default=2,
        help="both pools' minimum (Revenge's default 2); equal to --pool-max for fixed-size "
        "pools, which keeps Revenge's scaler from opening more than the floor has",
    )
    parser.add_argument(
        "--pool-max",
        type=int,
        default=16,
        help="both pools' maximum (Revenge's default is 50). Two servers at 50 would exceed "
        "PostgreSQL's max_connections=100 on this shared machine, and Revenge's scaler "
        "overshoots its maximum (psycopg_pool's resize adds min-delta connections)",
    )
    parser.add_argument(
        "--db-socket",
        metavar="DIR",
        help="reach PostgreSQL through the Unix socket in DIR (e.g. /var/run/postgresql)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        type=_variant,
        metavar="LABEL:KEY=VALUE,...",
        help="also measure a Revenge server with this extra environment (repeatable)",
    )
    parser.add_argument(
        "--inprocess",
        action="store_true",
        help="no HTTP: CPU per request in one process, layer by layer (where the time goes)",
    )
    parser.add_argument("--calls", type=int, default=3000, help="calls per --inprocess line")
    args = parser.parse_args(argv)
    if args.inprocess:
        return inprocess_profile(args)
    connections = [int(c) for c in args.connections.split(",")]
    if not args.urls and not args.floor:
        return sessions_benchmark(args, connections)

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
