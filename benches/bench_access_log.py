"""Cost of the access line and request ids on the hot path: ``GET /api/v1/me`` in process.

Run from the repository root: ``python benches/bench_access_log.py [--calls N --repeat R]``.

Interleaved rounds in one process, CPU time per request (``time.process_time``, so a
moment the shared machine took away is not counted), the minimum over rounds:

* ``floor``        — the bare RSGI reference app (``benches.http.ref_rsgi``), the yardstick
* ``revenge, log off`` — Revenge's app with the access sink disabled (``log.level: warning``):
  request id made, ``X-Request-Id`` header, id in context, no line
* ``revenge, log on``  — the same app with the access sink enabled, JSON lines written
  (batched, formatted, and written by the writer thread, drained inside the measured
  time) to a real file

An older checkout has no ``revenge.runtime.logs``: run the script with its ``python/`` first
on ``PYTHONPATH`` and it measures ``floor`` and ``revenge`` only, so the per-request cost of
ids and headers is the difference of the two runs' ``revenge / floor`` ratios. Every
answer is checked (200, same body) before timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benches.http.profile_inprocess import (
    TOKEN,
    FakeProtocol,
    FakeScope,
    RsgiApp,
    floor_app,
    revenge_app,
)


async def _cpu_us(app: RsgiApp, calls: int, drain: Callable[[], None]) -> float:
    scope = FakeScope({"authorization": f"Bearer {TOKEN}", "host": "x", "accept": "*/*"})
    protocol = FakeProtocol()
    started = time.process_time()
    for _ in range(calls):
        await app(scope, protocol)
    drain()  # the writer thread's work counts too (process time covers every thread)
    took = time.process_time() - started
    assert protocol.status == 200, protocol.status
    return took / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    floor, revenge = floor_app(), revenge_app()
    try:
        from revenge.runtime import logs

        # A tight loop makes lines far faster than any server: let none be dropped here.
        logs._Writer.MAX_PENDING = 1 << 40
    except ImportError:
        logs = None  # type: ignore[assignment]
    sink_file = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)  # noqa: SIM115
    variants: dict[str, tuple[RsgiApp, bool | None]] = {"floor": (floor, None)}
    if logs is None:
        variants["revenge"] = (revenge, None)
    else:
        variants["revenge, log off"] = (revenge, False)
        variants["revenge, log on"] = (revenge, True)
    best: dict[str, float] = dict.fromkeys(variants, float("inf"))
    for _ in range(args.repeat):
        for name, (app, log_on) in variants.items():
            if logs is not None and log_on is not None:
                logs.access.configure(sink_file, True, log_on)
            drain = (lambda: logs.access.close(60)) if logs is not None else (lambda: None)
            us = loop.run_until_complete(_cpu_us(app, args.calls, drain))
            best[name] = min(best[name], us)
    sink_file.close()
    written = Path(sink_file.name).read_text().splitlines()
    if logs is not None:
        assert logs.access.dropped == 0
        assert len(written) >= args.calls * args.repeat, len(written)
        sample = json.loads(written[-1])
        assert (sample["route"], sample["status"], sample["user_id"]) == ("/api/v1/me", 200, 1)
    Path(sink_file.name).unlink()
    print(f"per request, CPU us (min of {args.repeat} rounds of {args.calls}):")
    for name, us in best.items():
        print(f"  {name:<18} {us:7.3f}  ({us / best['floor']:.2f} x floor)")
    if logs is not None:
        on, off = best["revenge, log on"], best["revenge, log off"]
        print(f"access line: +{on - off:.3f} us per request, log on / log off = {on / off:.3f}")


if __name__ == "__main__":
    main()
