"""In-process cost of ``GET /api/v1/me`` (run: ``pytest benches/bench_http_inprocess.py --benchmark-only``).

What the worker pays in Python per request beyond Granian's own work, with no
sockets: ``revenge.app``'s RSGI face (router, ``Request``, the auth hit path
through the Rust session cache, the ``/me`` handler, ``Response``) against the
bare floor ``benches.http.ref_rsgi`` (header, SHA-256, dict, ready body), fed the
same stand-in scope in the same run. The app is built, not started: one session
is put in its cache as a login would.

The stand-in scope holds plain attributes; Granian's are Rust getters building a
new ``str`` per read (``client`` ~0.3 us, ``headers`` ~0.2 us), which the RSGI
request reads only when used, so the real gap is this one plus a little.
Each round runs ``OPS`` requests in one coroutine on uvloop; per-request figures
are round time / ``OPS``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

# The repository root, so ``benches.http`` imports however pytest was started.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benches.http.profile_inprocess import (
    TOKEN,
    FakeProtocol,
    FakeScope,
    RsgiApp,
    floor_app,
    revenge_app,
)

OPS = 10_000


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = uvloop.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def apps() -> dict[str, RsgiApp]:
    return {"floor": floor_app(), "revenge": revenge_app()}


def _rounds(loop: asyncio.AbstractEventLoop, app: RsgiApp) -> Callable[[], int]:
    scope = FakeScope({"authorization": f"Bearer {TOKEN}", "host": "x", "accept": "*/*"})
    protocol = FakeProtocol()

    async def many() -> int:
        for _ in range(OPS):
            await app(scope, protocol)
        return protocol.status

    return lambda: loop.run_until_complete(many())


@pytest.mark.parametrize("name", ["floor", "revenge"])
def test_me_in_process(
    benchmark: Any, loop: asyncio.AbstractEventLoop, apps: dict[str, RsgiApp], name: str
) -> None:
    benchmark.group = f"GET /api/v1/me in process, {OPS} requests per round"
    status = benchmark.pedantic(_rounds(loop, apps[name]), rounds=15, warmup_rounds=2)
    assert status == 200
