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
   and at 16, after checking it answers 20 items;
5. where a page's time goes: the page's statement under ``EXPLAIN (ANALYZE, BUFFERS)``,
   the statement alone from this process, the body's assembly in Python, and with
   ``--profile`` a py-spy profile of the Revenge worker under the 16-connection load;
6. with ``--scan-files N`` (default 10,000; 0 leaves it out) the same movies and next up
   requests in idle windows and in windows while a first scan of an N-file tree runs in
   the same server (``benches/browse_under_scan.py``), interleaved.

Targets (issue 10): movies p99 < 20 ms at 16 connections and >= 0.8x the floor's
requests/s; next up < 20 ms (p99 at 1 connection); both held while a scan runs. Each is
printed met / not met with its number; a verdict is never "met" when a request failed.
Raw outputs: ``benches/results/browse-<time>/``. About 5 minutes with the defaults; run
it under ``nice`` on a shared machine and say so beside the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from benches.bench_library_walk import make_tree
from benches.browse_seed import grant, movies_page_ms, seed_movies, seed_shows, watched_count
from benches.browse_under_scan import report as scan_report
from benches.browse_under_scan import run_phase
from benches.http import pyspy
from benches.http.floor_browse import recorded_statements
from benches.http.harness import (
    CHEAP_ARGON2,
    Server,
    Target,
    admin_connect,
    background,
    check_answers,
    free_port,
    fresh_database,
    granian,
    http_call,
    measure,
    new_viewer,
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
LIVE = "/health/live"
FLOOR = "floor (granian+psycopg_pool)"


def _next_up_query_ms(db_url: str, user_id: int, runs: int = 50) -> list[float]:
    """Wall time of next up's own statement (no HTTP): what the machine's load adds to
    the HTTP numbers shows as the difference."""
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


def _explain(db_url: str, user_id: int, library: int) -> tuple[str, list[str]]:
    """The movies page's own statement (as the floor replays it) under EXPLAIN ANALYZE,
    after 3 runs to warm it: the plan's text and its timing lines."""
    _, page = asyncio.run(recorded_statements(user_id))
    ((sql, params),) = page
    params = [library if p == -1 else [library] if p == [-1] else p for p in params]
    with admin_connect(db_url) as conn:
        for _ in range(3):
            conn.execute(sql, params).fetchall()
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params).fetchall()
    plan = "\n".join(str(r[0]) for r in rows)
    return plan, [r for r in plan.splitlines() if r.startswith(("Planning Time", "Execution Time"))]


