"""The e-mail module's service key and job kinds (what other modules and tests name)."""

from __future__ import annotations

from revenge.contract import JobKind, RetryPolicy, ServiceKey, Tier
from revenge.modules.email.mailer import Mailer

MAILER: ServiceKey[Mailer] = ServiceKey("email", Tier.COLD)

EMAIL_SEND = JobKind(
    "email_send",
    queue="email",
    unique=True,  # key: the message's idempotency key
    # 5 s, 10 s, ... capped at 10 min: about an hour of an SMTP server being away; after
    # that email_watch queues it again (for a day), so an outage loses nothing.
    retry=RetryPolicy(max_attempts=10, initial_delay=5.0, max_delay=600.0),
    timeout=120.0,
)

EMAIL_WATCH = JobKind(
    "email_watch",
    queue="email",
    unique=True,
    max_running=1,
    retry=RetryPolicy(max_attempts=1),
    timeout=120.0,
    schedule="* * * * *",  # each minute: unsent messages requeued, failing job kinds reported
)
