"""E-mail (cold): messages queued as ``email_send`` jobs, sent over SMTP, never twice.

:func:`queue_email` writes the message to ``email_outbox`` under its idempotency key and
queues an ``email_send`` job (unique per key); the job sends it through the cold
:data:`MAILER` service and records ``sent_at``. While the SMTP server is down the job is
retried with back-off (``RetryPolicy`` below: up to ~1 hour in all), and a job that runs
again after the message went out finds ``sent_at`` and sends nothing.

With ``email.host`` empty, e-mail is off: :func:`queue_email` refuses with the stable
code ``email_disabled`` and nothing is queued.
"""

from __future__ import annotations

import logging
from importlib import resources

from revenge.config import Settings
from revenge.contract import (
    DATABASE,
    SETTINGS,
    JobContext,
    JobKind,
    Module,
    ModuleContext,
    Payload,
    RetryPolicy,
    ServiceKey,
    Tier,
)
from revenge.infra.db import Database
from revenge.infra.jobs import Jobs
from revenge.modules.email.mailer import Mailer
from revenge.modules.email.message import build_message, check_address
from revenge.runtime.errors import DomainError

log = logging.getLogger(__name__)

MAILER: ServiceKey[Mailer] = ServiceKey("email", Tier.COLD)
EMAIL_SEND = JobKind(
    "email_send",
    queue="email",
    unique=True,
    # 5 s, 10 s, ... capped at 10 min: about an hour of an SMTP server being away.
    retry=RetryPolicy(max_attempts=10, initial_delay=5.0, max_delay=600.0),
    timeout=120.0,
)


async def queue_email(
    db: Database, jobs: Jobs, settings: Settings, *, to: str, subject: str, body: str, key: str
) -> int:
    """Queue one message under ``key`` (the same key again queues nothing new); the job id.

    Raises :class:`ValueError` for a bad address or a header with CR/LF, and
    ``DomainError("email_disabled")`` when no SMTP server is configured.
    """
    if not settings.email.host:
        raise DomainError(
            "email_disabled", "E-mail is not configured", detail="set email.host", kind="conflict"
        )
    build_message(settings.email.sender or "revenge@localhost", to, subject, body, key)
    await db.execute(
        "INSERT INTO email_outbox (key, recipient, subject, body) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (key) DO NOTHING",
        (key, check_address(to), subject, body),
    )
    return await jobs.enqueue(EMAIL_SEND.name, {"key": key}, key=key)


async def send_queued(ctx: JobContext, payload: Payload) -> None:
    """The ``email_send`` body: send the outbox message of ``payload["key"]`` unless sent."""
    db = ctx.services.get(DATABASE)
    settings = ctx.services.get(SETTINGS)
    key = str(payload["key"])
    row = await db.fetch_one(
        "SELECT recipient, subject, body, sent_at FROM email_outbox WHERE key = %s", (key,)
    )
    if row is None:
        log.warning("email_send: no outbox message %r", key)
        return
    recipient, subject, body, sent_at = row
    if sent_at is not None:
        log.info("email_send: %r was sent at %s; not again", key, sent_at)
        return
    message = build_message(
        settings.email.sender or "revenge@localhost", str(recipient), str(subject), str(body), key
    )
    mailer = await ctx.services.lazy(MAILER).get()
    try:
        await mailer.send(message)
    except Exception as exc:
        await db.execute(
            "UPDATE email_outbox SET attempts = attempts + 1, last_error = %s WHERE key = %s",
            (f"{type(exc).__name__}: {exc}"[:500], key),
        )
        raise
    await db.execute(
        "UPDATE email_outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL"
        " WHERE key = %s",
        (key,),
    )


def install(ctx: ModuleContext) -> None:
    settings = ctx.settings
    ctx.provide(MAILER, lambda: Mailer(settings.email))
    ctx.job(EMAIL_SEND, send_queued)
    ctx.migrations(resources.files(__name__) / "migrations")


MODULE = Module("email", install)
