"""The cold ``email`` service: first use beyond the SMTP server's own cost, RSS after offload,
and the password-reset request's answer time for a known and an unknown address.

    python -m benches.bench_email [--rounds 40]

* **first use**: a fresh runtime's ``await runtime.lazy(MAILER).get()`` then one message,
  against a real SMTP server (aiosmtpd, in this process, on loopback), minus the same
  work done with aiosmtplib by hand (connect, EHLO, one message) in the same round: what
  the runtime and the mailer add (target < 20 ms). Rounds alternate the two; medians.
* **RSS**: the process's resident set before the first use, after 300 messages, and after
  the service is offloaded (and a garbage collection): back within 5 MB of before.
* **reset answer**: ``PasswordResets.request`` (what the route does) for addresses that
  belong to users and for addresses that do not, alternating, on a throw-away database:
  medians and their ratio (the same work: the answer must not tell them apart).

Raw numbers go to ``benches/results/email-<time>/``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import statistics
import time
import uuid
from typing import Any

import aiosmtplib
import psutil
import psycopg
from aiosmtpd.controller import Controller
from benches.record import RunRecord

from revenge.config import load_settings
from revenge.modules.email import MAILER, build_message, open_mailer
from revenge.runtime import Runtime

ADMIN_URL = os.environ.get("REVENGE_BENCH_DB_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


class Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def _message(n: int) -> Any:
    return build_message("r@example.org", "ann@example.org", "Bench", "body", f"bench-{n}")


async def _by_hand(port: int, n: int) -> float:
    started = time.perf_counter()
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
    await smtp.connect()
    await smtp.send_message(_message(n))
    elapsed = time.perf_counter() - started
    await smtp.quit()
    return elapsed


async def _first_use(settings: Any, n: int) -> float:
    runtime = Runtime(metrics=None)
    runtime.provide(MAILER, lambda: open_mailer(settings), close=lambda m: m.close())
    async with runtime:
        started = time.perf_counter()
        mailer = await runtime.lazy(MAILER).get()
        await mailer.send(_message(n))
        elapsed = time.perf_counter() - started
    return elapsed


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


async def _rss_rounds(settings: Any) -> tuple[int, int, int]:
    runtime = Runtime(metrics=None)
    runtime.provide(MAILER, lambda: open_mailer(settings), close=lambda m: m.close())
    async with runtime:
        gc.collect()
        before = _rss()
        lazy = runtime.lazy(MAILER)
        mailer = await lazy.get()
        for n in range(300):
            await mailer.send(_message(n))
        busy = _rss()
        del mailer
        await lazy.offload("idle")
        gc.collect()
        after = _rss()
    return before, busy, after


async def _reset_rounds(rounds: int) -> tuple[list[float], list[float]]:
    from revenge.infra.db import Database
    from revenge.infra.jobs import Jobs, KindRegistry
    from revenge.modules.auth import repository as repo
    from revenge.modules.auth.reset import PASSWORD_RESET_MAIL, PasswordResets
    from revenge.modules.auth.service import AuthService
    from revenge.wiring import migrate

    name = f"revenge_bench_email_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    settings = load_settings(env={"REVENGE_EMAIL__HOST": "127.0.0.1"})
    try:
        await migrate(url)
        registry = KindRegistry((PASSWORD_RESET_MAIL,))
        async with Database(url) as db, Jobs.open(url, registry=registry) as jobs:
            async with db.transaction() as conn:
                for n in range(rounds):
                    user = await repo.insert_user(conn, f"u{n}", f"u{n}", "x", "user")
                    await repo.set_email(conn, user.id, f"known{n}@example.org")
            auth: Any = AuthService.__new__(AuthService)
            auth.db = db
            resets = PasswordResets(auth, settings.email)
            known: list[float] = []
            unknown: list[float] = []
            for n in range(rounds):
                pair = [(f"known{n}@example.org", known), (f"nobody{n}@x.org", unknown)]
                for address, out in pair if n % 2 else pair[::-1]:  # neither always first
                    started = time.perf_counter()
                    await resets.request(jobs, address, f"10.{n // 250}.{n % 250}.{len(out) % 2}")
                    out.append(time.perf_counter() - started)
        return known, unknown
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    record = RunRecord("email")
    record.header()
    with socket.socket() as probe:  # a free port (aiosmtpd's controller needs one named)
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    inbox = Controller(Sink(), hostname="127.0.0.1", port=port)
    inbox.start()
    settings = load_settings(
        env={
            "REVENGE_EMAIL__HOST": "127.0.0.1",
            "REVENGE_EMAIL__PORT": str(port),
            "REVENGE_EMAIL__SECURITY": "none",
        }
    ).email
    try:
        hand: list[float] = []
        cold: list[float] = []
        asyncio.run(_first_use(settings, -1))  # warm the interpreter's caches once
        for n in range(args.rounds):
            hand.append(asyncio.run(_by_hand(port, n)))
            cold.append(asyncio.run(_first_use(settings, n)))
            record.round(round=n, by_hand_s=hand[-1], first_use_s=cold[-1])
        before, busy, after = asyncio.run(_rss_rounds(settings))
    finally:
        inbox.stop()
    known, unknown = asyncio.run(_reset_rounds(args.rounds))
    for n, (k, u) in enumerate(zip(known, unknown, strict=True)):
        record.round(round=n, reset_known_s=k, reset_unknown_s=u)
    med = statistics.median
    overhead_ms = (med(cold) - med(hand)) * 1000
    rss_delta_mb = (after - before) / 2**20
    ratio = med(known) / med(unknown)
    record.print(f"first use of the cold e-mail service, {args.rounds} rounds (medians):\n")
    record.print("| path | median ms | p90 ms |")
    record.print("|---|---:|---:|")
    for label, values in (("aiosmtplib by hand (floor)", hand), ("lazy.get() + send", cold)):
        p90 = statistics.quantiles(values, n=10)[-1] * 1000
        record.print(f"| {label} | {med(values) * 1000:.2f} | {p90:.2f} |")
    record.print(f"\nfirst use beyond the SMTP server's own cost: {overhead_ms:.2f} ms")
    record.print(
        f"RSS: {before / 2**20:.1f} MB before, {busy / 2**20:.1f} MB after 300 messages, "
        f"{after / 2**20:.1f} MB after offload ({rss_delta_mb:+.2f} MB)"
    )
    record.print(
        f"reset request: known address {med(known) * 1000:.2f} ms, unknown "
        f"{med(unknown) * 1000:.2f} ms (ratio {ratio:.2f})"
    )
    verdicts = {
        "first use < 20 ms beyond the server": "met" if overhead_ms < 20 else "not met",
        "RSS within 5 MB after offload": "met" if abs(rss_delta_mb) <= 5 else "not met",
        "reset answer the same time (0.8-1.25)": "met" if 0.8 <= ratio <= 1.25 else "not met",
    }
    record.print("\ntargets:")
    for target, verdict in verdicts.items():
        record.print(f"- {target}: {verdict}")
    record.finish(
        {
            **verdicts,
            "first_use_overhead_ms": round(overhead_ms, 3),
            "rss_delta_mb": round(rss_delta_mb, 3),
            "reset_ratio": round(ratio, 3),
        }
    )


if __name__ == "__main__":
    main()
