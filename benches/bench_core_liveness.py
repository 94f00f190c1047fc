"""Issue 18's two measurable cases of the Rust core, before/after by PYTHONPATH.

    python benches/bench_core_liveness.py --seconds 10

* churn: the review's case, 3 threads calling ``LazyCell.get_or_init`` (0.5 ms
  initialiser, 5 s timeout), 10 % of calls followed by a ``reset``: counts the
  calls that timed out (a waiter that missed every ready window) and the
  slowest call.
* empty entries: 200,000 empty segments offered to a 1 KiB ``TranscodeCache``:
  how many it holds, what it charges, and the process's peak RSS growth.
"""

from __future__ import annotations

import argparse
import random
import resource
import threading
import time

from revenge._core import LazyCell, TranscodeCache


def churn(seconds: float) -> str:
    cell: LazyCell[int] = LazyCell(backoff_initial=0.0, backoff_max=0.0)
    stop = threading.Event()
    lock = threading.Lock()
    latencies: list[float] = []
    timeouts = 0

    def init() -> int:
        time.sleep(0.0005)
        return 7

    def user(seed: int) -> None:
        nonlocal timeouts
        rnd = random.Random(seed)
        while not stop.is_set():
            started = time.perf_counter()
            try:
                cell.get_or_init(init, timeout=5.0)
            except TimeoutError:
                with lock:
                    timeouts += 1
            with lock:
                latencies.append(time.perf_counter() - started)
            if rnd.random() < 0.1:
                cell.reset()

    threads = [threading.Thread(target=user, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    return (
        f"churn: calls={len(latencies)} timeouts={timeouts} p99={p99 * 1e3:.2f}ms "
        f"max={latencies[-1] * 1e3:.1f}ms inits={cell.init_count}"
    )


def empty_entries(n: int = 200_000) -> str:
    cache = TranscodeCache(budget_bytes=1024)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i in range(n):
        cache.insert(f"movie/segment-{i:06}.ts", b"")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    return (
        f"empty entries: offered={n} held={len(cache)} charged={cache.stats()['bytes']}B "
        f"peak_rss_growth={grown / 1024:.1f}MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the churn run")
    args = parser.parse_args()
    print(empty_entries())
    print(churn(args.seconds))


if __name__ == "__main__":
    main()
