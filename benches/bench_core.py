"""Benchmarks of revenge._core against what a Python developer would reach for.

Run: ``python benches/bench_core_report.py`` (runs this file with pytest-benchmark
and prints the comparison table), or ``pytest benches/bench_core.py``.

Every timed function performs ``OPS`` operations in a loop, so the per-call
overhead of pytest-benchmark is amortised and each contender pays the same
Python loop cost; the report divides by ``extra_info["ops"]``. Each group has
one ``baseline`` (``extra_info["baseline"]``) that ratios are taken against.
"""

from __future__ import annotations

import itertools
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import cachebox
import cachetools
import lru
import pytest
import theine

from revenge._core import LazyCell, SessionCache, TranscodeCache

N_TOKENS = 100_000
OPS = 1_000
HOUR = 3600.0
MB = 1 << 20

rng = random.Random(1234)


def _tokens(n: int) -> list[str]:
    # secrets.token_urlsafe(32) is exactly 43 characters, like a real session token.
    return [secrets.token_urlsafe(32) for _ in range(n)]


TOKENS = _tokens(N_TOKENS)
ABSENT = _tokens(OPS)
HIT_SAMPLE = rng.sample(TOKENS, OPS)
VALUE = (7, "user", 0, time.time() + HOUR)


def _mark(benchmark: Any, *, ops: int = OPS, baseline: bool = False) -> None:
    benchmark.extra_info["ops"] = ops
    benchmark.extra_info["baseline"] = baseline


# ----------------------------------------------------------------- session cache


def _session_cache() -> SessionCache:
    cache = SessionCache(max_entries=2 * N_TOKENS, max_bytes=512 * MB, ttl=HOUR, idle_timeout=HOUR)
    for t in TOKENS:
        cache.insert(t, user_id=7, role="user", flags=0, expires_at=VALUE[3])
    return cache


def _filled(cache: Any, setter: Callable[[Any, str], None]) -> Any:
    for t in TOKENS:
        setter(cache, t)
    return cache


def _setitem(c: Any, t: str) -> None:
    c[t] = VALUE


def _theine_set(c: Any, t: str) -> None:
    c.set(t, VALUE)


# name -> (factory, getter factory); getters take a token and return the value or None.
SESSION_CONTENDERS: dict[str, Callable[[], Callable[[str], object]]] = {
    "dict": lambda: _filled({}, _setitem).get,
    "SessionCache (revenge._core)": lambda: _session_cache().get,
    "cachetools.TTLCache": lambda: _filled(cachetools.TTLCache(2 * N_TOKENS, HOUR), _setitem).get,
    "cachebox.TTLCache": lambda: _filled(cachebox.TTLCache(2 * N_TOKENS, HOUR), _setitem).get,
    "lru-dict LRU": lambda: _filled(lru.LRU(2 * N_TOKENS), _setitem).get,
    "theine Cache": lambda: _filled(theine.Cache(2 * N_TOKENS), _theine_set).get,
}


def _lookup_loop(get: Callable[[str], object], keys: list[str]) -> Callable[[], None]:
    def run() -> None:
        for k in keys:
            get(k)

    return run


@pytest.mark.parametrize("name", list(SESSION_CONTENDERS))
def test_session_get_hit(benchmark: Any, name: str) -> None:
    benchmark.group = "session get (hit), 100k 43-char tokens"
    get = SESSION_CONTENDERS[name]()
    assert get(HIT_SAMPLE[0]) is not None
    _mark(benchmark, baseline=name == "dict")
    benchmark(_lookup_loop(get, HIT_SAMPLE))


@pytest.mark.parametrize("name", list(SESSION_CONTENDERS))
def test_session_get_miss(benchmark: Any, name: str) -> None:
    benchmark.group = "session get (miss), 100k 43-char tokens"
    get = SESSION_CONTENDERS[name]()
    found = get(ABSENT[0])
    assert found is None or found == (None, False)
    _mark(benchmark, baseline=name == "dict")
    benchmark(_lookup_loop(get, ABSENT))


INSERT_POOL = _tokens(2 * N_TOKENS)


def _insert_contenders() -> dict[str, Callable[[], Callable[[str], None]]]:
    def session() -> Callable[[str], None]:
        cache = SessionCache(max_entries=N_TOKENS, max_bytes=512 * MB, ttl=HOUR, idle_timeout=HOUR)
        ins = cache.insert
        exp = VALUE[3]
        return lambda t: ins(t, user_id=7, role="user", flags=0, expires_at=exp)

    def item(c: Any) -> Callable[[str], None]:
        return lambda t: c.__setitem__(t, VALUE)

    def theine_set() -> Callable[[str], None]:
        c: theine.Cache[str, Any] = theine.Cache(N_TOKENS)
        return lambda t: c.set(t, VALUE)

    return {
        "dict": lambda: item({}),
        "SessionCache (revenge._core)": session,
        "cachetools.TTLCache": lambda: item(cachetools.TTLCache(N_TOKENS, HOUR)),
        "cachebox.TTLCache": lambda: item(cachebox.TTLCache(N_TOKENS, HOUR)),
        "lru-dict LRU": lambda: item(lru.LRU(N_TOKENS)),
        "theine Cache": theine_set,
    }


