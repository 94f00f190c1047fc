"""The SMTP client (aiosmtplib): one connection, opened on first use, closed on offload.

A cold service. :func:`open_mailer` is its factory: it connects, says EHLO, upgrades
with STARTTLS (``security: starttls``, required: a server without it is refused) or
speaks TLS from the first byte (``tls``), and logs in when a username is set, so the
first use pays the handshake once and the next messages reuse the connection. A
connection the server dropped meanwhile (its idle timeout, a restart) is found by a
NOOP before the next message and reopened. Every exchange is bounded by
``email.timeout``. Offloading (:meth:`Mailer.close`) says QUIT and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from email.message import EmailMessage

import aiosmtplib

from revenge.config import EmailSettings

_STALE_AFTER = 2.0
"""Seconds idle after which a connection is checked (NOOP) before the next message."""


def tls_context(settings: EmailSettings) -> ssl.SSLContext:
    """Certificates checked against the system's CAs, or ``email.ca_file`` when set."""
    return ssl.create_default_context(cafile=settings.ca_file or None)


class Mailer:
    """Sends messages over one SMTP connection, one at a time (the protocol is serial)."""

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()
        self._used_at = 0.0
        self.last_error: BaseException | None = None
        """Why the last send or reconnect failed; cleared by the next success (health reads it)."""

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",  # required, never silently skipped
            tls_context=tls_context(s) if s.security != "none" else None,
            username=s.username or None,
            password=s.password.get_secret_value() or None,
            timeout=s.timeout,
        )

    async def connect(self) -> None:
        """Open the connection (handshake, TLS, login); the old one, if any, is dropped."""
        await self._drop()
        smtp = self._client()
        try:
            await smtp.connect()
        except BaseException as exc:
            self.last_error = exc
            smtp.close()
            raise
        self._smtp = smtp
        self._used_at = time.monotonic()
        self.last_error = None

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    async def send(self, message: EmailMessage) -> None:
        """Send ``message`` over the open connection (opening it if needed).

        A connection idle for a while is checked first (NOOP) and reopened when the
        server has closed it: a stale connection looks alive until used. Once the
        message is under way a failure is not retried here: the server may have
        taken it, and the caller's outbox decides (see ``queue_email``).
        """
        async with self._lock:
            if self.connected and time.monotonic() - self._used_at > _STALE_AFTER:
                assert self._smtp is not None
                try:
                    await self._smtp.noop()
                except (aiosmtplib.SMTPException, OSError):
                    await self._drop()
            if not self.connected:
                await self.connect()
            assert self._smtp is not None
            try:
                await self._smtp.send_message(message)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self.last_error = None  # the server answered: it is up; the address is bad
                raise ValueError(f"the SMTP server refused every recipient: {exc}") from exc
            except BaseException as exc:
                self.last_error = exc
                await self._drop()  # its state is unknown: the next message starts afresh
                raise
            self.last_error = None
            self._used_at = time.monotonic()

    async def check(self) -> None:
        """Health: raises while the server cannot be reached (NOOP on the open connection,
        else a fresh connection that is kept for the next message)."""
        async with self._lock:
            if self.connected:
                assert self._smtp is not None
                try:
                    await self._smtp.noop()
                    return
                except (aiosmtplib.SMTPException, OSError):
                    pass
            await self.connect()

    async def close(self) -> None:
        """QUIT and close (offload, shutdown); never raises."""
        async with self._lock:
            await self._drop()

    async def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        if smtp.is_connected:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(min(self.settings.timeout, 5.0)):
                    await smtp.quit()
        smtp.close()


async def open_mailer(settings: EmailSettings) -> Mailer:
    """The cold service's factory: a mailer with its connection open (raises when the
    server is down: the runtime retries after back-off and health says degraded)."""
    mailer = Mailer(settings)
    await mailer.connect()
    return mailer
