"""The pieces of a cached segment request that Revenge adds above a bare ``response_bytes``,
timed one by one in process (``timeit``, best of 5): the signed URL's check, the parameters'
validation, the cache look-up of a 760 KB segment, the counters and the bandwidth monitor.

    python -m benches.playback_segment_path

What the whole request adds is measured over HTTP by ``benches/bench_playback.py`` (the cached
segment at 1 connection next to the floor); this says where it goes.
"""

from __future__ import annotations

import timeit

from benches.record import RunRecord

from revenge._core import TranscodeCache
from revenge.modules.playback.metrics import PlaybackMetrics
from revenge.modules.playback.routes import SignedQuery, VariantPath
from revenge.modules.playback.sessions import Bandwidth
from revenge.modules.playback.signing import UrlSigner


def per_call_us(stmt: object, number: int = 20_000) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    record = RunRecord("playback-segment-path")
    record.header()
    signer = UrlSigner(b"k" * 32)
    query = signer.query("9f0c" * 8, user_id=7, item_id=42, expires=2_000_000_000)
    exp, sig = (part.split("=", 1)[1] for part in query.split("&"))
    cache = TranscodeCache(budget_bytes=64 << 20)
    segment = bytes(761_606)
    cache.insert("s/720p/1", segment)
    metrics = PlaybackMetrics.get()
    bandwidth = Bandwidth()
    params = {"session_id": "9f0c" * 8, "variant": "720p", "name": "1.m4s"}
    pieces = {
        "signature check (HMAC-SHA256, constant-time compare)": lambda: signer.check(
            "9f0c" * 8, 7, 42, exp, sig, now=1_900_000_000
        ),
        "path and query validation (two pydantic models)": lambda: (
            VariantPath.model_validate(params),
            SignedQuery.model_validate({"exp": exp, "sig": sig}),
        ),
        "cache get of a 760 KB segment (the same bytes object, no copy)": lambda: cache.get(
            "s/720p/1"
        ),
        "counters (cache hit, bytes served)": lambda: (
            metrics.cache_hits.inc(),
            metrics.bytes_served.labels("segment").inc(761_606),
        ),
        "bandwidth monitor": lambda: bandwidth.add(761_606),
        "for scale: copying 760 KB once (bytes(memoryview))": lambda: bytes(memoryview(segment)),
    }
    total = 0.0
    for name, stmt in pieces.items():
        us = per_call_us(stmt)
        if not name.startswith("for scale"):
            total += us
        record.print(f"- {name}: {us:.2f} us")
        record.round(piece=name, us=us)
    record.print(f"- sum of the pieces Revenge adds: {total:.1f} us")
    assert cache.get("s/720p/1") is segment
    record.finish({})


if __name__ == "__main__":
    main()
