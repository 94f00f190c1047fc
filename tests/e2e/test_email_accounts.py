"""E-mail through a real ``revenge serve`` (its in-process job worker) and a real SMTP server
(aiosmtpd): the cold ``email`` service's life on ``/health`` (cold, ready, offloaded, degraded
while the server is down, disabled when not configured), addresses on users, password reset
by e-mail, and the invitation e-mail."""

from __future__ import annotations

import asyncio
import email
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from revenge.wiring import migrate
from tests.cheap_settings import FAST_ARGON2
from tests.e2e.conftest import Server, free_port, run_server, serve_argv

pytestmark = pytest.mark.e2e

PASSWORD = "admin-password-1"
NEW_PASSWORD = "a-brand-new-password"
DEADLINE = 60.0


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def wait_for(self, to: str, subject: str) -> email.message.Message:
        deadline = time.monotonic() + DEADLINE
        while True:
            with self.lock:
                for message in self.messages:
                    if message["To"] == to and subject in str(message["Subject"]):
                        return message
            assert time.monotonic() < deadline, f"no {subject!r} for {to}"
            time.sleep(0.05)

    def to(self, address: str) -> list[email.message.Message]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]


def _env(url: str, smtp_port: int | None, data: Path) -> dict[str, str]:
    env = {
        "REVENGE_DATABASE__URL": url,
        "REVENGE_SERVER__DATA_DIR": str(data),
        "REVENGE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        **FAST_ARGON2,
        "REVENGE_HEALTH__PUBLIC": "true",
        "REVENGE_HEALTH__INTERVAL": "0.3s",
        "REVENGE_METRICS__PUBLIC": "true",
        "REVENGE_OFFLOAD__IDLE_TTL": "3s",
        "REVENGE_OFFLOAD__SWEEP_INTERVAL": "0.3s",
    }
    if smtp_port is not None:
        env |= {
            "REVENGE_EMAIL__HOST": "127.0.0.1",
            "REVENGE_EMAIL__PORT": str(smtp_port),
            "REVENGE_EMAIL__SECURITY": "none",
            "REVENGE_EMAIL__TIMEOUT": "3",
            "REVENGE_EMAIL__BASE_URL": "https://media.example.org",
        }
    return env


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int, list[Controller]]]:
    inbox, port = Inbox(), free_port()
    controllers = [Controller(inbox, hostname="127.0.0.1", port=port)]
    controllers[0].start()
    try:
        yield inbox, port, controllers
    finally:
        controllers[-1].stop()


def _email_health(server: Server) -> dict[str, Any]:
    reply = httpx.get(server.base_url + "/health", timeout=10)
    assert reply.status_code == 200, reply.text  # degraded or not: never a 500
    return dict(reply.json()["services"]["email"])