@pytest.mark.parametrize("name", list(_insert_contenders()))
def test_session_insert(benchmark: Any, name: str) -> None:
    benchmark.group = "session insert (cap 100k, 200k-token stream, evicting)"
    put = _insert_contenders()[name]()
    chunks: Iterator[list[str]] = itertools.cycle(
        [INSERT_POOL[i : i + OPS] for i in range(0, len(INSERT_POOL), OPS)]
    )

    def run() -> None:
        for t in next(chunks):
            put(t)

    _mark(benchmark, baseline=name == "dict")
    benchmark(run)


# ----------------------------------------------------------------- hit ratio


def zipf_trace(
    n_keys: int = 1_000_000,
    length: int = 1_000_000,
    s: float = 0.9,
    scan_every: int = 100_000,
    scan_len: int = 20_000,
    seed: int = 42,
) -> list[int]:
    """Zipf(s) over ``n_keys`` ranks (shuffled ids), plus a one-pass scan of
    ``scan_len`` never-again keys every ``scan_every`` requests."""
    r = random.Random(seed)
    weights = itertools.accumulate(1.0 / (k**s) for k in range(1, n_keys + 1))
    cum = list(weights)
    ids = list(range(n_keys))
    r.shuffle(ids)
    trace: list[int] = []
    scan_id = n_keys
    drawn = 0
    while drawn < length:
        batch = min(scan_every, length - drawn)
        trace.extend(ids[i] for i in r.choices(range(n_keys), cum_weights=cum, k=batch))
        drawn += batch
        trace.extend(range(scan_id, scan_id + scan_len))
        scan_id += scan_len
    return trace


CAPACITY = 100_000


def _replay_session(keys: list[str]) -> float:
    cache = SessionCache(max_entries=CAPACITY, max_bytes=1 << 34, ttl=HOUR, idle_timeout=HOUR)
    get, ins, exp = cache.get, cache.insert, time.time() + HOUR
    hits = 0
    for k in keys:
        if get(k) is not None:
            hits += 1
        else:
            ins(k, user_id=1, role="user", flags=0, expires_at=exp)
    return hits / len(keys)


def _replay_theine(keys: list[str]) -> float:
    cache: theine.Cache[str, int] = theine.Cache(CAPACITY)
    get, put = cache.get, cache.set
    hits = 0
    for k in keys:
        if get(k)[1]:
            hits += 1
        else:
            put(k, 1)
    return hits / len(keys)


def _replay_mapping(cache: Any) -> Callable[[list[str]], float]:
    def replay(keys: list[str]) -> float:
        hits = 0
        get = cache.get
        for k in keys:
            if get(k) is not None:
                hits += 1
            else:
                cache[k] = 1
        return hits / len(keys)

    return replay


REPLAYS: dict[str, Callable[[], Callable[[list[str]], float]]] = {
    "theine Cache (W-TinyLFU)": lambda: _replay_theine,
    "SessionCache (revenge._core)": lambda: _replay_session,
    "cachetools.LRUCache": lambda: _replay_mapping(cachetools.LRUCache(CAPACITY)),
}


@pytest.fixture(scope="module")
def trace_keys() -> list[str]:
    return [f"{k:043d}" for k in zipf_trace()]


@pytest.mark.parametrize("name", list(REPLAYS))
def test_hit_ratio_zipf_with_scans(benchmark: Any, name: str, trace_keys: list[str]) -> None:
    benchmark.group = "hit ratio: Zipf(0.9) over 1M keys + scans, cache 100k"
    replay = REPLAYS[name]()
    ratio = benchmark.pedantic(replay, args=(trace_keys,), rounds=1, iterations=1)
    benchmark.extra_info["hit_ratio"] = ratio
    _mark(benchmark, ops=len(trace_keys), baseline=name.startswith("theine"))


# ----------------------------------------------------------------- lazy cell


class _Holder:
    def __init__(self, value: object) -> None:
        self.value = value


class _LockedLazy:
    """What a Python developer writes: a lock around every read."""

    def __init__(self, init: Callable[[], object]) -> None:
        self._init = init
        self._value: object | None = None
        self._lock = threading.Lock()

    def get(self) -> object:
        with self._lock:
            if self._value is None:
                self._value = self._init()
            return self._value


class _DoubleCheckedLazy:
    """The careful variant: lock only while empty."""

    def __init__(self, init: Callable[[], object]) -> None:
        self._init = init
        self._value: object | None = None
        self._lock = threading.Lock()

    def get(self) -> object:
        v = self._value
        if v is None:
            with self._lock:
                if self._value is None:
                    self._value = self._init()
                v = self._value
        return v


def test_lazy_attribute_read(benchmark: Any) -> None:
    benchmark.group = "lazy get after init"
    h = _Holder(object())

    def run() -> None:
        for _ in range(OPS):
            h.value  # noqa: B018

    _mark(benchmark, baseline=True)
    benchmark(run)


