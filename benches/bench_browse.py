"""Browse at scale: ``python -m benches.bench_browse`` prints the table and the issue 10 verdicts.

In one run, on a fresh migrated database:

1. a movies library of 50,000 movies and a TV library of 200 series x 10 seasons x 6
   episodes are written by SQL (``benches/browse_seed.py``); a non-admin user (created
   and signed in over HTTP) is granted both and has played 10,000 episodes;
2. ``revenge.app:app`` and the floor (``benches/http/floor_browse.py``: bare Granian +
   psycopg_pool, Revenge's own statements, the same JSON) start side by side, one
   Granian worker each; both answers to ``GET /api/v1/movies?limit=100`` are checked
   equal (and 200) before anything is timed;
3. interleaved wrk rounds at 16 connections (``benches/http/harness.py``): p99 and
   requests/s, ratios per round against the floor;
4. ``GET /api/v1/next-up`` for that user: wrk at 1 connection (latency of one request)
   and at 16, after checking it answers 20 items.

Targets (issue 10): movies p99 < 20 ms at 16 connections and >= 0.8x the floor's
requests/s; next up < 20 ms (p99 at 1 connection). A verdict is never "met" when a
request failed. Raw outputs: ``benches/results/browse-<time>/``. About 2 minutes with
the defaults; run it under ``nice`` on a shared machine and say so beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from contextlib import ExitStack

from benches.browse_seed import seed_movies, seed_shows, watched_count
from benches.http.harness import (
    Target,
    admin_connect,
    check_answers,
    free_port,
    fresh_database,
    granian,
    http_call,
    measure,
    pin,
    revenge_env,
    run_wrk,
    serve,
    summarize,
    table,
    verdicts,
)
from benches.record import RunRecord

MOVIES = "/api/v1/movies?limit=100"
NEXT_UP = "/api/v1/next-up"
FLOOR = "floor (granian+psycopg_pool)"


def _login(base: str, username: str, password: str) -> dict[str, object]:
    status, raw = http_call(
        base + "/api/v1/auth/login",
        body=json.dumps({"username": username, "password": password}).encode(),
        headers={"content-type": "application/json"},
    )
    if status != 200:
        raise SystemExit(f"login failed: {status} {raw[:200]!r}")
    return dict(json.loads(raw))


def _next_up_query_ms(db_url: str, user_id: int, runs: int = 50) -> list[float]:
    """Wall time of next up's own statement (no HTTP): what the machine's load adds to
    the HTTP numbers shows as the difference."""
    import asyncio

    import psycopg

    from revenge.modules.library import browse
    from revenge.modules.library.visibility import load_viewer

    async def timed() -> list[float]:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            viewer = await load_viewer(conn, user_id, admin=False)
            times = []
            for n in range(runs + 5):
                started = time.perf_counter()
                found = await browse.next_up(conn, viewer, 20)
                if n >= 5:
                    times.append((time.perf_counter() - started) * 1000)
                assert len(found) == 20
            return times

    return asyncio.run(timed())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--movies", type=int, default=50_000)
    parser.add_argument("--watched", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pin", action="store_true", help="wrk on one CPU, servers on the rest")
    args = parser.parse_args()
    if args.pin:
        pin()
    record = RunRecord("browse")
    record.header()
    logs = record.dir / "raw"
    password = "bench-" + uuid.uuid4().hex
    with fresh_database() as db_url, ExitStack() as stack:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        revenge = stack.enter_context(
            serve(granian("revenge.app:app", port), port,
                  revenge_env(db_url, password, {"REVENGE_AUTH__ARGON2_MEMORY_KIB": "8192",
                                                 "REVENGE_AUTH__ARGON2_TIME_COST": "1"}),
                  logs / "revenge.log")
        )  # fmt: skip
        admin = _login(base, "admin", password)
        status, raw = http_call(
            base + "/api/v1/users",
            body=json.dumps({"username": "viewer", "password": password}).encode(),
            headers={"content-type": "application/json",
                     "authorization": f"Bearer {admin['token']}"},
        )  # fmt: skip
        if status != 201:
            raise SystemExit(f"user create failed: {status} {raw[:200]!r}")
        user_id = int(json.loads(raw)["id"])
        token = str(_login(base, "viewer", password)["token"])
        with admin_connect(db_url) as conn:
            movies = seed_movies(conn, args.movies, user_id)
            shows = seed_shows(conn, user_id, series=200, seasons=10, episodes=6,
                               watched=args.watched)  # fmt: skip
            played = watched_count(conn, user_id, shows)
            for library in (movies, shows):
                conn.execute(
                    "INSERT INTO library_grants (user_id, library_id) VALUES (%s, %s)",
                    (user_id, library),
                )
            conn.execute("VACUUM ANALYZE items")
            conn.execute("VACUUM ANALYZE user_item_state")
        record.print(
            f"seeded: {args.movies:,} movies, 200 series / 12,000 episodes, "
            f"{played:,} episodes played by the measured (non-admin) user"
        )
        floor_port = free_port()
        floor_env = {"REVENGE_BENCH_DB_URL": db_url, "BENCH_TOKEN": token,
                     "BENCH_USER_ID": str(user_id)}  # fmt: skip
        floor = stack.enter_context(
            serve(granian("benches.http.floor_browse:app", floor_port), floor_port,
                  revenge_env(db_url, password, floor_env), logs / "floor.log",
                  ready_path="/")
        )  # fmt: skip
        targets = [
            Target(FLOOR, f"http://127.0.0.1:{floor_port}{MOVIES}", floor),
            Target("revenge", f"{base}{MOVIES}", revenge),
        ]
        auth = {"authorization": f"Bearer {token}"}
        body = check_answers(targets, auth, record, warm=3)
        if len(body["items"]) != 100 or body["total"] != args.movies:
            raise SystemExit(f"not timing: unexpected page {len(body['items'])} / {body['total']}")
        headers = [f"Authorization: Bearer {token}"]
        samples = measure(
            targets, [args.connections], rounds=args.rounds, seconds=args.seconds, threads=1,
            headers=headers, record=record, warm_seconds=2,
        )  # fmt: skip

        status, raw = http_call(base + NEXT_UP, headers=auth)
        next_up = json.loads(raw)
        if status != 200 or len(next_up["items"]) != 20:
            raise SystemExit(f"not timing next up: {status} {raw[:300]!r}")
        query_ms = _next_up_query_ms(db_url, user_id)
        next_rows = []
        for conns in (1, args.connections):
            wrk, output = run_wrk(
                base + NEXT_UP, connections=conns, seconds=args.seconds * 2, headers=headers
            )
            record.raw(f"next-up-c{conns}", output)
            next_rows.append((conns, wrk))

    rows = summarize(samples, FLOOR)
    record.print(
        f"\nGET {MOVIES} ({args.movies:,} movies, first page by title, 100 items with poster "
        f"and user state, total from item_counts), non-admin user with a grant; wrk -t1, "
        f"median of {args.rounds} interleaved rounds x {args.seconds:g}s, 1 Granian worker "
        "each\n"
    )
    for line in table(rows, "floor"):
        record.print(line)
    record.print(f"\nGET {NEXT_UP} (limit 20) for a user with {played:,} played episodes:\n")
    record.print("| conns | req/s | p50 ms | p99 ms | errors | requests |")
    record.print("|---:|---:|---:|---:|---:|---:|")
    for conns, wrk in next_rows:
        record.print(
            f"| {conns} | {wrk.rps:,.0f} | {wrk.p50_ms:.2f} | {wrk.p99_ms:.2f} | {wrk.errors} "
            f"| {wrk.requests:,} |"
        )
    record.print(
        f"\nnext up's statement alone (psycopg, one connection, this process, {len(query_ms)}"
        f" runs after 5 to prepare): median {statistics.median(query_ms):.2f} ms,"
        f" min {min(query_ms):.2f} ms, max {max(query_ms):.2f} ms"
    )
    checks = []
    for r in rows:
        if r.label == "revenge":
            checks.append((f"movies p99 < 20 ms at {r.connections}", r.p99_ms < 20,
                           f"{r.p99_ms:.2f} ms"))  # fmt: skip
            checks.append((">= 0.8x floor req/s, per round", r.rps_ratio >= 0.8,
                           f"{r.rps_ratio:.2f}x"))  # fmt: skip
    one = next_rows[0][1]
    checks.append(("next up < 20 ms (p99, 1 connection)", one.p99_ms < 20,
                   f"p50 {one.p50_ms:.2f} ms, p99 {one.p99_ms:.2f} ms"))  # fmt: skip
    failed = sum(r.errors for r in rows) + sum(w.errors for _, w in next_rows)
    result = verdicts(checks, failed)
    record.print("\ntargets:")
    for name, verdict in result.items():
        record.print(f"- {name}: {verdict}")
    record.finish(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
