"""E-mail (cold): an outbox of messages sent by ``email_send`` jobs over one SMTP connection.

``MODULE`` installs:

* ``email`` (cold, only when ``email.host`` is set): the :class:`~.mailer.Mailer`, its
  connection opened on first use (handshake, STARTTLS or TLS, login) and closed when
  offloaded after ``offload.idle_ttl``; its health check NOOPs the open connection.
  Not configured, ``/health`` lists ``email`` as ``state: disabled``;
* ``email_send``: sends one stored message (see :mod:`.outbox`: at least once, with a
  Message-ID derived from the key, retried with back-off while the server is down);
* ``email_watch`` (each minute): unsent messages queued again, and the administrators
  told when a job kind keeps failing (:mod:`.watch`);

plus ``migrations/`` (the outbox, the failure streaks). Other modules store messages
with :func:`write_message` (inside their own transaction) and queue them with
:func:`queue_written`, or both at once with :func:`queue_email`.
"""

from __future__ import annotations

from importlib import resources

from revenge.config import Settings
from revenge.contract import DATABASE, JOBS, SETTINGS, JobContext, Module, ModuleContext, Payload
from revenge.modules.email.keys import EMAIL_SEND, EMAIL_WATCH, MAILER
from revenge.modules.email.mailer import Mailer, open_mailer
from revenge.modules.email.message import build_message, check_address, normal_address
from revenge.modules.email.outbox import (
    EmailDisabled,
    queue_email,
    queue_written,
    requeue_unsent,
    send_queued,
    write_message,
)
from revenge.modules.email.watch import watch_failures

__all__ = [
    "EMAIL_SEND",
    "EMAIL_WATCH",
    "MAILER",
    "MODULE",
    "EmailDisabled",
    "Mailer",
    "build_message",
    "check_address",
    "email_enabled",
    "install",
    "normal_address",
    "open_mailer",
    "queue_email",
    "queue_written",
    "write_message",
]


def email_enabled(settings: Settings) -> bool:
    return bool(settings.email.host)


async def watch(ctx: JobContext, payload: Payload) -> None:
    """The ``email_watch`` body."""
    db, jobs = ctx.services.get(DATABASE), ctx.services.get(JOBS)
    settings = ctx.services.get(SETTINGS)
    if email_enabled(settings):
        await requeue_unsent(db, jobs)
    await watch_failures(db, jobs, settings)


def install(ctx: ModuleContext) -> None:
    settings = ctx.settings
    if email_enabled(settings):
        ctx.provide(
            MAILER,
            lambda: open_mailer(settings.email),
            close=lambda mailer: mailer.close(),
            health=lambda mailer: mailer.check(),
        )
    else:
        ctx.disabled(MAILER, "email.host is not set")
    ctx.job(EMAIL_SEND, send_queued)
    ctx.job(EMAIL_WATCH, watch)
    ctx.migrations(resources.files(__name__) / "migrations")


MODULE = Module("email", install)
