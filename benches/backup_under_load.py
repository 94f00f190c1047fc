"""A backup of a 50,000-item database while browse traffic runs (issue 16's numbers).

    python -m benches.backup_under_load [--items 50000] [--rounds 3] [--seconds 10]

A migrated throw-away database gets ``--items`` search documents (the only item table
the schema has so far; titles, years, overviews, people) and 1,000 users with sessions.
``revenge serve`` (one worker) answers an authenticated search per request, the closest
route to browsing today. Each round runs wrk twice for ``--seconds``: once quiet, once
while ``revenge backup`` runs back to back; it reports both p99s, their ratio and the
backup's time and size. The pooled query path's p99 target is 5 ms (the house plan);
numbers taken while other work shares the CPU are noise: quote a quiet run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benches.http.harness import (
    free_port,
    fresh_database,
    http_call,
    revenge_env,
    run_wrk,
    serve,
)

PASSWORD = "bench admin password"
P99_TARGET_MS = 5.0


def add_users(url: str, count: int) -> None:
    """Users after the bootstrap admin (who is made only while no user exists)."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO users (username, password_hash, role) "
            "SELECT 'user' || n, '$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA', 'user' "
            "FROM generate_series(1, %s) AS n",
            (count,),
        )


def fill(url: str, items: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO search_documents (id, kind, title, original_title, year, overview, people) "
            "SELECT 'movie-' || n, 'movie', 'Title ' || n, 'Original ' || n, 1900 + n %% 125, "
            "repeat('An overview of item ' || n || '. ', 5), 'Actor ' || n %% 977 "
            "FROM generate_series(1, %s) AS n",
            (items,),
        )
        conn.execute("ANALYZE")


def backups_until(
    stop: threading.Event, url: str, folder: Path, out: list[dict[str, float]]
) -> None:
    env = {"REVENGE_DATABASE__URL": url}
    import os

    while not stop.is_set():
        dest = folder / f"b{len(out)}.tar"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "revenge.cli", "backup", "--to", str(dest)],
            capture_output=True, text=True, env={**os.environ, **env}, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"backup failed: {done.stderr}")
        out.append({"seconds": time.perf_counter() - started, "bytes": dest.stat().st_size})
        dest.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    with fresh_database() as url, tempfile.TemporaryDirectory(prefix="revenge-bk-bench-") as tmp:
        folder = Path(tmp)
        fill(url, args.items)
        port = free_port()
        env = revenge_env(url, PASSWORD, {"REVENGE_SERVER__DATA_DIR": str(folder / "data")})
        argv = [sys.executable, "-m", "revenge.cli", "serve", "--port", str(port)]
        with serve(argv, port, env, folder / "server.log"):
            base = f"http://127.0.0.1:{port}"
            status, body = http_call(
                base + "/api/v1/auth/login",
                body=json.dumps({"username": "admin", "password": PASSWORD}).encode(),
                headers={"content-type": "application/json"},
            )
            if status != 200:
                raise SystemExit(f"login failed: {status} {body!r}")
            header = f"authorization: Bearer {json.loads(body)['token']}"
            add_users(url, 1000)
            target = base + "/api/v1/search?q=12345&limit=20"
            status, body = http_call(target, headers=dict([header.split(": ", 1)]))
            if status != 200 or not json.loads(body)["hits"]:
                raise SystemExit(f"the browse request does not answer: {status} {body[:200]!r}")
            quiet, loaded, backups, outputs = [], [], [], []
            for _ in range(args.rounds):
                wrk, raw = run_wrk(target, connections=args.connections, seconds=args.seconds,
                                   headers=[header], timeout=10)  # fmt: skip
                outputs.append(raw)
                quiet.append(wrk)
                stop = threading.Event()
                runner = threading.Thread(target=backups_until, args=(stop, url, folder, backups))
                runner.start()
                wrk, raw = run_wrk(target, connections=args.connections, seconds=args.seconds,
                                   headers=[header], timeout=10)  # fmt: skip
                outputs.append(raw)
                stop.set()
                runner.join()
                loaded.append(wrk)
            failed = sum(w.errors for w in quiet + loaded)
            if failed or not all(w.requests for w in quiet + loaded):
                raise SystemExit("requests failed; no verdict:\n" + "\n".join(outputs))
            q99 = statistics.median(w.p99_ms for w in quiet)
            l99 = statistics.median(w.p99_ms for w in loaded)
            took = statistics.median(b["seconds"] for b in backups)
            size = statistics.median(b["bytes"] for b in backups)
            print(f"items: {args.items}; rounds: {args.rounds} x {args.seconds:g}s x 2; "
                  f"{args.connections} connections; failed requests: {failed}")  # fmt: skip
            print(
                f"browse p99 quiet: {q99:.2f} ms (rps {statistics.median(w.rps for w in quiet):.0f})"
            )
            print(f"browse p99 during backups: {l99:.2f} ms "
                  f"(rps {statistics.median(w.rps for w in loaded):.0f}); ratio {l99 / q99:.2f}")  # fmt: skip
            print(f"backup: {len(backups)} taken, median {took:.2f} s, {size / 1e6:.2f} MB")
            verdict = "met" if l99 <= P99_TARGET_MS and failed == 0 else "not met"
            print(f"p99 during backup <= {P99_TARGET_MS} ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
