"""Soak: mixed traffic for a long time against ``revenge serve``, memory and leaks watched.

    python -m benches.soak                     # 10 minutes (``just soak``)
    python -m benches.soak --duration 60       # a shorter round

``revenge serve --workers 2`` on a throw-away database of the machine's PostgreSQL.
Client threads send a mix (sign in, ``/me``, the session list, search, a job's
status; see :data:`ROUTES` — browse and playback of short clips join the mix when
their modules exist, through :func:`mix`'s ``extra``). Every second the RSS and
open file descriptors of the parent and of each worker are sampled (psutil,
``/proc/<pid>/fd``).

What is judged:

* **leaks** — after a warm-up round the server is left idle and its descriptors
  and its database's connections (``pg_stat_activity``) are counted: the baseline.
  After the soak, idle again, the same counts must come back to it (the pool's
  ``idle_timeout`` is short, so an idle pool shrinks to its minimum);
* **memory** — each worker's RSS growth from the first samples after the warm-up
  to the last ones: below 5 % (judged on a full run; a short one only reports it);
* **answers** — every request answered with its route's expected status.

The pytest suite runs a short form (tests/faults/test_soak.py) with the leak and
answer criteria; timing and RSS numbers are reported, never asserted there.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from tests.e2e.conftest import free_port, run_server
from tests.faults.support import (
    PASSWORD,
    Answer,
    Load,
    Step,
    app_env,
    backends,
    bearer,
    login,
    open_fds,
    summary,
    workers_of,
)

RSS_GROWTH_LIMIT = 0.05
OK = {"login": {200}, "me": {200}, "sessions": {200}, "search": {200}, "job": {200}}


def mix(token: str, job_id: int, extra: Mapping[str, Step] | None = None) -> dict[str, Step]:
    """The traffic, one step per route; modules add theirs (browse, playback) in ``extra``.

    Order matters only for weight: each client thread goes round the list, so a route
    listed twice is called twice as often.
    """
    auth = bearer(token)

    def sign_in(client: httpx.Client) -> httpx.Response:
        reply = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
        if reply.status_code == 200:  # sign out again: sessions must not pile up
            client.post("/api/v1/auth/logout", headers=bearer(reply.json()["token"]))
        return reply

    routes: dict[str, Step] = {
        "me": lambda c: c.get("/api/v1/me", headers=auth),
        "sessions": lambda c: c.get("/api/v1/auth/sessions", headers=auth),
        "search": lambda c: c.get("/api/v1/search", params={"q": "soak"}, headers=auth),
        "job": lambda c: c.get(f"/api/v1/jobs/{job_id}", headers=auth),
        "login": sign_in,
    }
    routes.update(extra or {})
    return routes


ROUTES = tuple(OK)


@dataclass
class Sampler:
    """RSS and descriptors of the parent and each worker, once a second, in a thread."""

    parent: int
    every: float = 1.0
    samples: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    started: float = field(default_factory=time.monotonic)

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(self.sample())

    def sample(self) -> dict[str, Any]:
        procs = [psutil.Process(self.parent), *workers_of(self.parent)]
        row: dict[str, Any] = {"at": round(time.monotonic() - self.started, 2), "procs": {}}
        for proc in procs:
            try:
                row["procs"][proc.pid] = {
                    "rss": proc.memory_info().rss,
                    "fds": open_fds(proc.pid),
                }
            except (psutil.Error, OSError):
                continue
        return row


@dataclass(frozen=True)
class Idle:
    """Counts of an idle server: descriptors per process, the database's connections."""

    fds: dict[int, int]
    connections: int


