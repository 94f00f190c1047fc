"""Errors that cross layers: services and infrastructure raise them, the HTTP layer maps them.

Services never raise HTTP problems: they raise a :class:`DomainError` (a stable
``code``, a safe message, and a ``kind`` that says what went wrong) or
:class:`ServiceUnavailable`; the HTTP layer turns both into problem+json.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

ErrorKind = Literal[
    "invalid",
    "unauthenticated",
    "forbidden",
    "not_found",
    "conflict",
    "throttled",
    "gone",
    "pending",
]


class DomainError(Exception):
    """A rule of the domain said no. ``code`` is stable (clients and tests match on it).

    The HTTP layer answers ``kind`` with its status (invalid 422, unauthenticated 401,
    forbidden 403, not_found 404, conflict 409, throttled 429, gone 410: expired or used
    up; pending 400: not ready yet, ask again, as OAuth's ``authorization_pending``),
    ``message`` as the title and ``detail`` and ``extra`` in the body; ``retry_after``
    (seconds) as a ``Retry-After`` header.

    >>> err = DomainError("account_disabled", "This account is disabled", kind="forbidden")
    >>> err.code, err.kind, str(err)
    ('account_disabled', 'forbidden', 'This account is disabled')
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        kind: ErrorKind,
        detail: str | None = None,
        extra: Mapping[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.kind = kind
        self.detail = detail
        self.extra = dict(extra or {})
        self.retry_after = retry_after


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
