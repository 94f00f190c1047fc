"""The issue's check: 1,000 queued messages reach a real SMTP server (aiosmtpd) with none lost
across a restart of the SMTP server and a SIGKILL of the ``revenge worker`` mid-batch.

Delivery is at least once (see ``revenge.modules.email.outbox``): a worker killed after the
server took a message and before ``sent_at`` was committed sends it again with the same
Message-ID. So the test asserts: every one of the 1,000 Message-IDs arrived, nothing is left
unsent, and every extra copy is one the outbox counted as uncertain (a duplicate is never
silent). It prints the numbers (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import email
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller

from revenge.config import load_settings
from revenge.infra.db import Database
from revenge.infra.jobs import Jobs, KindRegistry
from revenge.modules.email import EMAIL_SEND, write_message
from revenge.wiring import migrate
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e

COUNT = 1000
DEADLINE = 120.0


class Inbox:
    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content)
        with self.lock:
            self.ids[str(message["Message-ID"])] += 1
        return "250 OK"

    def distinct(self) -> int:
        with self.lock:
            return len(self.ids)

    def total(self) -> int:
        with self.lock:
            return sum(self.ids.values())


def _worker(url: str, port: int, tmp_path: Path, n: int) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REVENGE_TEST_")},
        "REVENGE_DATABASE__URL": url,
        "REVENGE_SERVER__DATA_DIR": str(tmp_path / "data"),
        "REVENGE_EMAIL__HOST": "127.0.0.1",
        "REVENGE_EMAIL__PORT": str(port),
        "REVENGE_EMAIL__SECURITY": "none",
        "REVENGE_EMAIL__TIMEOUT": "5",
        # a killed worker's claimed jobs are taken over after this (default 5 min)
        "REVENGE_JOBS__STALLED_AFTER": "3s",
    }
    log = (tmp_path / f"worker{n}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "revenge.cli", "worker"], stdout=log, stderr=log, env=env
    )


async def _queue_all(url: str, port: int, keys: list[str]) -> None:
    settings = load_settings(
        env={"REVENGE_EMAIL__HOST": "127.0.0.1", "REVENGE_EMAIL__PORT": str(port)}
    ).email
    async with Database(url) as db, Jobs.open(url, registry=KindRegistry((EMAIL_SEND,))) as jobs:
        async with db.transaction() as conn:
            for key in keys:
                await write_message(
                    conn, settings, to=f"{key}@example.org", subject=key, body=key, key=key
                )
        await jobs.enqueue_many(EMAIL_SEND.name, [{"key": k} for k in keys], keys=keys)


def _wait(what: str, predicate: Any, inbox: Inbox) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: {inbox.distinct()} of {COUNT} delivered"
        time.sleep(0.05)


def test_a_thousand_messages_survive_an_smtp_restart_and_a_sigkilled_worker(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    url = fresh_pg_url
    asyncio.run(migrate(url))
    port = free_port()
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    keys = [f"bulk{n:04d}" for n in range(COUNT)]
    asyncio.run(_queue_all(url, port, keys))
    started = time.monotonic()
    first = _worker(url, port, tmp_path, 1)
    second = None
    try:
        _wait("first quarter", lambda: inbox.distinct() >= COUNT // 4, inbox)
        smtp.stop()  # the SMTP server goes away mid-batch ...
        time.sleep(1.0)
        smtp = Controller(inbox, hostname="127.0.0.1", port=port)
        smtp.start()  # ... and comes back on the same port
        _wait("half", lambda: inbox.distinct() >= COUNT // 2, inbox)
        first.send_signal(signal.SIGKILL)  # the worker dies mid-batch, jobs claimed
        first.wait(10)
        killed_at = inbox.distinct()
        second = _worker(url, port, tmp_path, 2)
        _wait("all", lambda: inbox.distinct() >= COUNT, inbox)
        with psycopg.connect(url) as conn:
            deadline = time.monotonic() + DEADLINE
            while True:
                unsent = conn.execute(
                    "SELECT count(*) FROM email_outbox WHERE sent_at IS NULL"
                ).fetchone()
                if unsent == (0,):
                    break
                assert time.monotonic() < deadline, f"{unsent} never marked sent"
                time.sleep(0.1)
            row = conn.execute("SELECT coalesce(sum(uncertain), 0) FROM email_outbox").fetchone()
        time.sleep(2.0)  # nothing more arrives late
        elapsed = time.monotonic() - started
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
        smtp.stop()
    assert row is not None
    uncertain = int(row[0])
    duplicates = inbox.total() - inbox.distinct()
    print(
        f"\n{COUNT} queued: {inbox.distinct()} distinct delivered, {COUNT - inbox.distinct()} "
        f"lost, {duplicates} duplicated ({uncertain} counted uncertain); worker killed at "
        f"{killed_at}; {elapsed:.1f} s"
    )
    assert inbox.distinct() == COUNT  # none lost (the Message-IDs are the keys')
    assert duplicates <= uncertain  # every extra copy was one the outbox knew might be sent
