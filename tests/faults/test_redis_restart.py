"""Redis killed (SIGKILL) and started again under load: not one request fails.

Redis is optional to Revenge (the cache degrades to in-process, revocations still
travel by PostgreSQL NOTIFY), so its loss must be invisible to clients. A private
redis-server on a free port (the machine's on 6379 is shared and never touched)
serves two Granian workers; client threads sign in and out (a logout publishes its
revocation on Redis), read ``/me``, the session list and search while Redis is
killed, stays away for a while, and comes back on the same port.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port, granian_argv, run_server
from tests.faults.support import PASSWORD, Load, app_env, bearer, login, summary
from tests.integration._redis_server import RedisServer

pytestmark = pytest.mark.e2e


def _sign_in_and_out(client: httpx.Client) -> httpx.Response:
    reply = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
    if reply.status_code != 200:
        return reply
    return client.post("/api/v1/auth/logout", headers=bearer(reply.json()["token"]))


def test_redis_killed_and_restarted_under_load(tmp_path: Path, fresh_pg_url: str) -> None:
    redis_server = RedisServer()
    redis_server.start()
    try:
        port = free_port()
        env = app_env(fresh_pg_url, REVENGE_CACHE__URL=redis_server.url)
        argv = granian_argv(port, "--workers", "2")
        with run_server(argv, port, tmp_path, env) as server:
            auth = bearer(login(server.base_url))
            routes = {
                "me": lambda c: c.get("/api/v1/me", headers=auth),
                "sessions": lambda c: c.get("/api/v1/auth/sessions", headers=auth),
                "search": lambda c: c.get("/api/v1/search", params={"q": "matrix"}, headers=auth),
                "login+logout": _sign_in_and_out,
            }
            with Load(server.base_url, routes, threads=4, limit=60, pause=0.01) as load:
                time.sleep(1.0)
                killed = load.elapsed()
                redis_server.kill()
                time.sleep(1.5)
                redis_server.start()  # same port
                back = load.elapsed()
                time.sleep(1.5)
            answers = load.snapshot()
        print(f"\nRedis killed at {killed:.2f}s, back at {back:.2f}s\n{summary(answers)}")
        assert {a.route for a in answers} == set(routes)
        during = [a for a in answers if killed <= a.at <= back]
        assert during, "no request was sent while Redis was away"
        failed = [a for a in answers if a.status not in (200, 204)]
        assert not failed, failed[:5]
    finally:
        redis_server.kill()
