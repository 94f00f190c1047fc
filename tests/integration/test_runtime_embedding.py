"""The docs/embedding.md example runs: in process (ASGI) and under ``granian --workers 2``."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import orjson
import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "embedding.md"


def example_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/embedding.md must hold exactly one python block"
    return str(blocks[0])


def load_example(tmp_path: Path) -> ModuleType:
    path = tmp_path / "embedding_example.py"
    path.write_text(example_source())
    spec = importlib.util.spec_from_file_location("embedding_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Lifespan:
    """Drives an ASGI app's lifespan scope (httpx's ASGITransport does not)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        self.task = asyncio.create_task(
            self.app({"type": "lifespan"}, self.inbox.get, self.outbox.put)
        )
        await self.inbox.put({"type": "lifespan.startup"})
        assert (await self.outbox.get())["type"] == "lifespan.startup.complete"

    async def __aexit__(self, *exc: object) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        assert (await self.outbox.get())["type"] == "lifespan.shutdown.complete"
        assert self.task is not None
        await self.task


async def test_example_runs_in_process(tmp_path: Path) -> None:
    example = load_example(tmp_path)
    transport = httpx.ASGITransport(app=example.app)
    async with (
        Lifespan(example.app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        health = (await client.get("/health")).json()
        assert health["status"] == "healthy"
        assert health["services"]["mailer"]["initialized"] is False
        assert (await client.get("/")).json() == {"sent": 1}
        assert (await client.get("/")).json() == {"sent": 2}
        await example.runtime.health.refresh()
        health = (await client.get("/health")).json()
        assert health["services"]["mailer"]["initialized"] is True
        scrape = await client.get("/metrics")
        assert scrape.headers["content-type"].startswith("text/plain")
        assert 'revenge_lazy_init_total{outcome="success",service="mailer"}' in scrape.text
    assert not example.runtime.running


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def sample(text: str, name: str, **labels: str) -> list[float]:
    out = []
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            out.append(float(line.rsplit(" ", 1)[1]))
    return out


@pytest.mark.e2e
def test_example_under_granian_with_two_workers_scrapes_the_whole_group(tmp_path: Path) -> None:
    (tmp_path / "example.py").write_text(example_source())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["TMPDIR"] = str(tmp_path)
    env["PYTHONPATH"] = str(tmp_path)
    log = (tmp_path / "granian.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--workers", "2",
         "--host", "127.0.0.1", "--port", str(port), "example:app"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        pids: set[str] = set()
        while len(pids) < 2:
            assert server.poll() is None, (tmp_path / "granian.log").read_text()
            assert time.monotonic() < deadline, "both workers never showed up in one scrape"
            try:
                _, body = fetch(f"{base}/metrics")
            except OSError:
                time.sleep(0.1)
                continue
            pids = set(re.findall(r'revenge_worker_up\{pid="(\d+)"\} 1\.0', body.decode()))
        status, body = fetch(f"{base}/health")
        report = orjson.loads(body)
        assert status == 200 and report["services"]["mailer"]["category"] == "cold"
        first_uses = 0
        for _ in range(30):
            first_uses += orjson.loads(fetch(f"{base}/")[1])["sent"] == 1
        text = fetch(f"{base}/metrics")[1].decode()
        inits = sample(text, "revenge_lazy_init_total", service="mailer", outcome="success")
        # Each worker that served "/" built its own mailer once; one scrape counts them all.
        assert inits == [float(first_uses)]
        assert sum(sample(text, "revenge_service_initialized", service="mailer")) == first_uses
        metric_dirs = list((tmp_path / "revenge-metrics").iterdir())
        assert len(metric_dirs) == 1 and any(metric_dirs[0].glob("*.db"))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
