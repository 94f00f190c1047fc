"""The outbox: every message by its idempotency key, written before its job is queued.

:func:`write_message` stores a message on the caller's connection (so a password-reset
token and its e-mail commit together); :func:`queue_email` stores and queues in one
call. The ``email_send`` job (:func:`send_queued`) sends a stored message and records
``sent_at``; a run that finds ``sent_at`` sends nothing.

Delivery is *at least once*, not exactly once. ``sending_at`` is committed just before
the message goes to the server and cleared when the attempt ends; the one window left
is a process killed after the server took the message and before ``sent_at`` is
committed (one round trip to PostgreSQL). The next run finds ``sending_at`` still set,
sends again with the same ``Message-ID`` (derived from the key, so the copy can be
recognised and folded) and counts it in ``uncertain``. Sending nothing instead would
make the same window lose a message, which is worse for a reset link or an alert.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg import AsyncConnection

from revenge.config import EmailSettings, Settings
from revenge.contract import DATABASE, SETTINGS, JobContext, Payload
from revenge.infra.db import Database
from revenge.infra.jobs import Jobs
from revenge.modules.email.keys import EMAIL_SEND, MAILER
from revenge.modules.email.message import build_message, check_address
from revenge.runtime.errors import DomainError

log = logging.getLogger(__name__)

Conn = AsyncConnection[Any]
DEFAULT_SENDER = "revenge@localhost"


class EmailDisabled(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "email_disabled", "E-mail is not configured", detail="set email.host", kind="conflict"
        )


def sender_of(settings: EmailSettings) -> str:
    return settings.sender or DEFAULT_SENDER


async def write_message(
    conn: Conn, settings: EmailSettings, *, to: str, subject: str, body: str, key: str
) -> bool:
    """Store one message under ``key`` on ``conn`` (never commits); ``False`` when the key
    was there already. Raises ``ValueError`` for a bad address or a header with CR/LF,
    :class:`EmailDisabled` when no SMTP server is configured."""
    if not settings.host:
        raise EmailDisabled()
    build_message(sender_of(settings), to, subject, body, key)  # refuses bad headers now
    cur = await conn.execute(
        "INSERT INTO email_outbox (key, recipient, subject, body) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (key) DO NOTHING",
        (key, check_address(to), subject, body),
    )
    return cur.rowcount == 1


async def queue_written(jobs: Jobs, key: str) -> int:
    """Queue the ``email_send`` job of a stored message (unique per key); the job id."""
    return await jobs.enqueue(EMAIL_SEND.name, {"key": key}, key=key)


async def queue_email(
    db: Database, jobs: Jobs, settings: Settings, *, to: str, subject: str, body: str, key: str
) -> int:
    """Store and queue one message under ``key`` (the same key again queues nothing new)."""
    async with db.connection() as conn:
        await write_message(conn, settings.email, to=to, subject=subject, body=body, key=key)
    return await queue_written(jobs, key)


async def send_queued(ctx: JobContext, payload: Payload) -> None:
    """The ``email_send`` body: send the outbox message of ``payload["key"]`` unless sent."""
    db = ctx.services.get(DATABASE)
    settings = ctx.services.get(SETTINGS).email
    key = str(payload["key"])
    if not ctx.services.provides(MAILER):
        raise EmailDisabled()  # configured when queued, not now: retried, kept
    row = await db.fetch_one(
        "SELECT recipient, subject, body, sent_at, sending_at FROM email_outbox WHERE key = %s",
        (key,),
    )
    if row is None:
        log.warning("email_send: no outbox message %r", key)
        return
    recipient, subject, body, sent_at, sending_at = row
    if sent_at is not None:
        log.info("email_send: %r was sent at %s; not again", key, sent_at)
        return
    message = build_message(sender_of(settings), str(recipient), str(subject), str(body), key)
    mailer = await ctx.services.lazy(MAILER).get()
    if sending_at is not None:
        log.warning(
            "email_send: %r was under way when its last run died; sending it again "
            "(same Message-ID: a possible duplicate)",
            key,
        )
    await db.execute(
        "UPDATE email_outbox SET sending_at = now(), uncertain = uncertain + %s WHERE key = %s",
        (int(sending_at is not None), key),
    )
    try:
        await mailer.send(message)
    except Exception as exc:
        await db.execute(
            "UPDATE email_outbox SET attempts = attempts + 1, last_error = %s, sending_at = NULL"
            " WHERE key = %s",
            (f"{type(exc).__name__}: {exc}"[:500], key),
        )
        raise
    await db.execute(
        "UPDATE email_outbox SET sent_at = now(), sending_at = NULL, attempts = attempts + 1,"
        " last_error = NULL WHERE key = %s",
        (key,),
    )


async def requeue_unsent(db: Database, jobs: Jobs, *, older_than: float = 60.0) -> int:
    """Queue a job for every unsent message of the last day that has none (its job ran
    out of retries, or it was stored and the process died before queueing it)."""
    rows = await db.fetch_all(
        "SELECT key FROM email_outbox WHERE sent_at IS NULL"
        " AND created_at < now() - make_interval(secs => %s)"
        " AND created_at > now() - interval '1 day'"
        " AND NOT EXISTS (SELECT 1 FROM pgqueuer q WHERE q.dedupe_key = 'email_send:' || key"
        "                 AND q.status IN ('queued', 'picked'))"
        " ORDER BY created_at LIMIT 1000",
        (older_than,),
    )
    keys = [str(row[0]) for row in rows]
    await jobs.enqueue_many(EMAIL_SEND.name, [{"key": k} for k in keys], keys=keys)
    return len(keys)
