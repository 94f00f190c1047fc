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
