"""What the fault tests share: a private PostgreSQL and Redis, the app's environment,
a bounded load generator that records every answer, and process bookkeeping.

Nothing here touches the machine's shared PostgreSQL (5432) or Redis (6379) beyond
throw-away databases: a service a test stops or kills is always its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import psycopg

from revenge.infra.db import embedded
from tests.cheap_settings import FAST_ARGON2

PASSWORD = "faults admin password"

# Cheap hashing: the tests measure the server's behaviour, not argon2's cost.
CHEAP_AUTH = {"REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": PASSWORD, **FAST_ARGON2}


def app_env(db_url: str, **extra: str) -> dict[str, str]:
    """The environment of a server under test: its database, cheap hashing, ``extra``."""
    return {"REVENGE_DATABASE__URL": db_url, **CHEAP_AUTH, **extra}


def login(base_url: str, username: str = "admin", password: str = PASSWORD) -> str:
    reply = httpx.post(
        base_url + "/api/v1/auth/login",
        json={"username": username, "password": password},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# -- a private PostgreSQL ------------------------------------------------------------------


class PrivatePostgres:
    """A cluster of this test's own, run from the machine's binaries by the embedded-database
    code Revenge uses itself (:mod:`revenge.infra.db.embedded`), so it may be stopped and
    started at will. Its folder is made traversable by the server's OS user (we made it)."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="revenge-faults-"))
        self.data_dir.chmod(0o711)  # our own folder: the postgres OS user must reach below
        self._server: embedded.EmbeddedServer | None = None
        self.url = ""

    def start(self) -> str:
        server = embedded.start_embedded(self.data_dir, backend="system")
        assert server.stops_server, "another process owns this private cluster"
        if self.url:
            assert server.url == self.url, "the cluster came back under another URL"
        self._server, self.url = server, server.url
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()  # pg_ctl stop -m fast
            self._server = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    from revenge.infra.db.system_pg import find_binaries

    if not find_binaries():
        import pytest

        pytest.skip("no PostgreSQL server binaries on this machine to run a private cluster")
    pg = PrivatePostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.close()


def backends(admin_url: str, database: str) -> int:
    """Connections to ``database`` (``pg_stat_activity``), the asking one excluded."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


# -- load ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    at: float  # seconds since the load started
    route: str
    status: int  # 0: no HTTP answer (connection error, timeout)
    latency: float
    retry_after: str | None = None
    error: str | None = None


Step = Callable[[httpx.Client], httpx.Response]


@dataclass
class Load:
    """Client threads that call ``routes`` in turn until stopped or ``limit`` seconds pass.

    Each thread keeps one keep-alive connection (a worker's cache stays warm for it) and
    records every answer; a connection error is an answer with status 0. Self-stopping:
    the threads end by themselves after ``limit`` seconds even if nobody stops them.
    """

    base_url: str
    routes: Mapping[str, Step]
    threads: int = 4
    limit: float = 120.0
    pause: float = 0.0
    timeout: float = 10.0
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = 0.0

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        for index in range(self.threads):
            thread = threading.Thread(target=self._run, args=(index,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(self.timeout + 5)

    def _run(self, index: int) -> None:
        names = list(self.routes)
        turn = index
        client = httpx.Client(base_url=self.base_url, timeout=self.timeout)
        try:
            while not self._stop.is_set() and time.monotonic() - self.started < self.limit:
                name = names[turn % len(names)]
                turn += 1
                sent = time.monotonic()
                try:
                    reply = self.routes[name](client)
                    answer = Answer(
                        sent - self.started,
                        name,
                        reply.status_code,
                        time.monotonic() - sent,
                        reply.headers.get("retry-after"),
                        None if reply.status_code < 400 else reply.text[:200],
                    )
                except httpx.HTTPError as exc:
                    answer = Answer(
                        sent - self.started, name, 0, time.monotonic() - sent, None, repr(exc)
                    )
                    client.close()  # a fresh connection after a broken one
                    client = httpx.Client(base_url=self.base_url, timeout=self.timeout)
                with self._lock:
                    self.answers.append(answer)
                if self.pause:
                    time.sleep(self.pause)
        finally:
            client.close()

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def summary(answers: list[Answer]) -> str:
    """``route: {status: count}`` lines and latency percentiles, for the test's printout."""
    lines = []
    for route in sorted({a.route for a in answers}):
        mine = [a for a in answers if a.route == route]
        counts = dict(sorted(Counter(a.status for a in mine).items()))
        lines.append(f"  {route}: {counts} {percentiles([a.latency for a in mine])}")
    return "\n".join(lines)


def percentiles(values: list[float]) -> str:
    if not values:
        return "(none)"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return f"p50 {at(0.5):.1f} ms, p99 {at(0.99):.1f} ms, max {ordered[-1] * 1000:.1f} ms"


# -- processes -----------------------------------------------------------------------------


def workers_of(parent_pid: int) -> list[psutil.Process]:
    """The serving workers of a Granian parent (its Python children)."""
    try:
        children = psutil.Process(parent_pid).children()
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if _is_python(c)]


def _is_python(process: psutil.Process) -> bool:
    try:
        return "python" in Path(process.exe()).name
    except psutil.Error:
        return False


def wait_until(
    probe: Callable[[], object], what: str, timeout: float = 30.0, every: float = 0.1
) -> object:
    """Poll ``probe`` until it returns something true; a hang guard, not a speed claim."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} ({value!r})")
        time.sleep(every)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