@dataclass
class SoakReport:
    duration: float
    answers: list[Answer]
    samples: list[dict[str, Any]]
    baseline: Idle
    after: Idle
    warm_end: float
    lines: list[str] = field(default_factory=list)

    def unexpected(self) -> list[Answer]:
        return [a for a in self.answers if a.status not in OK.get(a.route, {200})]

    def rss_growth(self) -> dict[int, float]:
        """Per process: mean RSS of the last tenth of the soak over that of its first tenth."""
        growth: dict[int, float] = {}
        rows = [s for s in self.samples if s["at"] >= self.warm_end]
        if len(rows) < 4:
            return growth
        tenth = max(2, len(rows) // 10)
        for pid in rows[0]["procs"]:
            first = [r["procs"][pid]["rss"] for r in rows[:tenth] if pid in r["procs"]]
            last = [r["procs"][pid]["rss"] for r in rows[-tenth:] if pid in r["procs"]]
            if first and last:
                growth[pid] = statistics.mean(last) / statistics.mean(first) - 1
        return growth

    def leaks(self) -> list[str]:
        """What did not come back to the baseline (empty: nothing leaked)."""
        found = []
        for pid, count in self.after.fds.items():
            before = self.baseline.fds.get(pid)
            if before is None:
                found.append(f"process {pid} is new (a worker was replaced)")
            elif count > before:
                found.append(f"process {pid}: {before} -> {count} open descriptors")
        if self.after.connections > self.baseline.connections:
            found.append(
                f"database connections {self.baseline.connections} -> {self.after.connections}"
            )
        return found

    def render(self) -> list[str]:
        lines = [f"soak: {self.duration:.0f}s of mixed traffic, {len(self.answers)} requests"]
        lines.append(summary(self.answers))
        growth = self.rss_growth()
        for pid, ratio in growth.items():
            rss = [s["procs"][pid]["rss"] for s in self.samples if pid in s["procs"]]
            lines.append(
                f"  pid {pid}: RSS {min(rss) / 2**20:.1f}-{max(rss) / 2**20:.1f} MiB, "
                f"growth after warm-up {ratio * 100:+.2f} %"
            )
        lines.append(
            f"  idle descriptors {self.baseline.fds} -> {self.after.fds}; "
            f"database connections {self.baseline.connections} -> {self.after.connections}"
        )
        return lines


def _idle(
    parent: int,
    admin_url: str,
    database: str,
    settle: float = 60.0,
    steady: float = 6.0,
    back_to: Idle | None = None,
) -> Idle:
    """Counts once the idle server has settled (nothing changed for ``steady`` s), or after
    ``settle``. An idle pool closes one surplus connection per ``idle_timeout`` (2 s here),
    so ``steady`` spans several of its checks. With ``back_to``, a steady count above it is
    waited out too, until ``settle``: the every-minute jobs (rescans due, the mail watch)
    may hold a connection and raise the pool's floor for a scale-check interval or two
    when the minute turns during the measurement; a leak stays above for the whole wait."""
    deadline = time.monotonic() + settle
    last: Idle | None = None
    steady_since = time.monotonic()
    while True:
        now = Idle(
            {p.pid: open_fds(p.pid) for p in [psutil.Process(parent), *workers_of(parent)]},
            backends(admin_url, database),
        )
        if now != last:
            last, steady_since = now, time.monotonic()
        elif time.monotonic() - steady_since >= steady and (
            back_to is None or not _above(now, back_to)
        ):
            return now
        if time.monotonic() > deadline:
            return now
        time.sleep(0.25)


def _above(now: Idle, baseline: Idle) -> bool:
    """Any process holding more descriptors, or the database more connections, than before."""
    more_fds = any(count > baseline.fds.get(pid, count) for pid, count in now.fds.items())
    return more_fds or now.connections > baseline.connections


def _a_finished_job(url: str) -> int:
    """A job to ask the status of: the cleanup, run once by the in-process worker."""
    from revenge.infra.jobs import CLEANUP, Jobs, KindRegistry

    async def run() -> int:
        async with Jobs.open(url, registry=KindRegistry((CLEANUP,))) as jobs:
            return await jobs.enqueue(CLEANUP.name)

    return asyncio.run(run())


def soak(
    db_url: str,
    admin_url: str,
    folder: Path,
    *,
    duration: float,
    warm_up: float,
    threads: int = 4,
    extra: Mapping[str, Step] | None = None,
    log: Callable[[str], None] = print,
) -> SoakReport:
    """Serve, warm up, count idle, soak for ``duration`` s, count idle again."""
    database = db_url.rsplit("/", 1)[1].split("?")[0]
    port = free_port()
    env = app_env(
        db_url,
        REVENGE_SERVER__PORT=str(port),
        REVENGE_SERVER__WORKERS="2",
        REVENGE_SERVER__DATA_DIR=str(folder / "data"),
        # An idle pool gives its extra connections back soon, so "idle" is comparable.
        REVENGE_DATABASE__IDLE_TIMEOUT="2s",
        REVENGE_DATABASE__SCALE_CHECK_INTERVAL="0.5s",
    )
    argv = [sys.executable, "-m", "revenge.cli", "serve"]
    with run_server(argv, port, folder, env, ready_path="/health/ready", timeout=120) as server:
        parent = server.process.pid
        routes = mix(login(server.base_url), _a_finished_job(db_url), extra)
        with Sampler(parent) as sampler:
            with Load(server.base_url, routes, threads=threads, limit=warm_up + 30) as warm:
                time.sleep(warm_up)
            baseline = _idle(parent, admin_url, database)
            log(f"warm-up {warm_up:.0f}s done; idle: {baseline}")
            warm_end = time.monotonic() - sampler.started
            with Load(server.base_url, routes, threads=threads, limit=duration + 30) as load:
                time.sleep(duration)
            after = _idle(parent, admin_url, database, back_to=baseline)
        answers = warm.snapshot() + load.snapshot()
    return SoakReport(duration, answers, sampler.samples, baseline, after, warm_end)


@contextmanager
def throwaway_database() -> Iterator[tuple[str, str]]:
    """(database URL, admin URL) of a fresh database on the machine's PostgreSQL."""
    from tests.conftest import PG_ADMIN_URL, _drop_database, _fresh_database

    name, url = _fresh_database("revenge_soak")
    try:
        yield url, PG_ADMIN_URL
    finally:
        _drop_database(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--warm-up", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    args = parser.parse_args(argv)

    from benches.record import RunRecord

    record = RunRecord("soak")
    record.header()
    with throwaway_database() as (url, admin), tempfile.TemporaryDirectory() as folder:
        report = soak(
            url,
            admin,
            Path(folder),
            duration=args.duration,
            warm_up=args.warm_up,
            threads=args.threads,
            log=record.print,
        )
    for sample in report.samples:
        record.round(**sample)
    for line in report.render():
        record.print(line)
    growth = report.rss_growth()
    verdicts = {
        "unexpected answers": len(report.unexpected()),
        "leaks": report.leaks(),
        "rss growth < 5 %": {str(p): round(g * 100, 2) for p, g in growth.items()},
    }
    met = (
        not report.unexpected()
        and not report.leaks()
        and bool(growth)
        and all(g < RSS_GROWTH_LIMIT for g in growth.values())
    )
    record.print(f"verdict: {'met' if met else 'NOT met'} {verdicts}")
    record.finish(verdicts)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
