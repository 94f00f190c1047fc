"""HTTP load harness for DB-backed routes: ``python -m benches.http.db`` prints the table and verdicts.

    python -m benches.http.db                              # Revenge's DB route vs its floor
    python -m benches.http.db --floor                      # start the floor app, measure it
    python -m benches.http.db --floor --revenge-pool       # + the same app through Database
    python -m benches.http.db --floor http://127.0.0.1:8096/some/db/route
    python -m benches.http.db URL_A URL_B                  # B compared with A
    python -m benches.http.db --inprocess                  # CPU per layer, no HTTP

With no URL and no ``--floor`` (the issue 5 benchmark): a fresh database is
migrated and two servers start side by side, one Granian worker each (uvloop):
``revenge.app:app`` and the ``sessions`` floor of ``benches/http/floor_db.py``.
Both answer ``GET /api/v1/auth/sessions`` for the bootstrap admin (5 sessions):
a bearer-token check (Revenge: its authenticator, Rust session-cache hit; the
floor: a dict), one pooled ``SELECT`` on ``sessions``, the same JSON (checked
equal, and 200, before anything is timed). Both reach PostgreSQL the same way,
TCP with ``sslmode=disable`` (``--db-socket`` for the Unix socket). They are
measured with the shared harness (``benches/http/harness.py``): interleaved
rounds at 16 and 64 connections, ratios as the median of the per-round ratios,
errors counted from wrk's output, raw outputs kept under
``benches/results/http-db-<time>/``. About 100 s with the defaults (5 rounds x 4 s).

Targets from issue 5: p99 < 5 ms at 16 connections; at 64, >= 0.9x the floor's
requests/s; neither is "met" if any request failed.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import ExitStack
from hashlib import sha256
from typing import Any

from benches.http.harness import (
    Target,
    admin_connect,
    check_answers,
    free_port,
    fresh_database,
    granian,
    http_call,
    login,
    measure,
    parse_variant,
    revenge_env,
    serve,
    summarize,
    table,
    verdicts,
)
from benches.record import RunRecord

SESSIONS_PATH = "/api/v1/auth/sessions"
FLOOR = "floor (granian+psycopg_pool)"


def _seed_sessions(url: str, user_id: int, count: int) -> None:
    """More sessions for the user, so the listing has a few rows to read and encode."""
    rows = [(sha256(uuid.uuid4().bytes).hexdigest(), user_id, n) for n in range(1, count + 1)]
    with admin_connect(url) as conn, conn.cursor() as cur:
        # Distinct last_seen_at: the listing's ORDER BY has no ties, so its order is fixed.
        cur.executemany(
            "INSERT INTO sessions (token_hash, user_id, expires_at, last_seen_at, client, ip) "
            "VALUES (%s, %s, now() + interval '1 day', now() - make_interval(mins => %s), "
            "'bench/1.0', '10.0.0.7')",
            rows,
        )


def sessions_benchmark(args: argparse.Namespace, connections: list[int]) -> int:
    password = "bench-" + uuid.uuid4().hex
    record = RunRecord("http-db")
    record.header()
    logs = record.dir / "raw"
    with fresh_database(args.db_socket) as db_url, ExitStack() as stack:
        pools = {
            "REVENGE_DATABASE__MAX_CONNS": str(args.pool_max),
            "REVENGE_DATABASE__MIN_CONNS": str(args.pool_min),
        }
        port = free_port()
        revenge = stack.enter_context(
            serve(granian("revenge.app:app", port), port, revenge_env(db_url, password, pools),
                  logs / "revenge.log")
        )  # fmt: skip
        signed_in = login(f"http://127.0.0.1:{port}", "admin", password)
        token, user_id = str(signed_in["token"]), int(signed_in["user"]["id"])
        _seed_sessions(db_url, user_id, 4)

        floor_port = free_port()
        floor_env = {
            "REVENGE_BENCH_DB_URL": db_url,
            "BENCH_TOKEN": token,
            "BENCH_USER_ID": str(user_id),
            "FLOOR_POOL_MAX": str(args.pool_max),
            "FLOOR_POOL_MIN": str(args.pool_min),
        }
        floor = stack.enter_context(
            serve(granian("benches.http.floor_db:sessions", floor_port), floor_port,
                  revenge_env(db_url, password, floor_env), logs / "floor.log",
                  ready_path=SESSIONS_PATH)
        )  # fmt: skip
        targets = [
            Target(FLOOR, f"http://127.0.0.1:{floor_port}{SESSIONS_PATH}", floor),
            Target("revenge", f"http://127.0.0.1:{port}{SESSIONS_PATH}", revenge),
        ]
        for label, extra in args.variant:
            variant_port = free_port()
            app = extra.pop("APP", "revenge.app:app")
            server = stack.enter_context(
                serve(granian(app, variant_port), variant_port,
                      revenge_env(db_url, password, {**pools, **extra}), logs / f"{label}.log")
            )  # fmt: skip
            targets.append(
                Target(
                    f"revenge {label}", f"http://127.0.0.1:{variant_port}{SESSIONS_PATH}", server
                )
            )
        # Same work means the same answer: a server's first use of the token is a cache
        # miss, which touches last_seen_at, so one unchecked request each goes first.
        auth = {"authorization": f"Bearer {token}"}
        body = check_answers(targets, auth, record)
        samples = measure(
            targets, connections, rounds=args.repeat, seconds=args.seconds,
            threads=args.threads, headers=[f"Authorization: Bearer {token}"], record=record,
            warm_seconds=1,
        )  # fmt: skip

    how = f"Unix socket {args.db_socket}" if args.db_socket else "TCP, sslmode=disable"
    record.print(
        f"\nGET {SESSIONS_PATH} ({len(body['sessions'])} sessions, identical bodies), "
        f"PostgreSQL over {how}; wrk -t{args.threads}, median of {args.repeat} interleaved "
        f"rounds x {args.seconds:g}s, 1 Granian worker each, pools min {args.pool_min} / "
        f"max {args.pool_max}\n"
    )
    rows = summarize(samples, FLOOR)
    for line in table(rows, "floor"):
        record.print(line)
    checks = []
    for r in rows:
        if r.label != "revenge":
            continue
        if r.connections == 16:
            checks.append(("p99 < 5 ms at 16", r.p99_ms < 5, f"{r.p99_ms:.2f} ms"))
        if r.connections == 64:
            checks.append((">= 0.9x floor at 64, per round", r.rps_ratio >= 0.9,
                           f"{r.rps_ratio:.2f}x"))  # fmt: skip
    result = verdicts(checks, sum(r.errors for r in rows))
    record.print("\ntargets:")
    for name, verdict in result.items():
        record.print(f"- {name}: {verdict}")
    record.finish(result)
    return 0


def compare_urls(args: argparse.Namespace, connections: list[int]) -> int:
    """Given URLs (and/or the floor apps started here): the first is the baseline."""
    record = RunRecord("http-db-urls")
    record.header()
    targets = [Target(url, url) for url in args.urls]
    with ExitStack() as stack:
        for label, pool in (("same app, revenge Database", "revenge"), (FLOOR, "bare")):
            if (pool == "revenge" and not args.revenge_pool) or (pool == "bare" and not args.floor):
                continue
            port = free_port()
            env = {"FLOOR_POOL": pool, **revenge_env("", "")}
            env.pop("REVENGE_DATABASE__URL")
            env.pop("REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD")
            server = stack.enter_context(
                serve(granian("benches.http.floor_db:app", port, args.floor_workers), port, env,
                      record.dir / "raw" / f"{pool}.log", ready_path="/")
            )  # fmt: skip
            targets.insert(0, Target(label, f"http://127.0.0.1:{port}/", server))
        for target in targets:
            status, _ = http_call(target.url)
            if status != 200:
                raise SystemExit(f"not timing: {target.url} answered {status}")
        samples = measure(
            targets, connections, rounds=args.repeat, seconds=args.seconds,
            threads=args.threads, headers=(), record=record, warm_seconds=1,
        )  # fmt: skip
    rows = summarize(samples, targets[0].label)
    for line in table(rows, "first"):
        record.print(line)
    failed = sum(r.errors for r in rows)
    record.print(
        f"\nerrors: {failed} failed requests" + (" (ratios not comparable)" if failed else "")
    )
    record.finish()
    return 0


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
    from benches.http.floor_db import SESSIONS_SQL
    from psycopg_pool import AsyncConnectionPool

    from revenge.app import build_app
    from revenge.config import load_settings
    from revenge.http import Request, json_response
    from revenge.infra.db import Database
    from revenge.modules.auth import repository

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


def main(argv: Sequence[str] | None = None) -> int:
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
        help="also measure the floor app going through revenge.infra.db.Database",
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
        help="both pools' maximum (Revenge's default is 50; two servers at 50 would exceed "
        "PostgreSQL's max_connections=100 on this shared machine)",
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
        type=parse_variant,
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
    if not args.urls and not args.floor and not args.revenge_pool:
        return sessions_benchmark(args, connections)
    return compare_urls(args, connections)


if __name__ == "__main__":
    raise SystemExit(main())
