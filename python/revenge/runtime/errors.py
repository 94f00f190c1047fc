"""Errors that cross layers: infrastructure raises them, the HTTP layer maps them to problems."""

from __future__ import annotations


class ServiceUnavailable(Exception):
    """A dependency cannot serve right now; the caller may retry after ``retry_after`` seconds.

    The HTTP layer answers 503 problem+json with ``Retry-After`` and the stable
    ``code``; the message is safe to show (no URLs with passwords, no secrets).

    >>> err = ServiceUnavailable("database", "connection pool exhausted", retry_after=1)
    >>> err.code, err.retry_after, str(err)
    ('database_unavailable', 1, 'database: connection pool exhausted')
    """

    def __init__(self, service: str, reason: str, *, retry_after: int = 1) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason
        self.retry_after = retry_after

    @property
    def code(self) -> str:
        return f"{self.service}_unavailable"


class ServiceInitFailed(ServiceUnavailable):
    """A cold service could not be built; it is retried after a back-off.

    ``__cause__`` is the factory's error (for logs); the message names only its
    type, so nothing secret from a connection string reaches a response.

    >>> err = ServiceInitFailed("transcoder", "failed to start (OSError)", retry_after=2)
    >>> isinstance(err, ServiceUnavailable), err.code, err.retry_after
    (True, 'transcoder_unavailable', 2)
    """
