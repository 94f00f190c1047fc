"""The one HTTP load harness of ``benches/http``: servers, answers checked, wrk rounds, verdicts.

Used by ``python -m benches.http.run`` (``GET /api/v1/me`` against its floors) and
``python -m benches.http.db`` (a DB-backed route against its floor). What every
comparison gets from here, so no harness can skip it:

* every server is up and **answers 200 with the expected body** before anything
  is timed (:func:`check_answers`): a peer answering 401 would otherwise be
  "fast";
* wrk's own error counts (non-2xx responses, socket errors) are read from every
  run and kept as the ``errors`` column;
* apps are measured in **interleaved rounds**, each round starting one app later,
  and ratios are the median of the **per-round** ratios (same minute, same
  neighbours on the machine);
* a verdict is never "met" when any measured request failed (:func:`verdicts`);
* every wrk output, every round's numbers, the command, the commit and the
  machine's load go to a :class:`~benches.record.RunRecord` folder.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
from benches.record import RunRecord

ROOT = Path(__file__).resolve().parents[2]
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


# -- wrk ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wrk:
    """What one wrk run measured, errors included."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    """wrk's "Non-2xx or 3xx responses"."""
    socket_errors: int
    """connect + read + write + timeout."""

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str) -> Wrk:
    """Read ``wrk --latency`` output; ``ValueError`` when a needed line is missing.

    >>> out = '''  Latency Distribution
    ...      50%  512.00us
    ...      99%    3.10ms
    ...   1000 requests in 1.00s, 90.00KB read
    ...   Socket errors: connect 0, read 2, write 0, timeout 1
    ...   Non-2xx or 3xx responses: 7
    ... Requests/sec:   1000.00
    ... '''
    >>> w = parse_wrk(out)
    >>> (w.rps, w.p50_ms, w.p99_ms, w.requests, w.non_2xx, w.socket_errors, w.errors)
    (1000.0, 0.512, 3.1, 1000, 7, 3, 10)
    """
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if len(percentiles) != 2 or rps is None or total is None:
        raise ValueError(f"cannot read wrk output:\n{output}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Wrk(
        float(rps[1]),
        _ms(percentiles["50"]),
        _ms(percentiles["99"]),
        int(total[1]),
        int(bad[1]) if bad else 0,
        sum(int(n) for n in sock.groups()) if sock else 0,
    )


PIN: dict[str, list[str]] = {"server": [], "load": []}
"""``taskset`` prefixes set by :func:`pin`: servers on some CPUs, wrk on the others."""


def pin() -> None:
    """wrk on the first usable CPU, the servers on the rest (when there are 2 or more)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        PIN["load"] = ["taskset", "-c", str(cpus[0])]
        PIN["server"] = ["taskset", "-c", ",".join(map(str, cpus[1:]))]


def run_wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    headers: Sequence[str] = (),
    script: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> tuple[Wrk, str]:
    """One wrk run: its numbers and its whole output (with the command on the first line).

    ``timeout``: seconds before wrk gives up on a response (its default is 2 s; a slow
    request past it counts as a socket error, not as a latency).
    """
    argv = [*PIN["load"], "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--latency"]  # fmt: skip
    if timeout is not None:
        argv += ["--timeout", f"{timeout:g}s"]
    for header in headers:
        argv += ["-H", header]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    done = subprocess.run(
        argv, capture_output=True, text=True, check=True, env={**os.environ, **(env or {})}
    )
    output = "$ " + " ".join(argv) + "\n" + done.stdout + done.stderr
    return parse_wrk(done.stdout), output


# -- servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def granian(target: str, port: int, workers: int = 1) -> list[str]:
    return [*PIN["server"],
        sys.executable, "-m", "granian", "--interface", "rsgi", "--loop", "uvloop",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-ws",
        "--log-level", "warning", target,
    ]  # fmt: skip


def uvicorn(target: str, port: int) -> list[str]:
    return [*PIN["server"],
        sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
        "--log-level", "warning", target,
    ]  # fmt: skip


class Server:
    """A server process group: started, waited for, measured (CPU), stopped."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and its workers so far."""
        total = 0.0
        try:
            root = psutil.Process(self.process.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total


@contextmanager
def serve(
    argv: Sequence[str], port: int, env: dict[str, str], log: Path, *, cwd: Path = ROOT,
    ready_path: str = "/health/live",
) -> Iterator[Server]:  # fmt: skip
    """Start ``argv`` (its own process group) and wait until ``ready_path`` answers at all."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            argv, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=cwd,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{' '.join(argv[-1:])} exited {process.returncode}; see {log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", ready_path)
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{argv[-1]} did not start; see {log}") from None
                time.sleep(0.1)
        yield Server(process, log)
    finally:
        _stop(process)


@contextmanager
def background(argv: Sequence[str], env: dict[str, str], log: Path) -> Iterator[None]:
    """A process with no port to wait for (a job worker), stopped like a server."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [*PIN["server"], *argv], stdout=sink, stderr=subprocess.STDOUT,
            env={**os.environ, **env}, cwd=ROOT, start_new_session=True,
        )  # fmt: skip
    try:
        yield
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def http_call(
    url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, bytes]:  # fmt: skip
    """One request: status and body (error statuses are answers too)."""
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return int(reply.status), reply.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


