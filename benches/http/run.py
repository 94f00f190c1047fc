"""HTTP load harness for the hot path: ``python -m benches.http.run`` prints the table and verdicts.

In one run, on this machine, with the same wrk settings for each (``benches/http/harness.py``):

* ``revenge``   — ``granian --interface rsgi --workers 1 revenge.app:app`` (real PostgreSQL)
* ``fastapi``   — reference (a): FastAPI on uvicorn, ``cachetools.TTLCache`` session check
* ``floor``     — reference (b): bare Granian RSGI app, dict session check

``GET /api/v1/me`` with a valid bearer token at 64 connections, after every app was
checked to answer 200 with the same JSON body: requests/s, p50, p99, errors (wrk's
non-2xx and socket errors), server CPU per request, and the per-round ratios to the
floor. Then, on Revenge: login p50/p99 (argon2id with the configured parameters), the
cost of a session-cache miss (first request after a restart, and 200 fresh sessions),
and the revocation delay across ``--workers 2`` (logout, then fresh connections until
every answer is 401). Every wrk output, every round's numbers, the command and the
commit are kept under ``benches/results/http-me-<time>/``.

Needs wrk (Debian ``wrk``), PostgreSQL (``REVENGE_BENCH_PG_ADMIN_URL``, default the
local trust server). Options: ``--rounds 3 --duration 5 --connections 64 --threads 1
--skip-revocation --pin --target module:app`` (another build of the Revenge app),
``--variant LABEL:KEY=VALUE,...`` (repeatable: one more Revenge server in the same
interleaved rounds, with these environment variables; ``PYTHONPATH=dir`` is put in
front, so ``PYTHONPATH=/tmp/old/python`` serves an older checkout side by side;
``APP=module:attr`` serves another app object, e.g. ``benches.http.gc_app:app``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from hashlib import sha256
from pathlib import Path

from benches.http.harness import (
    ROOT,
    Server,
    Target,
    admin_connect,
    check_answers,
    free_port,
    fresh_database,
    granian,
    measure,
    parse_variant,
    pin,
    revenge_env,
    run_wrk,
    serve,
    summarize,
    table,
    uvicorn,
    verdicts,
)
from benches.record import RunRecord

ADMIN_PASSWORD = "bench-" + secrets.token_urlsafe(12)
ME = "/api/v1/me"
REVENGE, FASTAPI, FLOOR = "revenge", "fastapi+uvicorn (a)", "bare rsgi floor (b)"


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
        user_id = conn.execute("SELECT id FROM users WHERE username = 'admin'").fetchone()[0]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (%s, %s, now() + interval '1 day')",
                [(sha256(t.encode()).hexdigest(), user_id) for t in tokens],
            )
    return tokens


def _expect_200(status: int, what: str) -> None:
    if status != 200:
        sys.exit(f"{what}: answered {status}, not 200: not measuring a failure")


def miss_cost(
    port: int, url: str, token: str, start_server: Callable[[], AbstractContextManager[Server]]
) -> dict[str, float]:
    """First request after a restart, then 200 fresh sessions: miss vs hit on one connection."""
    result: dict[str, float] = {}
    with start_server():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        request(conn, "GET", "/health/live")  # connection up; not what we measure
        status, first = timed_get(conn, token)
        _expect_200(status, "first request after restart")
        hits = []
        for _ in range(200):
            status, elapsed = timed_get(conn, token)
            _expect_200(status, "hit after restart")
            hits.append(elapsed)
        result["restart_first_ms"] = first
        result["restart_hit_p50_ms"] = statistics.median(hits)
        tokens = seed_sessions(url, 200)
        misses, hits = [], []
        for t in tokens:
            status, elapsed = timed_get(conn, t)
            _expect_200(status, "fresh session (miss)")
            misses.append(elapsed)
        for t in tokens:
            status, elapsed = timed_get(conn, t)
            _expect_200(status, "fresh session (hit)")
            hits.append(elapsed)
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
            _expect_200(timed_get(conn, token)[0], "warming the token on both workers")
            conn.close()
        logout = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        sent = time.perf_counter()
        status, _ = request(
            logout, "POST", "/api/v1/auth/logout", headers={"authorization": f"Bearer {token}"}
        )
        if status != 204:
            sys.exit(f"logout answered {status}, not 204")
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
            elif status == 401:
                refused_in_a_row += 1
            else:
                sys.exit(f"a probe after logout answered {status} (expected 200 or 401)")
            if time.perf_counter() > deadline:
                sys.exit("revocation did not reach every worker within 10 s")
        delays.append(last_accept)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="turns over the apps")
    parser.add_argument("--connections", type=int, default=64)
    # One wrk thread: on a 2-core machine a second one takes CPU from the server under test.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-revocation", action="store_true")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="wrk on CPU 0, the servers on the others (taskset): fewer migrations",
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
    if args.pin:
        pin()
    record = RunRecord("http-me")
    record.header()
    logs = Path(tempfile.mkdtemp(prefix="revenge-bench-"))
    with fresh_database() as db_url, ExitStack() as stack:
        env = revenge_env(db_url, ADMIN_PASSWORD)
        port = free_port()

        def revenge(workers: int = 1) -> AbstractContextManager[Server]:
            return serve(granian(args.target, port, workers), port, env, logs / "revenge.log")

        main_server = stack.enter_context(revenge())
        token = login(port)
        auth = {"authorization": f"Bearer {token}"}
        me_body = _get_json(port, auth)
        ref_env = {**env, "BENCH_TOKEN": token, "BENCH_ME": json.dumps(me_body)}
        fastapi_port, floor_port = free_port(), free_port()
        targets = [Target(REVENGE, f"http://127.0.0.1:{port}{ME}", main_server)]
        for label, extra in args.variant:
            variant_port = free_port()
            app = extra.pop("APP", args.target)
            server = stack.enter_context(
                serve(granian(app, variant_port), variant_port, revenge_env(db_url, ADMIN_PASSWORD, extra),
                      logs / f"revenge-{label}.log")
            )  # fmt: skip
            targets.append(
                Target(f"revenge {label}", f"http://127.0.0.1:{variant_port}{ME}", server)
            )
        fastapi = stack.enter_context(
            serve(uvicorn("benches.http.ref_fastapi:app", fastapi_port), fastapi_port, ref_env,
                  logs / "fastapi.log", ready_path=ME)
        )  # fmt: skip
        floor = stack.enter_context(
            serve(granian("benches.http.ref_rsgi:app", floor_port), floor_port, ref_env,
                  logs / "rsgi.log", ready_path=ME)
        )  # fmt: skip
        targets[1:1] = [
            Target(FASTAPI, f"http://127.0.0.1:{fastapi_port}{ME}", fastapi),
            Target(FLOOR, f"http://127.0.0.1:{floor_port}{ME}", floor),
        ]
        # All up at once and measured in turns, so a burst of load from elsewhere on
        # the machine spreads over all of them instead of one. Same work, same answer:
        # the bodies are compared first.
        check_answers(targets, auth, record)
        samples = measure(
            targets, [args.connections], rounds=args.rounds, seconds=args.duration,
            threads=args.threads, headers=[f"Authorization: Bearer {token}"], record=record,
        )  # fmt: skip
        login_body = json.dumps({"username": "admin", "password": ADMIN_PASSWORD})
        login_wrk, login_output = run_wrk(
            f"http://127.0.0.1:{port}/api/v1/auth/login", connections=4,
            seconds=6, threads=args.threads, timeout=10,
            script=ROOT / "benches/http/login.lua", env={"BENCH_LOGIN_BODY": login_body},
        )  # fmt: skip
        record.raw("login", login_output)
        for label, extra in args.variant:  # gc_app's per-worker collector logs, if any
            if extra.get("BENCH_GC_LOG"):
                for log in sorted(Path(extra["BENCH_GC_LOG"]).parent.glob(
                        Path(extra["BENCH_GC_LOG"]).name + ".*.json")):  # fmt: skip
                    record.raw(f"gc-{label}-{log.name}", log.read_text())
                    record.print(f"collector, revenge {label} worker: {log.read_text()}")
        stack.close()  # every server down before the restart and two-worker measurements
        misses = miss_cost(port, db_url, token, revenge)
        delays: list[float] = []
        if not args.skip_revocation:
            with revenge(workers=2):
                delays = revocation_delay(port, rounds=5)
    _report(record, args, samples, login_wrk, misses, delays, logs)


def _report(record, args, samples, login_wrk, misses, delays, logs) -> None:  # type: ignore[no-untyped-def]
    rows = summarize(samples, FLOOR)
    by_label = {r.label: r for r in rows}
    vs_fastapi = {r.label: f"{_ratio(samples, r.label, FASTAPI):.2f}x" for r in rows}
    pinned = ", wrk and servers pinned to separate CPUs" if args.pin else ""
    record.print(
        f"\nGET {ME}, valid bearer token, {args.connections} connections, wrk -t{args.threads}, "
        f"median of {args.rounds} interleaved rounds x {args.duration:g}s, 1 Granian worker{pinned} "
        f"(server logs: {logs})\n"
    )
    for line in table(rows, "floor", {"x fastapi, per round": vs_fastapi}):
        record.print(line)
    record.print(
        f"\nlogin (argon2id, 4 connections): {login_wrk.rps:.1f} req/s, "
        f"p50 {login_wrk.p50_ms:.1f} ms, p99 {login_wrk.p99_ms:.1f} ms, "
        f"{login_wrk.errors} errors of {login_wrk.requests}"
    )
    record.print(
        f"session-cache miss: first request after restart {misses['restart_first_ms']:.2f} ms "
        f"(hits then: p50 {misses['restart_hit_p50_ms']:.3f} ms); 200 fresh sessions: "
        f"miss p50 {misses['miss_p50_ms']:.2f} / p99 {misses['miss_p99_ms']:.2f} ms, "
        f"hit p50 {misses['hit_p50_ms']:.3f} / p99 {misses['hit_p99_ms']:.3f} ms "
        "(one keep-alive connection, sequential)"
    )
    record.round(kind="misses", **misses)
    if delays:
        record.round(kind="revocation", delays_ms=delays)
        record.print(
            f"revocation across 2 workers: last acceptance after logout, {len(delays)} rounds: "
            f"max {max(delays):.1f} ms, median {statistics.median(delays):.1f} ms "
            "(0 = refused from the first probe)"
        )
    ours = by_label[REVENGE]
    fastapi_ratio = _ratio(samples, REVENGE, FASTAPI)
    checks = [
        (">= 4x fastapi, per round", fastapi_ratio >= 4, f"{fastapi_ratio:.2f}x"),
        (">= 0.85x floor, per round (issue 9)", ours.rps_ratio >= 0.85, f"{ours.rps_ratio:.2f}x"),
        ("p99 <= 1.2x the floor's p99, per round", ours.p99_ratio <= 1.2,
         f"{ours.p99_ratio:.2f}x: {ours.p99_ms:.2f} ms vs {by_label[FLOOR].p99_ms:.2f} ms"),
        ("p99 < 3 ms (absolute, issue 6)", ours.p99_ms < 3, f"{ours.p99_ms:.2f} ms"),
    ]  # fmt: skip
    if delays:
        checks.append(("revocation < 1 s", max(delays) < 1000, f"max {max(delays):.1f} ms"))
    # A login run that completed nothing measured nothing: it counts as a failure.
    failed = sum(r.errors for r in rows) + login_wrk.errors + (login_wrk.requests == 0)
    result = verdicts(checks, failed)
    record.print("\ntargets:")
    for name, verdict in result.items():
        record.print(f"- {name}: {verdict}")
    record.finish(result)


def _ratio(samples, label: str, baseline: str) -> float:  # type: ignore[no-untyped-def]
    """Median over rounds of label's req/s over baseline's in the same round."""
    mine = {s.round: s.wrk.rps for s in samples if s.label == label}
    base = {s.round: s.wrk.rps for s in samples if s.label == baseline}
    return statistics.median(mine[r] / base[r] for r in mine)


def _get_json(port: int, headers: dict[str, str]) -> object:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    status, body = request(conn, "GET", ME, headers=headers)
    conn.close()
    _expect_200(status, f"GET {ME} on Revenge")
    return json.loads(body)


if __name__ == "__main__":
    main()
