"""In-process cost of one ``GET /api/v1/me`` through each RSGI app, no sockets.

``python -m benches.http.profile_inprocess [--calls 100000] [--repeat 7] [--profile]``

Builds ``revenge.app:app`` (nothing connects: the app is not started), puts one
session in its Rust cache and user directory as a login would, and drives
``__rsgi__`` with a fake scope and protocol; the bare floor (``ref_rsgi``) gets
the same scope. Prints the best of ``--repeat`` runs per call, which is what the
server pays in Python per request beyond Granian's own work.
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

TOKEN = secrets.token_urlsafe(32)


class FakeScope:
    """The attributes of Granian's ``Scope`` that the apps read."""

    __slots__ = ("client", "headers", "method", "path", "proto", "query_string", "scheme")

    def __init__(self, headers: dict[str, str]) -> None:
        self.proto = "http"
        self.method = "GET"
        self.path = "/api/v1/me"
        self.query_string = ""
        self.headers = headers
        self.client = "127.0.0.1:50000"
        self.scheme = "http"


class FakeProtocol:
    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status = 0

    def response_bytes(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status


RsgiApp = Callable[[Any, Any], Coroutine[Any, Any, None]]


def revenge_app() -> RsgiApp:
    os.environ.setdefault("REVENGE_DATABASE__URL", "postgresql://postgres@127.0.0.1/unused")
    from revenge.app import app
    from revenge.modules.auth.repository import Credential

    authenticator: Any = app.authenticator
    credential = Credential(
        user_id=1,
        username="admin",
        role="admin",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        expires_at=time.time() + 3600,
    )
    authenticator.remember(sha256(TOKEN.encode()).hexdigest(), credential)
    # As a started worker whose revocation listener is connected (unstarted, hits are misses).
    authenticator.trust_cache(True)
    return app.__rsgi__


def floor_app() -> RsgiApp:
    os.environ["BENCH_TOKEN"] = TOKEN
    from benches.http import ref_rsgi

    return ref_rsgi.app


async def per_call_us(app: RsgiApp, calls: int) -> float:
    scope = FakeScope({"authorization": f"Bearer {TOKEN}", "host": "x", "accept": "*/*"})
    protocol = FakeProtocol()
    await app(scope, protocol)
    assert protocol.status == 200, protocol.status
    # CPU time, not wall time: on a shared machine a descheduled moment is not our cost.
    started = time.process_time()
    for _ in range(calls):
        await app(scope, protocol)
    return (time.process_time() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the Revenge app")
    args = parser.parse_args()
    import uvloop

    apps = {"bare rsgi floor": floor_app(), "revenge": revenge_app()}
    loop = uvloop.new_event_loop()
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        loop.run_until_complete(per_call_us(apps["revenge"], args.calls))
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        return
    best = {
        name: min(loop.run_until_complete(per_call_us(app, args.calls)) for _ in range(args.repeat))
        for name, app in apps.items()
    }
    for name, us in best.items():
        print(
            f"{name:16s} {us:6.2f} us/call  (+{us - best['bare rsgi floor']:.2f} us over the floor)"
        )


if __name__ == "__main__":
    main()
