"""configs/grafana-dashboard.json queries only metrics that ``/metrics`` really exports.

A real server (Granian, real PostgreSQL) is scraped; every ``revenge_*`` name in every
panel's query must be one of the families it exposes (with the suffix its type gives:
``_total`` for counters, ``_bucket``/``_sum``/``_count`` for histograms).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from revenge.wiring import migrate
from tests.conftest import _drop_database, _fresh_database
from tests.e2e.conftest import free_port, granian_argv, run_server

PASSWORD = "dashboard admin password"

pytestmark = pytest.mark.e2e

DASHBOARD = Path(__file__).parents[2] / "configs" / "grafana-dashboard.json"
NAME = re.compile(r"\brevenge_[a-z0-9_]+\b")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def queries(dashboard: dict[str, object]) -> list[tuple[str, str]]:
    found = []
    stack = list(dashboard.get("panels", []))  # type: ignore[call-overload]
    while stack:
        panel = stack.pop()
        stack.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):  # type: ignore[attr-defined]
        if variable.get("type") == "query":
            found.append((f"variable {variable['name']}", variable["query"]))
    return found


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """The families a server exports once it has run a job (job metrics appear then)."""
    name, url = _fresh_database("revenge_dash")
    tmp = tmp_path_factory.mktemp("dashboard")
    media = tmp / "media"
    media.mkdir()
    (media / "Clip (2001).mkv").write_bytes(b"not really a video")
    port = free_port()
    env = {
        "REVENGE_DATABASE__URL": url,
        "REVENGE_METRICS__PUBLIC": "true",
        "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        "REVENGE_SERVER__DATA_DIR": str(tmp / "data"),
    }
    try:
        asyncio.run(migrate(url))
        with (
            run_server(granian_argv(port), port, tmp, env) as server,
            httpx.Client(base_url=server.base_url, timeout=30) as client,
        ):
            token = client.post(
                "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
            ).json()["token"]
            auth = {"authorization": f"Bearer {token}"}
            library = client.post(
                "/api/v1/libraries",
                json={"name": "Films", "kind": "movies", "roots": [str(media)]},
                headers=auth,
            ).json()
            job = client.post(f"/api/v1/libraries/{library['id']}/scan", headers=auth).json()
            deadline = time.monotonic() + 120  # a hang guard, not a timing
            while client.get(f"/api/v1/jobs/{job['job_id']}", headers=auth).json()["state"] in (
                "queued", "running", "scheduled",
            ):  # fmt: skip
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.2)
            text = client.get("/metrics").text
    finally:
        _drop_database(name)
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        # the parser strips a counter's _total; the series carry the exposed names
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    yield names


def test_every_dashboard_query_names_exported_metrics(exported: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    found = queries(dashboard)
    assert len(found) >= 20, "the dashboard lost its panels"
    named = sorted({(title, name) for title, expr in found for name in NAME.findall(expr)})
    missing = [(title, name) for title, name in named if name not in exported]
    assert missing == [], f"not exported by /metrics: {missing}"


def test_the_dashboard_shows_the_runtime_view() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    text = " ".join(expr for _title, expr in queries(dashboard))
    for needed in (
        "revenge_service_initialized",  # cold services built or offloaded
        "revenge_lazy_init_seconds_bucket",  # spin-up time
        "revenge_offload_total",
        "revenge_memory_used_bytes",
        "revenge_memory_budget_bytes",
        "revenge_memory_pressure_ratio",
        "revenge_pool_active_connections",
        "revenge_session_cache_bytes",
        "revenge_transcode_cache_budget_bytes",
        "revenge_jobs_queue_depth",
    ):
        assert needed in text, needed
    for _title, expr in queries(dashboard):
        assert expr.count("(") == expr.count(")"), expr
    uids = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    assert uids == {"${datasource}"}, "panels use the dashboard's data-source variable"