# -- signed-in users ---------------------------------------------------------------------------

# A server whose users sign in during a bench: hashing stays, at a cost that does not
# take the machine from the numbers measured after it.
CHEAP_ARGON2 = {"REVENGE_AUTH__ARGON2_MEMORY_KIB": "8192", "REVENGE_AUTH__ARGON2_TIME_COST": "1"}


def login(base: str, username: str, password: str) -> dict[str, Any]:
    """``POST /api/v1/auth/login``: the answer (``token``, ``user``), or the run stops."""
    status, raw = http_call(
        base + "/api/v1/auth/login",
        body=json.dumps({"username": username, "password": password}).encode(),
        headers={"content-type": "application/json"},
    )
    if status != 200:
        raise SystemExit(f"login failed: {status} {raw[:200]!r}")
    return dict(json.loads(raw))


def new_viewer(base: str, admin_password: str, username: str = "viewer") -> tuple[int, str, str]:
    """A non-admin user made over HTTP by the bootstrap admin (same password), signed in:
    ``(user id, user's token, admin's token)``."""
    admin = str(login(base, "admin", admin_password)["token"])
    status, raw = http_call(
        base + "/api/v1/users",
        body=json.dumps({"username": username, "password": admin_password}).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {admin}"},
    )
    if status != 201:
        raise SystemExit(f"user create failed: {status} {raw[:200]!r}")
    user_id = int(json.loads(raw)["id"])
    return user_id, str(login(base, username, admin_password)["token"]), admin


# -- answers, rounds, ratios ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    label: str
    url: str
    server: Server | None = None


def check_answers(
    targets: Sequence[Target], headers: dict[str, str], record: RunRecord, *, warm: int = 1
) -> Any:
    """Every target answers 200 with the same JSON body (after ``warm`` unchecked requests:
    a first use may be a cache miss that changes what the next one sees); that body."""
    answers = []
    for target in targets:
        for _ in range(warm):
            http_call(target.url, headers=headers)
        status, body = http_call(target.url, headers=headers)
        record.raw(f"answer-{_slug(target.label)}", f"{status}\n{body.decode(errors='replace')}")
        answers.append((target.label, status, body))
    refused = [(label, status, body[:200]) for label, status, body in answers if status != 200]
    if refused:
        raise SystemExit(f"not timing: these answered other than 200: {refused}")
    parsed = [(label, json.loads(body)) for label, _, body in answers]
    first_label, first = parsed[0]
    for label, body in parsed[1:]:
        if body != first:
            raise SystemExit(f"not timing: bodies differ\n{first_label}: {first}\n{label}: {body}")
    record.print(f"answers checked: {len(targets)} servers, 200 and identical JSON bodies")
    return first


@dataclass(frozen=True)
class Sample:
    label: str
    connections: int
    round: int
    wrk: Wrk
    cpu_us: float | None
    """Server CPU (user + system, whole process group) per request served."""


def measure(
    targets: Sequence[Target],
    connections: Sequence[int],
    *,
    rounds: int,
    seconds: float,
    threads: int,
    headers: Sequence[str],
    record: RunRecord,
    warm_seconds: float = 2.0,
) -> list[Sample]:
    """Warm each target, then ``rounds`` interleaved rounds; every output kept."""
    for conns in connections:
        for target in targets:
            _, output = run_wrk(
                target.url, connections=conns, seconds=min(warm_seconds, seconds),
                threads=threads, headers=headers,
            )  # fmt: skip
            record.raw(f"warm-{_slug(target.label)}-c{conns}", output)
    samples = []
    for round_ in range(rounds):
        shift = round_ % len(targets)  # no app always follows the same one
        for conns in connections:
            for target in [*targets[shift:], *targets[:shift]]:
                before = target.server.cpu_seconds() if target.server else 0.0
                wrk, output = run_wrk(
                    target.url, connections=conns, seconds=seconds, threads=threads,
                    headers=headers,
                )  # fmt: skip
                cpu = None
                if target.server is not None:
                    used = target.server.cpu_seconds() - before
                    cpu = used / max(1, wrk.requests) * 1e6
                record.raw(f"r{round_}-{_slug(target.label)}-c{conns}", output)
                if wrk.requests == 0:
                    raise SystemExit(f"{target.label}: wrk completed no request:\n{output}")
                record.round(
                    round=round_, label=target.label, connections=conns, cpu_us=cpu,
                    loadavg=os.getloadavg()[0], **asdict(wrk),
                )  # fmt: skip
                samples.append(Sample(target.label, conns, round_, wrk, cpu))
    return samples


@dataclass(frozen=True)
class Row:
    label: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us: float | None
    rps_ratio: float
    """Median over rounds of (this rps / the baseline's rps in the same round)."""
    p99_ratio: float
    """Median over rounds of (this p99 / the baseline's p99 in the same round)."""


