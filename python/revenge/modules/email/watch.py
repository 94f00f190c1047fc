"""``email_watch`` (each minute): unsent messages queued again, failing job kinds reported.

Job failures are read where the queue records them: pgqueuer's log, a row per job
state change, ``failed`` being a job that ran out of retries (held) and ``successful``
a job that finished. The watch reads the log forward from its cursor, keeps per kind
the streak of failures since the kind last succeeded, and when a streak reaches
``email.alert_after`` e-mails every administrator that has an address, once per streak
(the alert's key names the log row that began the streak). A success ends the streak.

Rows younger than a few seconds are left for the next run: the log is written by many
workers, and a row committed late under a smaller id would otherwise be skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from revenge.config import Settings
from revenge.infra.db import Database
from revenge.infra.jobs import Jobs
from revenge.modules.email.keys import EMAIL_SEND, EMAIL_WATCH
from revenge.modules.email.outbox import Conn, queue_written, write_message

log = logging.getLogger(__name__)

_SETTLE = 3.0
"""Seconds a log row must be old before the watch reads it."""
_QUIET = frozenset({EMAIL_SEND.name, EMAIL_WATCH.name})
"""Kinds never reported by e-mail: mail about mail failing would not arrive either."""


@dataclass(slots=True)
class Streak:
    streak: int
    started_log_id: int
    last_error: str | None
    alerted: bool


async def _load(conn: Conn) -> dict[str, Streak]:
    cur = await conn.execute(
        "SELECT kind, streak, started_log_id, last_error, alerted FROM job_failure_streaks"
    )
    return {str(r[0]): Streak(int(r[1]), int(r[2]), r[3], bool(r[4])) for r in await cur.fetchall()}


async def advance(conn: Conn) -> tuple[dict[str, Streak], set[str]]:
    """Read the log from the cursor on; the streaks after it and the kinds whose streak
    changed (the caller stores them). The first run starts at the log's end."""
    cur = await conn.execute("SELECT log_id FROM job_failure_cursor FOR UPDATE")
    row = await cur.fetchone()
    cur = await conn.execute(
        "SELECT coalesce(max(id), 0) FROM pgqueuer_log"
        " WHERE created < now() - make_interval(secs => %s)",
        (_SETTLE,),
    )
    upto = int((await cur.fetchone() or (0,))[0])
    if row is None:
        await conn.execute("INSERT INTO job_failure_cursor (log_id) VALUES (%s)", (upto,))
        return await _load(conn), set()
    start = int(row[0])
    streaks = await _load(conn)
    changed: set[str] = set()
    if upto <= start:
        return streaks, changed
    cur = await conn.execute(
        "SELECT id, entrypoint, status::text, traceback->>'exception_type',"
        " traceback->>'exception_message' FROM pgqueuer_log"
        " WHERE id > %s AND id <= %s AND status IN ('successful', 'failed') ORDER BY id",
        (start, upto),
    )
    for log_id, kind, status, error_type, error in await cur.fetchall():
        if kind in _QUIET:
            continue
        changed.add(kind)
        if status == "successful":
            streaks.pop(kind, None)
            continue
        text = f"{error_type}: {error}" if error else error_type
        found = streaks.get(kind)
        if found is None:
            streaks[kind] = Streak(1, int(log_id), text, False)
        else:
            found.streak += 1
            found.last_error = text
    await conn.execute("UPDATE job_failure_cursor SET log_id = %s", (upto,))
    return streaks, changed


async def store(conn: Conn, streaks: dict[str, Streak], changed: set[str]) -> None:
    for kind in changed:
        s = streaks.get(kind)
        if s is None:
            await conn.execute("DELETE FROM job_failure_streaks WHERE kind = %s", (kind,))
            continue
        await conn.execute(
            "INSERT INTO job_failure_streaks (kind, streak, started_log_id, last_error, alerted)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (kind) DO UPDATE SET"
            " streak = excluded.streak, started_log_id = excluded.started_log_id,"
            " last_error = excluded.last_error, alerted = excluded.alerted, last_at = now()",
            (kind, s.streak, s.started_log_id, (s.last_error or "")[:500], s.alerted),
        )


def alert_text(kind: str, s: Streak) -> tuple[str, str]:
    subject = f"Revenge: {kind} jobs keep failing ({s.streak} in a row)"
    body = (
        f"The last {s.streak} jobs of kind {kind} failed after all their retries.\n\n"
        f"Last error: {s.last_error or 'unknown'}\n\n"
        "You hear of this once per streak: the next alert comes after a success and a new "
        "run of failures.\n"
    )
    return subject, body


async def watch_failures(db: Database, jobs: Jobs, settings: Settings) -> list[str]:
    """One pass; the keys of the alerts queued."""
    # The auth module imports this package (its reset and invitation mail): its rule for
    # who is an administrator is read at first use.
    from revenge.modules.auth import admin_addresses

    threshold = settings.email.alert_after
    queued: list[str] = []
    async with db.transaction() as conn:
        streaks, changed = await advance(conn)
        if threshold > 0 and settings.email.host:
            admins = None
            for kind, s in sorted(streaks.items()):
                if s.alerted or s.streak < threshold:
                    continue
                admins = admins if admins is not None else await admin_addresses(conn)
                subject, body = alert_text(kind, s)
                for user_id, address in admins:
                    key = f"job-alert:{kind}:{s.started_log_id}:{user_id}"
                    await write_message(
                        conn, settings.email, to=address, subject=subject, body=body, key=key
                    )
                    queued.append(key)
                s.alerted = True
                changed.add(kind)
                log.warning("%s jobs failed %d times in a row: administrators told", kind, s.streak)
        await store(conn, streaks, changed)
    for key in queued:  # after the commit: a job never runs before its message exists
        await queue_written(jobs, key)
    return queued
