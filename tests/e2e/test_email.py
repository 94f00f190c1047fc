"""E-mail end to end: messages queued through ``queue_email`` (real PostgreSQL queue) are sent
by a real ``revenge worker`` to a real SMTP server (aiosmtpd) on this machine; the server
is stopped and started again mid-test. Each key is delivered exactly once."""

from __future__ import annotations

import asyncio
import email
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller

from revenge.config import load_settings
from revenge.infra.db import Database
from revenge.infra.jobs import Jobs, KindRegistry
from revenge.modules.email import EMAIL_SEND, queue_email
from revenge.runtime.errors import DomainError
from revenge.wiring import migrate
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e

DEADLINE = 90.0  # generous: a loaded machine; retries start 5 s apart


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _smtp(inbox: Inbox, port: int) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


@pytest.fixture
def worker(fresh_pg_url: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    asyncio.run(migrate(fresh_pg_url))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REVENGE_TEST_")},
        "REVENGE_DATABASE__URL": fresh_pg_url,
        "REVENGE_SERVER__DATA_DIR": str(tmp_path / "data"),
        "REVENGE_EMAIL__HOST": "127.0.0.1",
        "REVENGE_EMAIL__PORT": str(port),
        "REVENGE_EMAIL__SECURITY": "none",
        "REVENGE_EMAIL__SENDER": "Revenge <revenge@example.org>",
        "REVENGE_EMAIL__TIMEOUT": "5",
    }
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "revenge.cli", "worker"], stdout=log, stderr=log, env=env
    )
    try:
        yield fresh_pg_url, port
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _settings(port: int) -> Any:
    return load_settings(env={"REVENGE_EMAIL__HOST": "127.0.0.1", "REVENGE_EMAIL__PORT": str(port)})


async def _queue(url: str, port: int, keys: list[str], subject: str = "Hello") -> None:
    settings = _settings(port)
    async with Database(url) as db, Jobs.open(url, registry=KindRegistry((EMAIL_SEND,))) as jobs:
        for key in keys:
            await queue_email(
                db, jobs, settings, to=f"{key}@example.org", subject=subject, body=f"for {key}",
                key=key,
            )  # fmt: skip


def _wait(inbox: Inbox, count: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while len(inbox.messages) < count:
        assert time.monotonic() < deadline, f"{len(inbox.messages)} of {count} delivered"
        time.sleep(0.1)


def test_queued_messages_arrive_once_across_an_smtp_restart(worker: tuple[str, int]) -> None:
    url, port = worker
    inbox = Inbox()
    smtp = _smtp(inbox, port)
    try:
        first = [f"m{n}" for n in range(20)]
        asyncio.run(_queue(url, port, first))
        asyncio.run(_queue(url, port, first[:5]))  # the same keys again: nothing new
        _wait(inbox, 20)
    finally:
        smtp.stop()

    # The SMTP server is down: the jobs fail and wait, the outbox says why.
    later = [f"late{n}" for n in range(5)]
    asyncio.run(_queue(url, port, later))
    deadline = time.monotonic() + DEADLINE
    with psycopg.connect(url) as conn:
        while True:
            failed = conn.execute(
                "SELECT count(*) FROM email_outbox WHERE key LIKE 'late%%'"
                " AND sent_at IS NULL AND attempts >= 1 AND last_error IS NOT NULL"
            ).fetchone()
            if failed == (5,):
                break
            assert time.monotonic() < deadline, failed
            time.sleep(0.2)

    smtp = _smtp(inbox, port)  # back on the same port: the retries deliver
    try:
        _wait(inbox, 25)
        time.sleep(3)  # nothing more arrives late
    finally:
        smtp.stop()
    recipients = sorted(str(m["To"]) for m in inbox.messages)
    assert recipients == sorted(f"{k}@example.org" for k in first + later)  # once each
    assert len({m["Message-ID"] for m in inbox.messages}) == 25
    assert all(m["From"] == "Revenge <revenge@example.org>" for m in inbox.messages)
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM email_outbox WHERE sent_at IS NULL"
        ).fetchone() == (0,)


def test_header_injection_and_a_missing_server_are_refused_before_queueing(
    fresh_pg_url: str,
) -> None:
    asyncio.run(migrate(fresh_pg_url))
    with pytest.raises(ValueError, match="subject: CR/LF"):
        asyncio.run(_queue(fresh_pg_url, 25, ["x"], subject="Hi\r\nBcc: eve@example.org"))
    with pytest.raises(ValueError, match="not one plain e-mail address"):
        asyncio.run(_queue(fresh_pg_url, 25, ["a@b.org, eve"]))

    async def disabled() -> None:
        async with (
            Database(fresh_pg_url) as db,
            Jobs.open(fresh_pg_url, registry=KindRegistry((EMAIL_SEND,))) as jobs,
        ):
            await queue_email(
                db, jobs, load_settings(env={}), to="a@example.org", subject="s", body="b", key="k"
            )

    with pytest.raises(DomainError) as refused:
        asyncio.run(disabled())
    assert refused.value.code == "email_disabled"
    with psycopg.connect(fresh_pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM email_outbox").fetchone() == (0,)
