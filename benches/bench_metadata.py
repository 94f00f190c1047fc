"""The cold ``metadata_providers`` service (TMDb) against a local TMDb-like server:
first use minus the server's own connect-and-answer time, and RSS after offload.

    python benches/bench_metadata.py                 # 30 rounds, 500 look-ups for RSS
    python benches/bench_metadata.py --rounds 10 --lookups 200

The whole application is assembled from the module list (role ``serve``, no job worker)
against a throw-away database, with ``metadata.tmdb_url`` pointing at
``tests/integration/_tmdb_server.py`` on 127.0.0.1, run in a process of its own (no
internet here: the real TMDb is never called; in a thread of this process it would take
turns with the client for the GIL and slow both). Each round, with the HTTP cache emptied so the spin-up really talks to the
server: the baseline is a bare asyncio socket opening a connection, sending the same
``GET /3/configuration`` and reading the whole answer (the server's own connect and
handshake); the first use is ``await runtime.lazy(METADATA_PROVIDERS).get()`` (registry,
httpx client, the ``/configuration`` call through the rate limiter, the cache miss and
write in PostgreSQL); then the service is offloaded. The two alternate in order.
Printed: medians and p90 of both and of the difference (target < 20 ms), the CPU
time of this process during a first use (less sensitive to a busy machine), the
``revenge_lazy_init_seconds`` count, and RSS before the first use, after ``--lookups``
look-ups, and after offload (target: back within 5 MB of before).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT))

from benches.record import RunRecord  # noqa: E402
from tests.integration._tmdb_server import API_KEY  # noqa: E402

from revenge.config import Settings  # noqa: E402
from revenge.contract import assemble  # noqa: E402
from revenge.modules.metadata import METADATA_PROVIDERS, Lookup  # noqa: E402
from revenge.wiring import migrate, modules  # noqa: E402

ADMIN = os.environ.get("REVENGE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_MS = 20.0
TARGET_RSS_MB = 5.0


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / (1 << 20)


async def bare_request(port: int) -> float:
    """Connect, send the same request, read the whole answer: the server's own time."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /3/configuration?api_key={API_KEY} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        "accept: application/json\r\n\r\n".encode()
    )
    await writer.drain()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    writer.close()
    await writer.wait_closed()
    return time.perf_counter() - started


@contextlib.contextmanager
def server_process() -> Iterator[int]:
    """The test TMDb server in a process of its own; its port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration._tmdb_server"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(10)


async def run(url: str, rounds: int, lookups: int, record: RunRecord) -> dict[str, object]:
    with server_process() as port:
        settings = Settings(
            database={"url": url},
            jobs={"in_process_worker": False},
            metadata={"tmdb_api_key": API_KEY, "tmdb_url": f"http://127.0.0.1:{port}/3"},
            log={"level": "warning"},
        )
        assembly = assemble(settings, modules(settings), role="serve")
        runtime = assembly.runtime
        async with runtime:
            db = assembly.database
            lazy = runtime.lazy(METADATA_PROVIDERS)
            await bare_request(port)  # the server's own first-connection warm-up
            base: list[float] = []
            first: list[float] = []
            cpu: list[float] = []
            for i in range(rounds):
                await db.execute("DELETE FROM metadata_http_cache")
                order = (0, 1) if i % 2 == 0 else (1, 0)
                for which in order:
                    if which == 0:
                        base.append(await bare_request(port))
                    else:
                        started, cpu_started = time.perf_counter(), time.process_time()
                        await lazy.get()
                        first.append(time.perf_counter() - started)
                        cpu.append(time.process_time() - cpu_started)
                        await lazy.offload("bench", force=True)
                record.round(round=i, bare_s=base[-1], first_use_s=first[-1], cpu_s=cpu[-1])
            diffs = [f - b for f, b in zip(first, base, strict=True)]

            def ms(values: list[float], q: float) -> float:
                ordered = sorted(values)
                return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

            record.print("| | median ms | p90 ms |")
            record.print("|---|---|---|")
            for name, values in (("bare connect + answer (baseline)", base),
                                 ("first use (lazy get)", first),
                                 ("first use minus baseline", diffs),
                                 ("first use, CPU time of this process", cpu)):  # fmt: skip
                record.print(
                    f"| {name} | {1000 * statistics.median(values):.2f} | {ms(values, 0.9):.2f} |"
                )
            metrics = runtime.metrics
            count = 0.0
            if metrics is not None:
                for metric in metrics.lazy_init_seconds.collect():
                    for s in metric.samples:
                        if (s.labels.get("service") == "metadata_providers"
                                and s.name.endswith("_count")):  # fmt: skip
                            count = s.value
            record.print(
                f"\nrevenge_lazy_init_seconds_count{{service=metadata_providers}} = {count:.0f}"
            )

            # RSS: before a first use, after a run of look-ups, after offload
            gc.collect()
            before = rss_mb()
            providers = await lazy.get()
            tmdb = providers.providers[0]
            titles = [("movie", "Alien", 1979, {"imdb": "tt0078748"}), ("movie", "Heat", 1995, {}),
                      ("series", "The Wire", None, {"tmdb": "1438"})]  # fmt: skip
            for n in range(lookups):
                kind, title, year, ids = titles[n % len(titles)]
                if n % 10 == 0:
                    await db.execute("DELETE FROM metadata_http_cache")
                await tmdb.lookup(Lookup(kind, title, year, ids))  # type: ignore[arg-type]
            used = rss_mb()
            del providers, tmdb
            await runtime.offload_idle(idle_ttl=0.0)
            gc.collect()
            after = rss_mb()
            record.print(
                f"\nRSS MB: before first use {before:.1f}, after {lookups} look-ups {used:.1f}, "
                f"after offload {after:.1f} (difference {after - before:+.2f}; target within "
                f"{TARGET_RSS_MB:g})"
            )
            record.round(rss_before=before, rss_used=used, rss_after=after, lookups=lookups)
            median_diff = 1000 * statistics.median(diffs)
            verdicts = {
                "first_use_minus_connect_ms": round(median_diff, 2),
                "first_use_met": median_diff < TARGET_MS,
                "rss_delta_mb": round(after - before, 2),
                "rss_met": abs(after - before) <= TARGET_RSS_MB,
            }
            record.print(
                f"\nfirst use minus connect: {median_diff:.2f} ms (target < {TARGET_MS:g}): "
                f"{'met' if verdicts['first_use_met'] else 'NOT met'}; RSS after offload: "
                f"{after - before:+.2f} MB (target within {TARGET_RSS_MB:g}): "
                f"{'met' if verdicts['rss_met'] else 'NOT met'}"
            )
            return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--lookups", type=int, default=500)
    args = parser.parse_args()
    record = RunRecord("metadata")
    record.header()
    name = f"revenge_bench_meta_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN.rsplit('/', 1)[0]}/{name}"
    try:
        asyncio.run(migrate(url))
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:  # pragma: no cover
            runner = asyncio.run
        verdicts = runner(run(url, args.rounds, args.lookups, record))
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    record.finish(verdicts)


if __name__ == "__main__":
    main()
