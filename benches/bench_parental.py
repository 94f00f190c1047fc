"""What a parental limit costs browse: ``python -m benches.bench_parental`` (issue 15: < 10 %).

In one run, on a fresh migrated database:

1. 50,000 movies (``benches/browse_seed.py``: ratings G, PG, PG-13, R and none, a fifth
   each) and a non-admin user granted the library, signed in over HTTP;
2. the answers are checked before anything is timed: without a limit the first page of
   ``GET /api/v1/movies?limit=100`` holds R-rated movies and totals 50,000; with a PG-13
   limit it holds none and its total is the 40,000 a plain SQL count finds;
3. the same user, the same request, with and without the limit (set on the user's row
   between runs: the limit is read with each request), in interleaved rounds:
   - the statement alone (``browse.list_items`` in this process, one connection), and
   - over HTTP: wrk at 1 and 16 connections against ``revenge.app:app`` (1 Granian worker).

The verdict compares the limited run with the unlimited one of the same round (median of
the per-round ratios). Raw outputs: ``benches/results/parental-<time>/``. About two
minutes; run it under ``nice`` on a shared machine and say so beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import uuid
from contextlib import ExitStack
from typing import Any

from benches.browse_seed import grant, movies_page_ms, seed_movies
from benches.http.harness import (
    CHEAP_ARGON2,
    admin_connect,
    free_port,
    fresh_database,
    granian,
    http_call,
    new_viewer,
    revenge_env,
    run_wrk,
    serve,
    verdicts,
)
from benches.record import RunRecord

PAGE = "/api/v1/movies?limit=100"
LIMIT_AGE = 13  # PG-13


def _set_limit(db_url: str, user_id: int, age: int | None) -> None:
    with admin_connect(db_url) as conn:
        conn.execute(
            "UPDATE users SET max_rating_age = %s, max_rating = %s WHERE id = %s",
            (age, None if age is None else "PG-13", user_id),
        )


def _page(base: str, token: str) -> dict[str, Any]:
    status, raw = http_call(base + PAGE, headers={"authorization": f"Bearer {token}"})
    if status != 200:
        raise SystemExit(f"not timing: {status} {raw[:300]!r}")
    body: dict[str, Any] = json.loads(raw)
    return body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--movies", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=40, help="statement runs per round")
    args = parser.parse_args()
    record = RunRecord("parental")
    record.header()
    logs = record.dir / "raw"
    password = "bench-" + uuid.uuid4().hex
    with fresh_database() as db_url, ExitStack() as stack:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        stack.enter_context(
            serve(granian("revenge.app:app", port), port,
                  revenge_env(db_url, password, CHEAP_ARGON2), logs / "revenge.log")
        )  # fmt: skip
        user_id, token, _ = new_viewer(base, password)
        with admin_connect(db_url) as conn:
            library = seed_movies(conn, args.movies, user_id)
            grant(conn, user_id, library)
        record.print(f"seeded: {args.movies:,} movies (G, PG, PG-13, R, unrated: a fifth each)")

        # answers first
        _set_limit(db_url, user_id, None)
        free = _page(base, token)
        ratings = {i.get("content_rating") for i in free["items"]}
        if free["total"] != args.movies or "R" not in ratings:
            raise SystemExit(f"not timing: unlimited page {free['total']} {ratings}")
        _set_limit(db_url, user_id, LIMIT_AGE)
        with admin_connect(db_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM items WHERE library_id = %s AND kind = 'movie'"
                " AND coalesce(rating_age, 0) <= %s",
                (library, LIMIT_AGE),
            ).fetchone()
        visible = int(row[0])
        limited = _page(base, token)
        ratings = {i.get("content_rating") for i in limited["items"]}
        if "R" in ratings or len(limited["items"]) != 100 or limited["total"] != visible:
            raise SystemExit(f"not timing: limited page {limited['total']} {ratings}")
        record.print(f"answers checked: unlimited page has R-rated movies and total "
                     f"{args.movies:,}; limited (PG-13) has none, total {visible:,} (counted "
                     "by SQL here)")  # fmt: skip

        headers = [f"Authorization: Bearer {token}"]
        statement: dict[str, list[float]] = {"none": [], "PG-13": []}
        http: dict[tuple[str, int], list[Any]] = {}
        ratios: dict[str, list[float]] = {"statement": [], "p99 c1": [], "req/s c16": []}
        for round_ in range(args.rounds):
            order = [("none", None), ("PG-13", LIMIT_AGE)]
            if round_ % 2:
                order.reverse()
            medians = {}
            for label, age in order:
                _set_limit(db_url, user_id, age)
                times = movies_page_ms(db_url, user_id, args.runs)
                statement[label] += times
                medians[label] = statistics.median(times)
                for conns in (1, 16):
                    wrk, output = run_wrk(
                        base + PAGE, connections=conns, seconds=args.seconds, headers=headers
                    )
                    record.raw(f"r{round_}-{label}-c{conns}", output)
                    if wrk.requests == 0 or wrk.errors:
                        raise SystemExit(f"{label} c{conns}: failed requests\n{output}")
                    http.setdefault((label, conns), []).append(wrk)
            ratios["statement"].append(medians["PG-13"] / medians["none"])
            ratios["p99 c1"].append(http[("PG-13", 1)][-1].p99_ms / http[("none", 1)][-1].p99_ms)
            ratios["req/s c16"].append(http[("none", 16)][-1].rps / http[("PG-13", 16)][-1].rps)
        _set_limit(db_url, user_id, None)

    record.print(
        f"\nGET {PAGE} ({args.movies:,} movies, first page by title, non-admin user with a "
        f"grant), the same user without and with a PG-13 limit; {args.rounds} interleaved "
        "rounds\n"
    )
    record.print("| limit | statement median ms | c1 p50 ms | c1 p99 ms | c16 req/s | c16 p99 ms |")
    record.print("|---|---:|---:|---:|---:|---:|")
    for label in ("none", "PG-13"):
        c1, c16 = http[(label, 1)], http[(label, 16)]
        record.print(
            f"| {label} | {statistics.median(statement[label]):.2f} "
            f"| {statistics.median(w.p50_ms for w in c1):.2f} "
            f"| {statistics.median(w.p99_ms for w in c1):.2f} "
            f"| {statistics.median(w.rps for w in c16):,.0f} "
            f"| {statistics.median(w.p99_ms for w in c16):.2f} |"
        )
    record.print("\ncost of the limit (limited / unlimited, median of per-round ratios):")
    checks = []
    for name, values in ratios.items():
        ratio = statistics.median(values)
        shown = ", ".join(f"{v:.3f}" for v in values)
        record.print(f"- {name}: {ratio:.3f} (rounds: {shown})")
        checks.append((f"parental filter < 10 % ({name})", ratio < 1.10, f"{ratio:.3f}x"))
    result = verdicts(checks, 0)
    record.print("\ntargets:")
    for name, verdict in result.items():
        record.print(f"- {name}: {verdict}")
    record.finish(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