def summarize(samples: Sequence[Sample], baseline: str) -> list[Row]:
    """Medians per (label, connections); ratios per round against ``baseline``."""
    keys = list(dict.fromkeys((s.label, s.connections) for s in samples))
    rows = []
    for label, conns in keys:
        mine = sorted((s for s in samples if (s.label, s.connections) == (label, conns)),
                      key=lambda s: s.round)  # fmt: skip
        base = {s.round: s for s in samples if (s.label, s.connections) == (baseline, conns)}
        cpus = [s.cpu_us for s in mine if s.cpu_us is not None]
        rows.append(
            Row(
                label,
                conns,
                statistics.median(s.wrk.rps for s in mine),
                statistics.median(s.wrk.p50_ms for s in mine),
                statistics.median(s.wrk.p99_ms for s in mine),
                sum(s.wrk.errors for s in mine),
                sum(s.wrk.requests for s in mine),
                statistics.median(cpus) if cpus else None,
                statistics.median(s.wrk.rps / base[s.round].wrk.rps for s in mine),
                statistics.median(s.wrk.p99_ms / base[s.round].wrk.p99_ms for s in mine),
            )
        )
    return rows


def table(
    rows: Sequence[Row], baseline: str, extra: dict[str, dict[str, str]] | None = None
) -> list[str]:
    """Markdown lines; ``extra`` adds columns (column name -> label -> cell)."""
    extra = extra or {}
    names = list(extra)
    head = ["app", "conns", "req/s", "p50 ms", "p99 ms", "errors", "requests",
            f"x {baseline}, per round", f"p99 / {baseline} p99, per round",
            "server CPU us/req", *names]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in rows:
        cpu = f"{r.cpu_us:.1f}" if r.cpu_us is not None else ""
        cells = [r.label, str(r.connections), f"{r.rps:,.0f}", f"{r.p50_ms:.2f}",
                 f"{r.p99_ms:.2f}", str(r.errors), f"{r.requests:,}", f"{r.rps_ratio:.2f}x",
                 f"{r.p99_ratio:.2f}x", cpu, *(extra[n].get(r.label, "") for n in names)]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def verdicts(checks: Sequence[tuple[str, bool, str]], failed_requests: int) -> dict[str, str]:
    """``name -> "met" | "NOT met" | "NOT MET (n requests failed)"``, with each detail.

    >>> verdicts([("fast", True, "2.0x")], 0)
    {'fast': 'met (2.0x)'}
    >>> verdicts([("fast", True, "2.0x")], 3)
    {'fast': 'NOT MET: 3 requests failed, the numbers are not comparable (2.0x)'}
    """
    out = {}
    for name, met, detail in checks:
        if failed_requests:
            word = f"NOT MET: {failed_requests} requests failed, the numbers are not comparable"
        else:
            word = "met" if met else "NOT met"
        out[name] = f"{word} ({detail})" if detail else word
    return out


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


# -- the database every Revenge server of a run shares ---------------------------------------

PG_ADMIN_URL = os.environ.get(
    "REVENGE_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def admin_connect(url: str = PG_ADMIN_URL) -> Any:
    """A psycopg connection, retried: a shared server may be briefly out of connection slots."""
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        try:
            return psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextmanager
def fresh_database(socket_dir: str | None = None) -> Iterator[str]:
    """A migrated throw-away database, dropped afterwards.

    Its URL avoids TLS (TCP with ``sslmode=disable``, or the Unix socket in
    ``socket_dir``): the local server would otherwise negotiate TLS, which costs
    about 40% on a DB-bound route.
    """
    import asyncio
    import uuid

    from revenge.wiring import migrate

    name = f"revenge_bench_{uuid.uuid4().hex[:10]}"
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    if socket_dir:
        url = f"postgresql://postgres@/{name}?host={socket_dir}"
    else:
        url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}?sslmode=disable"
    try:
        asyncio.run(migrate(url))
        yield url
    finally:
        with admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def revenge_env(db_url: str, password: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A Revenge server's environment: this tree first on PYTHONPATH (``PYTHONPATH`` in
    ``extra`` goes in front of it: another checkout served side by side)."""
    extra = dict(extra or {})
    paths = [extra.pop("PYTHONPATH", ""), str(ROOT / "python"), str(ROOT),
             os.environ.get("PYTHONPATH", "")]  # fmt: skip
    return {
        "REVENGE_DATABASE__URL": db_url,
        "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": password,
        "PYTHONPATH": os.pathsep.join(filter(None, paths)),
        **extra,
    }


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``LABEL:KEY=VALUE,...`` -> label and environment (``APP=module:attr`` picks the app).

    >>> parse_variant("old:PYTHONPATH=/tmp/old/python,A=1")
    ('old', {'PYTHONPATH': '/tmp/old/python', 'A': '1'})
    """
    label, _, spec = text.partition(":")
    env = dict(item.split("=", 1) for item in spec.split(",") if item)
    if not label:
        raise ValueError("expected LABEL:KEY=VALUE[,KEY=VALUE...]")
    return label, env