def _call_loop(get: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        for _ in range(OPS):
            get()

    return run


def test_lazy_cell_get(benchmark: Any) -> None:
    benchmark.group = "lazy get after init"
    cell: LazyCell[object] = LazyCell()
    cell.get_or_init(object)
    _mark(benchmark)
    benchmark(_call_loop(cell.get))


def test_lazy_cell_is_ready_floor(benchmark: Any) -> None:
    """The floor of any extension attribute: a getter that returns a bool."""
    benchmark.group = "lazy get after init"
    cell: LazyCell[object] = LazyCell()
    cell.get_or_init(object)

    def run() -> None:
        for _ in range(OPS):
            cell.is_ready  # noqa: B018

    _mark(benchmark)
    benchmark(run)


def test_lazy_cell_get_or_init(benchmark: Any) -> None:
    benchmark.group = "lazy get after init"
    cell: LazyCell[object] = LazyCell()
    cell.get_or_init(object)
    goi = cell.get_or_init

    def run() -> None:
        for _ in range(OPS):
            goi(object)

    _mark(benchmark)
    benchmark(run)


def test_lazy_python_lock_every_get(benchmark: Any) -> None:
    benchmark.group = "lazy get after init"
    lazy = _LockedLazy(object)
    lazy.get()
    _mark(benchmark)
    benchmark(_call_loop(lazy.get))


def test_lazy_python_double_checked(benchmark: Any) -> None:
    benchmark.group = "lazy get after init"
    lazy = _DoubleCheckedLazy(object)
    lazy.get()
    _mark(benchmark)
    benchmark(_call_loop(lazy.get))


# ----------------------------------------------------------------- transcode cache

SEGMENT = 2 * MB
SEGMENTS = [bytes([i]) * SEGMENT for i in range(8)]
SEG_OPS = 100


def test_transcode_insert_dict(benchmark: Any) -> None:
    benchmark.group = "transcode insert 2 MB segment (budget 64 MB, evicting)"
    d: dict[str, bytes] = {}
    keys = [f"movie/{i}.ts" for i in range(SEG_OPS)]

    def run() -> None:
        for i, k in enumerate(keys):
            d[k] = SEGMENTS[i % 8]

    _mark(benchmark, ops=SEG_OPS, baseline=True)
    benchmark(run)


def test_transcode_insert(benchmark: Any) -> None:
    benchmark.group = "transcode insert 2 MB segment (budget 64 MB, evicting)"
    cache = TranscodeCache(budget_bytes=64 * MB)
    keys = [f"movie/{i}.ts" for i in range(SEG_OPS)]
    ins = cache.insert

    def run() -> None:
        for i, k in enumerate(keys):
            ins(k, SEGMENTS[i % 8])

    _mark(benchmark, ops=SEG_OPS)
    benchmark(run)
    assert cache.stats()["bytes"] <= 64 * MB


def test_transcode_get_dict(benchmark: Any) -> None:
    benchmark.group = "transcode get 2 MB segment"
    d = {f"seg{i}": SEGMENTS[i] for i in range(8)}
    keys = [f"seg{i % 8}" for i in range(SEG_OPS)]
    _mark(benchmark, ops=SEG_OPS, baseline=True)
    benchmark(_lookup_loop(d.get, keys))


def test_transcode_get(benchmark: Any) -> None:
    benchmark.group = "transcode get 2 MB segment"
    cache = TranscodeCache(budget_bytes=64 * MB)
    for i in range(8):
        cache.insert(f"seg{i}", SEGMENTS[i])
    keys = [f"seg{i % 8}" for i in range(SEG_OPS)]
    assert cache.get("seg0") is SEGMENTS[0]
    _mark(benchmark, ops=SEG_OPS)
    benchmark(_lookup_loop(cache.get, keys))


def test_transcode_pressure_to_budget(benchmark: Any) -> None:
    """From set_pressure('moderate') to the halved budget being met and the
    evicted segments' memory freed (256 MB of distinct 2 MB segments)."""
    benchmark.group = "pressure change -> budget met, memory freed (256 MB, 2 MB segments)"
    budget = 256 * MB

    def setup() -> tuple[tuple[TranscodeCache], dict[str, Any]]:
        cache = TranscodeCache(budget_bytes=budget)
        for i in range(budget // SEGMENT):
            # Distinct objects, referenced only by the cache: eviction frees them.
            cache.insert(f"s{i}", bytes(SEGMENT))
        return (cache,), {}

    def react(cache: TranscodeCache) -> None:
        # Entries are charged their key and a fixed overhead too, so a little
        # more than half the segment bytes goes.
        evicted = cache.set_pressure("moderate")
        assert evicted >= budget // 2 - SEGMENT
        assert cache.stats()["bytes"] <= budget // 2

    _mark(benchmark, ops=1, baseline=True)
    benchmark.pedantic(react, setup=setup, rounds=10, iterations=1)
