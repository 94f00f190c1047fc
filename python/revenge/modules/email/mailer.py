"""The SMTP client (aiosmtplib): one connection per message, bounded by ``email.timeout``.

A cold service: built on the first message, offloaded when idle. It holds no open
connection between messages (a server's idle timeout would close it anyway), so
offloading has nothing to close.
"""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from revenge.config import EmailSettings


class Mailer:
    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        await aiosmtplib.send(
            message,
            hostname=s.host,
            port=s.port,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",  # required, never silently skipped
            username=s.username or None,
            password=s.password.get_secret_value() or None,
            timeout=s.timeout,
        )
