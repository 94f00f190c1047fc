"""Problem details (RFC 9457): every error a client sees is one of these, with a stable ``code``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from revenge.http.response import Response, json_response
from revenge.runtime.errors import DomainError

PROBLEM_CONTENT_TYPE = "application/problem+json"
NOSNIFF = ("x-content-type-options", "nosniff")
"""On every response: a browser never guesses another type than the one sent."""


class Problem(Exception):
    """Raise from a handler to answer with a problem+json body.

    >>> p = Problem(404, "movie_not_found", "Movie not found", detail="no movie 7")
    >>> r = p.to_response(instance="/api/v1/movies/7")
    >>> r.status, dict(r.headers)["content-type"]
    (404, 'application/problem+json')
    """

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        *,
        headers: Sequence[tuple[str, str]] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail or title}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = tuple(headers)
        self.extra = dict(extra or {})

    def to_response(self, instance: str | None = None, request_id: str | None = None) -> Response:
        body: dict[str, Any] = {
            "type": f"/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        if request_id is not None:  # a person quoting it lets the operator find the log line
            body["request_id"] = request_id
        headers = [("content-type", PROBLEM_CONTENT_TYPE), NOSNIFF, *self.headers]
        return json_response(body, self.status, headers=headers)


_STATUS_OF_KIND = {
    "invalid": 422,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "throttled": 429,
    "gone": 410,
    "pending": 400,
}


def domain_problem(error: DomainError) -> Problem:
    """The problem+json answer to a service's :class:`DomainError` (same stable code).

    >>> domain_problem(DomainError("account_disabled", "Disabled", kind="forbidden")).status
    403
    """
    headers = () if error.retry_after is None else [("retry-after", str(error.retry_after))]
    return Problem(
        _STATUS_OF_KIND[error.kind],
        error.code,
        error.message,
        error.detail,
        headers=headers,
        extra=error.extra,
    )


def not_found(path: str) -> Problem:
    return Problem(404, "not_found", "Not found", f"no resource at {path}")


def invalid_path() -> Problem:
    return Problem(400, "invalid_path", "Invalid path", "the path contains a NUL byte")


def invalid_input(exc: BaseException) -> Problem:
    """A value a lower layer refused (the database, say): the client's input, not our fault."""
    return Problem(400, "invalid_input", "Invalid input", "a value in the request was refused")


def method_not_allowed(method: str, allowed: Sequence[str]) -> Problem:
    return Problem(
        405,
        "method_not_allowed",
        "Method not allowed",
        f"{method} is not allowed here; allowed: {', '.join(allowed)}",
        headers=[("allow", ", ".join(allowed))],
    )


def service_unavailable(code: str, detail: str, retry_after: int) -> Problem:
    return Problem(
        503,
        code,
        "Service unavailable",
        detail,
        headers=[("retry-after", str(max(1, retry_after)))],
    )


INTERNAL_ERROR = Problem(500, "internal_error", "Internal server error", "the error was logged")
