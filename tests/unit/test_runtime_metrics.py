"""Metrics: the design's names, multi-process aggregation across real processes, directory setup."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
from prometheus_client import CollectorRegistry, Counter

from revenge.runtime import metrics as runtime_metrics
from revenge.runtime.metrics import (
    MULTIPROC_ENV,
    DeltaCounter,
    get_metrics,
    prepare_multiprocess_dir,
    render,
    setup_process,
)

DESIGN_METRICS = {
    # design "Metrics to Track"
    "revenge_lazy_init_total": "counter",  # LazyInitCount
    "revenge_lazy_init_seconds": "histogram",  # LazyInitLatency
    "revenge_pool_active_connections": "gauge",  # PoolActiveConns
    "revenge_pool_idle_connections": "gauge",  # PoolIdleConns
    "revenge_pool_wait_total": "counter",  # PoolWaitCount
    "revenge_heap_in_use_bytes": "gauge",  # HeapInUse
    "revenge_transcode_cache_bytes": "gauge",  # TranscodeCacheSize
    "revenge_degraded_services": "gauge",  # DegradedServices
    "revenge_fallback_total": "counter",  # FallbackCount
    # the additions
    "revenge_offload_total": "counter",
    "revenge_session_cache_hits_total": "counter",
    "revenge_session_cache_misses_total": "counter",
    # what the alerts need
    "revenge_pool_max_connections": "gauge",
    "revenge_memory_pressure_ratio": "gauge",
}


def test_every_design_metric_is_exposed_with_prometheus_naming() -> None:
    get_metrics()
    body, content_type = render()
    assert content_type.startswith("text/plain; version=0.0.4")
    text = body.decode()
    for name, kind in DESIGN_METRICS.items():
        assert f"# TYPE {name} {kind}" in text, name


def test_delta_counter_follows_a_monotonic_external_total() -> None:
    registry = CollectorRegistry()
    counter = Counter("t_hits", "hits", registry=registry)
    delta = DeltaCounter(counter)
    for total in (5, 5, 9, 2, 4):  # 2: the source was replaced and restarted from zero
        delta.update(total)
    assert registry.get_sample_value("t_hits_total") == 5 + 4 + 2 + 2


WORKER = textwrap.dedent(
    """
    import sys
    from revenge.runtime.metrics import get_metrics, mark_process_dead
    m = get_metrics()
    m.lazy_initialised("mp_svc", 0.03)
    m.fallback_used("mp_search")
    m.heap_in_use.set(1000)
    m.worker_up.set(1)
    print("ready", flush=True)
    sys.stdin.readline()
    mark_process_dead()
    """
)


def test_one_scrape_sees_every_worker_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
        text = render()[0].decode()
        assert 'revenge_lazy_init_total{outcome="success",service="mp_svc"} 2.0' in text
        assert 'revenge_lazy_init_seconds_count{service="mp_svc"} 2.0' in text
        assert 'revenge_fallback_total{service="mp_search"} 2.0' in text
        assert "revenge_heap_in_use_bytes 2000.0" in text  # livesum over live workers
        for worker in workers:
            assert f'revenge_worker_up{{pid="{worker.pid}"}} 1.0' in text
    finally:
        for worker in workers:
            worker.communicate("stop\n", timeout=30)
    text = render()[0].decode()
    # Counters of finished workers stay; their live gauges are gone.
    assert 'revenge_lazy_init_total{outcome="success",service="mp_svc"} 2.0' in text
    assert "revenge_worker_up{" not in text
    assert "revenge_heap_in_use_bytes 2000.0" not in text


def test_prepare_multiprocess_dir_cleans_stale_state_and_exports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, "unset-by-test")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{dead.pid}-12345"
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"x")
    parent = psutil.Process(os.getppid())
    alive = tmp_path / f"{parent.pid}-{int(parent.create_time())}"
    alive.mkdir()
    mine_tag = f"{os.getpid()}-{int(psutil.Process().create_time())}"
    (tmp_path / mine_tag).mkdir()
    (tmp_path / mine_tag / "counter_99.db").write_bytes(b"old run")

    path = prepare_multiprocess_dir(tmp_path)

    assert path == tmp_path / mine_tag and os.environ[MULTIPROC_ENV] == str(path)
    assert not list(path.glob("*.db"))
    assert not stale.exists()
    assert alive.exists()


def test_setup_process_keeps_an_exported_dir_and_stays_single_process_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "exported"
    monkeypatch.setenv(MULTIPROC_ENV, str(target))
    assert setup_process() == target and target.is_dir()
    monkeypatch.delenv(MULTIPROC_ENV)
    assert setup_process(tmp_path) is None  # pytest is not a Granian master
    assert MULTIPROC_ENV not in os.environ
    assert runtime_metrics.multiprocess_dir() is None


def test_setup_process_drops_live_gauges_of_crashed_workers_but_keeps_their_counters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    files = {
        "dead_gauge": tmp_path / f"gauge_livesum_{dead.pid}.db",
        "dead_counter": tmp_path / f"counter_{dead.pid}.db",
        "dead_max": tmp_path / f"gauge_max_{dead.pid}.db",  # not a live mode: kept
        "alive_gauge": tmp_path / f"gauge_liveall_{os.getpid()}.db",
    }
    for file in files.values():
        file.write_bytes(b"")
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    assert setup_process() == tmp_path
    assert {name for name, file in files.items() if file.exists()} == {
        "dead_counter",
        "dead_max",
        "alive_gauge",
    }
