"""Revenge's app with the garbage collector set from the environment: tail-latency experiments.

Serve it as a variant of the /me harness, next to the default app in the same rounds::

    python -m benches.http.run --skip-revocation \
        --variant gc-log:APP=benches.http.gc_app:app,BENCH_GC_LOG=/tmp/gc-log \
        --variant gc-off:APP=benches.http.gc_app:app,BENCH_GC=off

``BENCH_GC``: ``default`` (as shipped: ``HttpApp`` collects and freezes at worker
start), ``off`` (``gc.disable()``: no collection at all during the run),
``threshold:N`` (generation-0 threshold N instead of 700).
``BENCH_GC_LOG=PREFIX``: each worker keeps ``PREFIX.<pid>.json`` up to date with
its collections per generation and their pause times (total, maximum), so a run
shows whether a collection could have made a p99 at all.
"""

from __future__ import annotations

import gc
import json
import os
import time
from typing import Any

from revenge.app import app

_MODE = os.environ.get("BENCH_GC", "default")
_LOG = os.environ.get("BENCH_GC_LOG", "")

if _MODE == "off":
    gc.disable()
elif _MODE.startswith("threshold:"):
    _, second, third = gc.get_threshold()
    gc.set_threshold(int(_MODE.split(":", 1)[1]), second, third)
elif _MODE != "default":
    raise SystemExit(f"BENCH_GC={_MODE!r}: expected default, off or threshold:N")

_stats: dict[str, Any] = {
    "mode": _MODE,
    "collections": [0, 0, 0],
    "pause_total_ms": [0.0, 0.0, 0.0],
    "pause_max_ms": [0.0, 0.0, 0.0],
}
_started = 0.0
_written = 0.0


def _on_gc(phase: str, info: dict[str, int]) -> None:
    global _started, _written
    if phase == "start":
        _started = time.perf_counter()
        return
    pause = (time.perf_counter() - _started) * 1000
    generation = info["generation"]
    _stats["collections"][generation] += 1
    _stats["pause_total_ms"][generation] += pause
    _stats["pause_max_ms"][generation] = max(_stats["pause_max_ms"][generation], pause)
    now = time.monotonic()
    if now - _written > 0.5:  # a worker may be killed: keep the file current, cheaply
        _written = now
        with open(f"{_LOG}.{os.getpid()}.json", "w") as out:
            json.dump(_stats, out)


if _LOG:
    gc.callbacks.append(_on_gc)

__all__ = ["app"]