def _wait_health(server: Server, test: Callable[[dict[str, Any]], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not test(entry := _email_health(server)):
        assert time.monotonic() < deadline, f"{what}: {entry}"
        time.sleep(0.1)


def _login(server: Server, username: str, password: str) -> httpx.Response:
    return httpx.post(
        server.base_url + "/api/v1/auth/login",
        json={"username": username, "password": password},
        timeout=30,
    )


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _token_in(message: email.message.Message) -> str:
    text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    found = re.search(r"#/(?:reset-password|invitation)/([A-Za-z0-9_-]{20,})", text)
    assert found, text
    return found.group(1)


def test_reset_invitations_addresses_and_the_cold_service(
    fresh_pg_url: str, tmp_path: Path, smtp: tuple[Inbox, int, list[Controller]]
) -> None:
    inbox, smtp_port, controllers = smtp
    asyncio.run(migrate(fresh_pg_url))
    port = free_port()
    argv = serve_argv(port)
    with run_server(
        argv,
        port,
        tmp_path,
        _env(fresh_pg_url, smtp_port, tmp_path / "data"),
        "/health/ready",
    ) as srv:
        base = srv.base_url
        # Cold after start: nothing connected.
        _wait_health(srv, lambda e: e["state"] == "cold" and not e["initialized"], "cold")
        admin = _login(srv, "admin", PASSWORD).json()["token"]

        # Addresses: normalised, unique regardless of case, refused when malformed.
        made = httpx.post(
            base + "/api/v1/users",
            json={"username": "ann", "password": PASSWORD},
            headers=_bearer(admin),
            timeout=30,
        ).json()
        put = httpx.put(
            base + f"/api/v1/users/{made['id']}/email",
            json={"email": "  Ann.Lee@Example.ORG "},
            headers=_bearer(admin),
            timeout=30,
        )
        assert put.status_code == 200 and put.json()["email"] == "Ann.Lee@example.org", put.text
        for bad, status, code in [
            ("ann.lee@EXAMPLE.org", 409, "email_taken"),
            ("eve@example.org\r\nBcc: x@example.org", 422, "validation_failed"),
            ("not an address", 422, "validation_failed"),
        ]:
            reply = httpx.put(
                base + "/api/v1/me/email",
                json={"email": bad, "current_password": PASSWORD},
                headers=_bearer(admin),
                timeout=30,
            )
            assert reply.status_code == status and reply.json()["code"] == code, reply.text
        wrong = httpx.put(
            base + "/api/v1/me/email",
            json={"email": "boss@example.org", "current_password": "not-the-password"},
            headers=_bearer(admin),
            timeout=30,
        )
        assert wrong.status_code == 403, wrong.text
        mine = httpx.put(
            base + "/api/v1/me/email",
            json={"email": "Boss@Example.org", "current_password": PASSWORD},
            headers=_bearer(admin),
            timeout=30,
        )
        assert mine.json() == {"email": "Boss@example.org"}, mine.text

        # Password reset: the same answer for a known and an unknown address.
        ann_session = _login(srv, "ann", PASSWORD).json()["token"]
        answers = [
            httpx.post(base + "/api/v1/auth/password-reset", json={"email": a}, timeout=30)
            for a in ("ann.lee@example.org", "nobody@example.org")
        ]
        assert [a.status_code for a in answers] == [202, 202]
        assert answers[0].content == answers[1].content
        mail = inbox.wait_for("Ann.Lee@example.org", "Reset your Revenge password")
        _wait_health(srv, lambda e: e["state"] == "ready" and e["initialized"], "ready")
        token = _token_in(mail)
        assert mail["Message-ID"].endswith("@revenge.invalid>")
        confirm = base + "/api/v1/auth/password-reset/confirm"
        short = httpx.post(confirm, json={"token": token, "password": "short"}, timeout=30)
        assert short.status_code == 422  # and the token is not spent
        done = httpx.post(confirm, json={"token": token, "password": NEW_PASSWORD}, timeout=30)
        assert done.status_code == 204, done.text
        again = httpx.post(confirm, json={"token": token, "password": NEW_PASSWORD}, timeout=30)
        assert again.status_code == 410 and again.json()["code"] == "reset_used"
        unknown = httpx.post(
            confirm, json={"token": "x" * 43, "password": NEW_PASSWORD}, timeout=30
        )
        assert unknown.status_code == 404 and unknown.json()["code"] == "reset_not_found"
        me = httpx.get(base + "/api/v1/me", headers=_bearer(ann_session), timeout=30)
        assert me.status_code == 401  # the reset ended ann's sessions
        assert _login(srv, "ann", PASSWORD).status_code == 401
        assert _login(srv, "ann", NEW_PASSWORD).status_code == 200
        assert inbox.to("nobody@example.org") == []

        # Throttled per address: a few requests, then 429 with Retry-After.
        statuses = [
            httpx.post(
                base + "/api/v1/auth/password-reset",
                json={"email": "flood@example.org"},
                timeout=30,
            )
            for _ in range(5)
        ]
        assert statuses[-1].status_code == 429, [s.status_code for s in statuses]
        assert statuses[-1].json()["code"] == "too_many_attempts"
        assert "retry-after" in statuses[-1].headers

        # Invitation by e-mail: the new account keeps the address.
        invited = httpx.post(
            base + "/api/v1/invitations",
            json={"email": "Guest@Example.org"},
            headers=_bearer(admin),
            timeout=30,
        )
        assert invited.status_code == 201 and invited.json()["email"] == "Guest@example.org"
        invitation = inbox.wait_for("Guest@example.org", "You are invited")
        accepted = httpx.post(
            base + "/api/v1/invitations/accept",
            json={"token": _token_in(invitation), "username": "guest", "password": PASSWORD},
            timeout=30,
        )
        assert accepted.status_code == 200, accepted.text
        users = httpx.get(base + "/api/v1/users", headers=_bearer(admin), timeout=30).json()
        assert {u["username"]: u["email"] for u in users["users"]}["guest"] == "Guest@example.org"
        taken = httpx.post(
            base + "/api/v1/invitations",
            json={"email": "guest@example.org"},
            headers=_bearer(admin),
            timeout=30,
        )
        assert taken.status_code == 409 and taken.json()["code"] == "email_taken"

        # Idle for offload.idle_ttl: offloaded, its connection closed.
        _wait_health(srv, lambda e: e["state"] == "offloaded" and not e["initialized"], "offload")
        metrics = httpx.get(base + "/metrics", timeout=10).text
        count = re.search(r'revenge_lazy_init_seconds_count\{service="email"\} (\S+)', metrics)
        assert count and float(count.group(1)) >= 1, [
            line for line in metrics.splitlines() if "lazy_init" in line or "email" in line
        ]

        # The SMTP server goes down: the next use fails, /health says degraded (not 500),
        # the message waits; the server comes back and the message arrives.
        controllers[-1].stop()
        httpx.post(
            base + "/api/v1/auth/password-reset", json={"email": "boss@example.org"}, timeout=30
        )
        _wait_health(srv, lambda e: e["state"] == "degraded" and not e["healthy"], "degraded")
        assert httpx.get(base + "/health", timeout=10).json()["status"] == "degraded"
        assert _login(srv, "admin", PASSWORD).status_code == 200  # the rest works
        controllers.append(Controller(inbox, hostname="127.0.0.1", port=smtp_port))
        controllers[-1].start()
        inbox.wait_for("Boss@example.org", "Reset your Revenge password")
        _wait_health(srv, lambda e: e["state"] == "ready" and e["healthy"], "ready again")


def test_without_an_smtp_server_email_is_disabled_and_refused_clearly(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    asyncio.run(migrate(fresh_pg_url))
    port = free_port()
    argv = serve_argv(port)
    with run_server(
        argv, port, tmp_path, _env(fresh_pg_url, None, tmp_path / "data"), "/health/ready"
    ) as srv:
        _wait_health(srv, lambda e: e["state"] == "disabled" and e["healthy"], "disabled")
        reply = httpx.post(
            srv.base_url + "/api/v1/auth/password-reset",
            json={"email": "ann@example.org"},
            timeout=30,
        )
        assert reply.status_code == 409 and reply.json()["code"] == "email_disabled"
        admin = _login(srv, "admin", PASSWORD).json()["token"]
        invite = httpx.post(
            srv.base_url + "/api/v1/invitations",
            json={"email": "guest@example.org"},
            headers=_bearer(admin),
            timeout=30,
        )
        assert invite.status_code == 409 and invite.json()["code"] == "email_disabled"
        plain = httpx.post(
            srv.base_url + "/api/v1/invitations", json={}, headers=_bearer(admin), timeout=30
        )
        assert plain.status_code == 201  # invitations without e-mail work as before
