"""The embedded default: time to the first ``SELECT 1`` on a fresh data folder and on restart.

Each round of the first-start benchmark initialises a new cluster (initdb +
start + ``CREATE DATABASE revenge``); each restart round starts the cluster the
previous round stopped. The stop is outside the timed part. Both backends:
the machine's PostgreSQL binaries ("system") and pgserver's bundled server.

    python -m pytest benches/bench_db_embedded.py --benchmark-only
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from revenge.infra.db import start_embedded
from revenge.infra.db.embedded import Backend

ROUNDS = 3


@pytest.fixture
def stops() -> Iterator[list[Callable[[], None]]]:
    pending: list[Callable[[], None]] = []
    yield pending
    for stop in pending:
        stop()


def _first_query(data_dir: Path, stops: list[Callable[[], None]], backend: Backend) -> None:
    server = start_embedded(data_dir, backend)
    stops.append(server.stop)
    with psycopg.connect(server.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def _stop_all(stops: list[Callable[[], None]]) -> None:
    while stops:
        stops.pop()()


BACKENDS = [
    "system",
    pytest.param(
        "pgserver",
        marks=pytest.mark.skipif(
            os.geteuid() == 0,
            reason="Revenge refuses the pgserver fallback as root; run as a user",
        ),
    ),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.benchmark(group="embedded-postgres")
def test_first_start_on_a_fresh_folder(
    benchmark: Any, tmp_path: Path, stops: list[Callable[[], None]], backend: Backend
) -> None:
    def setup() -> tuple[tuple[Path, list[Callable[[], None]], Backend], dict[str, Any]]:
        _stop_all(stops)
        return (Path(tempfile.mkdtemp(dir=tmp_path)), stops, backend), {}

    benchmark.pedantic(_first_query, setup=setup, rounds=ROUNDS, iterations=1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.benchmark(group="embedded-postgres")
def test_restart_on_an_existing_folder(
    benchmark: Any, tmp_path: Path, stops: list[Callable[[], None]], backend: Backend
) -> None:
    _first_query(tmp_path, stops, backend)  # initialise once, outside the measurement

    def setup() -> tuple[tuple[Path, list[Callable[[], None]], Backend], dict[str, Any]]:
        _stop_all(stops)
        return (tmp_path, stops, backend), {}

    benchmark.pedantic(_first_query, setup=setup, rounds=ROUNDS, iterations=1)
