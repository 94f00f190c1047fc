"""Warm restart to ready: process start -> ``GET /health/ready`` answers 200, existing database.

    python -m benches.restart_to_ready --runs 5 [--target revenge.app:app] [--profile]

Creates a throw-away database on ``REVENGE_TEST_PG_ADMIN_URL`` (default: the machine's
PostgreSQL), migrates it once (so every timed start is a *warm* restart: schema in
place, nothing to apply), then starts ``granian --interface rsgi --workers 1 <target>``
``--runs`` times, polling ``/health/ready`` every 2 ms, and prints each wall time
(median, minimum) and the CPU time the server's processes had used by then (on a
busy machine wall time stretches; CPU time is what the start-up itself costs). ``--profile`` instead imports and starts the app in this
process under cProfile and prints where the start-up goes (import, build, each
service's start).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get(
    "REVENGE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database() -> tuple[str, str]:
    name = f"revenge_restart_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def _drop(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its descendants (a loaded machine stretches wall
    time; CPU time is what the start-up itself costs)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _cpu_seconds(int(child))
    except (OSError, IndexError, ValueError):
        pass
    return total


def _time_one(target: str, env: dict[str, str], timeout: float = 60.0) -> tuple[float, float]:
    port = _free_port()
    argv = [sys.executable, "-m", "granian", "--interface", "rsgi", "--workers", "1"]
    argv += ["--host", "127.0.0.1", "--port", str(port), target]
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/health/ready"
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as reply:
                    if reply.status == 200:
                        return time.perf_counter() - started, _cpu_seconds(process.pid)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode() if process.stderr else "exited")
            if time.perf_counter() - started > timeout:
                raise TimeoutError("not ready in time")
            time.sleep(0.002)
    finally:
        process.terminate()
        process.wait(30)


def _profile(env: dict[str, str]) -> None:
    import cProfile
    import pstats

    os.environ.update(env)
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    from revenge.app import app

    imported = time.perf_counter()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(app.startup())
    profiler.disable()
    ready = time.perf_counter()
    print(f"import+build {imported - began:.3f}s  start {ready - imported:.3f}s")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    loop.run_until_complete(app.shutdown())
    loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--target", default="revenge.app:app")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--source", default=str(ROOT / "python"), help="the python/ folder to run (e.g. main's)"
    )
    args = parser.parse_args()
    name, url = _database()
    try:
        env = {
            **os.environ,
            "REVENGE_DATABASE__URL": url,
            "PYTHONPATH": os.pathsep.join(
                p for p in (args.source, os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        subprocess.run(
            [sys.executable, "-m", "revenge.cli", "migrate"], env=env, check=True, timeout=120
        )
        _time_one(args.target, env)  # the first start also warms the OS file cache
        if args.profile:
            _profile(env)
            return
        results = [_time_one(args.target, env) for _ in range(args.runs)]
        times, cpu = [r[0] for r in results], [r[1] for r in results]
        print("wall:   " + " ".join(f"{t:.3f}" for t in times))
        print(f"        median {statistics.median(times):.3f}s  min {min(times):.3f}s")
        print("cpu:    " + " ".join(f"{t:.3f}" for t in cpu))
        print(f"        median {statistics.median(cpu):.3f}s  (all processes, user + system)")
    finally:
        _drop(name)


if __name__ == "__main__":
    main()