def _body_us(db_url: str, user_id: int, runs: int = 2000) -> float:
    """Microseconds to assemble a 100-item page body from its items' JSON texts (what
    Python does with the statement's rows), median of ``runs``."""
    import psycopg

    from revenge.modules.library import browse
    from revenge.modules.library.visibility import load_viewer

    async def page() -> browse.Page:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            viewer = await load_viewer(conn, user_id, admin=False)
            return await browse.list_items(
                conn, viewer, kind="movie", library_ids=viewer.library_ids("movie"),
                sort="title", order="asc", filters=browse.Filters(), cursor=None, limit=100,
            )  # fmt: skip

    got = asyncio.run(page())
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        browse.items_body(got.items, next_cursor=got.next_cursor, total=got.total,
                          total_capped=got.total_capped)  # fmt: skip
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def _profile(server: Server, url: str, args: argparse.Namespace, headers: list[str],
             record: RunRecord) -> None:  # fmt: skip
    """The Revenge worker's time under wrk at ``--connections``: the kernel's account of
    CPU and run-queue waiting, then (when installed) a py-spy profile."""
    worker = pyspy.workers(server)[0]
    before = pyspy.scheduled(worker)
    started = time.monotonic()
    wrk, output = run_wrk(url, connections=args.connections, seconds=args.seconds * 2,
                          headers=headers)  # fmt: skip
    record.raw("sched-wrk", output)
    window = time.monotonic() - started
    after = pyspy.scheduled(worker)
    ran, waited = after[0] - before[0], after[1] - before[1]
    record.print(
        f"\nthe Revenge worker during wrk -c{args.connections} on {MOVIES} ({wrk.rps:,.0f} "
        f"req/s, p50 {wrk.p50_ms:.2f} ms, p99 {wrk.p99_ms:.2f} ms), by the kernel's account "
        f"(schedstat) over {window:.1f} s: on a CPU {ran:.2f} s ({1e6 * ran / max(1, wrk.requests):.0f}"
        f" us a request), runnable but waiting for a CPU {waited:.2f} s "
        f"({1e6 * waited / max(1, wrk.requests):.0f} us a request): the waiting is the "
        "machine's, the CPU time is ours"
    )
    if not pyspy.available():
        record.print("\n(--profile: py-spy is not installed: pip install py-spy)")
        return
    out = record.dir / "raw" / "pyspy-movies.txt"
    sampler = pyspy.record(server, args.seconds * 2, out)
    time.sleep(0.5)  # attached before the load starts
    wrk, output = run_wrk(url, connections=args.connections, seconds=args.seconds * 2,
                          headers=headers)  # fmt: skip
    record.raw("profile-wrk", output)
    _, err = sampler.communicate(timeout=120)
    record.print(
        f"\npy-spy on the Revenge worker during wrk -c{args.connections} on {MOVIES} "
        f"({wrk.rps:,.0f} req/s, p99 {wrk.p99_ms:.2f} ms under the profiler):\n"
    )
    if not out.exists():
        record.print(f"(py-spy failed: {err.decode(errors='replace')[-300:]})")
        return
    for line in pyspy.summary(out):
        record.print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--movies", type=int, default=50_000)
    parser.add_argument("--watched", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pin", action="store_true", help="wrk on one CPU, servers on the rest")
    parser.add_argument("--profile", action="store_true", help="py-spy on the Revenge worker")
    parser.add_argument(
        "--scan-files",
        type=int,
        default=10_000,
        help="videos in the tree scanned during browse (0: no scan phase)",
    )
    parser.add_argument("--scan-rounds", type=int, default=3)
    parser.add_argument(
        "--scan-worker", choices=("in-process", "separate"), default="in-process",
        help="jobs (the scan) in the serving worker (the default setup) or in a `revenge "
        "worker` process beside it (jobs.in_process_worker = false)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.pin:
        pin()
    record = RunRecord("browse")
    record.header()
    logs = record.dir / "raw"
    password = "bench-" + uuid.uuid4().hex
    work = Path(tempfile.mkdtemp(prefix="revenge-browse-bench-"))
    try:
        if args.scan_files:
            videos, sidecars = make_tree(work / "tree", args.scan_files)
            record.print(f"tree to scan: {videos:,} videos, {sidecars:,} sidecars")
        with fresh_database() as db_url, ExitStack() as stack:
            result = _run(args, record, logs, password, db_url, stack, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record.print("\ntargets:")
    for name, verdict in result.items():
        record.print(f"- {name}: {verdict}")
    record.finish(result)
    return 0


def _run(
    args: argparse.Namespace, record: RunRecord, logs: Path, password: str, db_url: str,
    stack: ExitStack, work: Path,
) -> dict[str, str]:  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**CHEAP_ARGON2, "REVENGE_SERVER__DATA_DIR": str(work / "data")}
    if args.scan_worker == "separate":
        env["REVENGE_JOBS__IN_PROCESS_WORKER"] = "false"
    revenge = stack.enter_context(
        serve(granian("revenge.app:app", port), port, revenge_env(db_url, password, env),
              logs / "revenge.log")
    )  # fmt: skip
    if args.scan_worker == "separate":
        stack.enter_context(
            background([sys.executable, "-m", "revenge.cli", "worker"],
                       revenge_env(db_url, password, env), logs / "worker.log")
        )  # fmt: skip
        record.print("jobs (the scans) run in a `revenge worker` process beside the server")
    user_id, token, admin = new_viewer(base, password)
    with admin_connect(db_url) as conn:
        movies = seed_movies(conn, args.movies, user_id)
        shows = seed_shows(conn, user_id, series=200, seasons=10, episodes=6,
                           watched=args.watched)  # fmt: skip
        played = watched_count(conn, user_id, shows)
        grant(conn, user_id, movies, shows)
    record.print(
        f"seeded: {args.movies:,} movies, 200 series / 12,000 episodes, "
        f"{played:,} episodes played by the measured (non-admin) user"
    )
    floor_port = free_port()
    floor_env = {"REVENGE_BENCH_DB_URL": db_url, "BENCH_TOKEN": token,
                 "BENCH_USER_ID": str(user_id)}  # fmt: skip
    floor = stack.enter_context(
        serve(granian("benches.http.floor_browse:app", floor_port), floor_port,
              revenge_env(db_url, password, floor_env), logs / "floor.log", ready_path="/")
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
    # the machine's own floor for one request at a time: a route with no auth and no SQL
    live, output = run_wrk(base + LIVE, connections=1, seconds=args.seconds * 2)
    record.raw("live-c1", output)

    rows = summarize(samples, FLOOR)
    record.print(
        f"\nGET {MOVIES} ({args.movies:,} movies, first page by title, 100 items with poster "
        f"and user state, total from item_counts), non-admin user with a grant; wrk -t1, "
        f"median of {args.rounds} interleaved rounds x {args.seconds:g}s, 1 Granian worker "
        "each\n"
    )
    for line in table(rows, "floor"):
        record.print(line)
    floor_row = next(r for r in rows if r.label == FLOOR)
    record.print(
        f"\nLittle's law: {args.connections} connections kept busy at the floor's "
        f"{floor_row.rps:,.0f} req/s wait {1000 * args.connections / floor_row.rps:.1f} ms on "
        "average, whatever the server: where that is above 20 ms, no server on this machine "
        "at this moment could give a p99 under 20 ms at this concurrency with one worker"
    )
    record.print(f"\nGET {NEXT_UP} (limit 20) for a user with {played:,} played episodes:\n")
    record.print("| conns | req/s | p50 ms | p99 ms | errors | requests |")
    record.print("|---:|---:|---:|---:|---:|---:|")
    for conns, wrk in next_rows:
        record.print(
            f"| {conns} | {wrk.rps:,.0f} | {wrk.p50_ms:.2f} | {wrk.p99_ms:.2f} | {wrk.errors} "
            f"| {wrk.requests:,} |"
        )
    record.print(
        f"| 1, `{LIVE}` (no auth, no SQL: this machine's floor for one request) "
        f"| {live.rps:,.0f} | {live.p50_ms:.2f} | {live.p99_ms:.2f} | {live.errors} "
        f"| {live.requests:,} |"
    )
    record.print(
        f"\nnext up's statement alone (psycopg, one connection, this process, {len(query_ms)}"
        f" runs after 5 to prepare): median {statistics.median(query_ms):.2f} ms,"
        f" min {min(query_ms):.2f} ms, max {max(query_ms):.2f} ms"
    )

    # where a movies page's time goes
    plan, timing = _explain(db_url, user_id, movies)
    record.raw("explain-movies-page", plan)
    page_ms = movies_page_ms(db_url, user_id, 50)
    record.print(
        f"\nthe movies page without HTTP: EXPLAIN ANALYZE of its statement: {'; '.join(timing)}"
        f" (plan in raw/explain-movies-page.txt); libraries + page statement from this "
        f"process over psycopg: median {statistics.median(page_ms):.2f} ms of {len(page_ms)}; "
        f"the body joined from the 100 JSON texts: {_body_us(db_url, user_id):.1f} us"
    )
    if args.profile:
        _profile(revenge, base + MOVIES, args, headers, record)

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

    if args.scan_files:
        record.print(
            f"\nwhile a scan runs: {MOVIES} at {args.connections} connections and {NEXT_UP} at "
            f"1, idle and scanning windows of {args.seconds:g} s each, {args.scan_rounds} "
            "interleaved rounds, the scan in the measured server\n"
        )
        windows = run_phase(
            base=base, db_url=db_url, tree=work / "tree", admin=admin, headers=headers,
            movies=MOVIES, next_up=NEXT_UP, rounds=args.scan_rounds, seconds=args.seconds,
            connections=args.connections, record=record,
            profile=revenge if args.profile else None,
        )  # fmt: skip
        checks += scan_report(windows, args.connections, record)
        failed += sum(w.movies.errors + w.next_up.errors for w in windows)
    return verdicts(checks, failed)


if __name__ == "__main__":
    raise SystemExit(main())
