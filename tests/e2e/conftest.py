"""Real server processes on free loopback ports, stopped at the end of each test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.cheap_settings import FAST_ARGON2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server process and its base URL; its output is kept for failure messages."""

    def __init__(self, process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def run_server(
    argv: Sequence[str],
    port: int,
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/health/live",
    timeout: float = 60,
) -> Iterator[Server]:
    """Start ``argv`` (a server listening on ``port``) and wait until ``ready_path`` answers 200."""
    log = tmp_path / f"server-{port}.log"
    # REVENGE_TEST_* steer the test suite, not the server (whose config refuses unknown keys).
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_TEST_")}
    full_env = {**inherited, **(env or {})}
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=full_env)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"{argv} exited {process.returncode}:\n{server.output()}")
            try:
                with urllib.request.urlopen(server.base_url + ready_path, timeout=2) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{argv} did not answer {ready_path} in {timeout}s:\n{server.output()}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


def granian_argv(port: int, *extra: str, target: str = "revenge.app:app") -> list[str]:
    return [
        sys.executable,
        "-m",
        "granian",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
        target,
    ]


def serve_argv(port: int, *extra: str) -> list[str]:
    """``revenge serve`` on loopback ``port``, run by this interpreter (the test's virtualenv)."""
    return [
        sys.executable,
        "-m",
        "revenge.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
    ]


@contextmanager
def serve_revenge(
    url: str, tmp_path: Path, data_dir: Path | None = None, **env: str
) -> Iterator[Server]:
    """``revenge serve`` over the database ``url`` with cheap hashing, its output kept."""
    port = free_port()
    full = {
        "REVENGE_DATABASE__URL": url,
        "REVENGE_SERVER__DATA_DIR": str(data_dir or tmp_path / "data"),
        **FAST_ARGON2,
        **env,
    }
    with run_server(serve_argv(port), port, tmp_path, env=full) as server:
        yield server
