"""Logging what a client sent: quoted and escaped, so no value can forge a log line."""

from __future__ import annotations


def quoted(value: str, limit: int = 512) -> str:
    """``value`` as a one-line, quoted, escaped literal of at most ``limit`` characters.

    >>> print(quoted("/api/v1/x\\n2026-01-01 INFO forged"))
    '/api/v1/x\\n2026-01-01 INFO forged'
    >>> quoted("\\x1b[31mred\\x00")
    "'\\\\x1b[31mred\\\\x00'"
    """
    if len(value) > limit:
        value = value[:limit] + "..."
    # repr escapes every control character (and line/paragraph separators) and quotes
    return repr(value)
