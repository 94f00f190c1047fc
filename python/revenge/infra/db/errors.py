"""Errors of the database layer, and URL redaction for their messages.

>>> redact_url("postgresql://app:s3cret@db.example:5432/revenge")
'postgresql://app:***@db.example:5432/revenge'
>>> redact_url("host=db user=app password=s3cret dbname=revenge")
'host=db user=app password=*** dbname=revenge'
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (URI and ``key=value`` forms)."""
    if "://" not in url:
        return _KEYWORD_PASSWORD.sub(r"\1***", url)
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hosts}" if sep else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key == "password" for key, _ in pairs):
            query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="/*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class DatabaseUnreachable(Exception):
    """PostgreSQL could not be reached at start-up; ``revenge serve`` exits with this message.

    >>> str(DatabaseUnreachable("postgresql://u:pw@h/db", "connection refused"))
    'cannot connect to PostgreSQL at postgresql://u:***@h/db: connection refused'
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = redact_url(url)
        self.reason = reason
        super().__init__(f"cannot connect to PostgreSQL at {self.url}: {reason}")


class MigrationError(Exception):
    """The migrations cannot be applied; the message names the file."""


class MigrationChecksumMismatch(MigrationError):
    """An applied migration's file changed after it was applied."""


class DatabaseNewerThanCode(MigrationError):
    """The database has migrations applied that this code does not ship (a newer Revenge ran on it)."""


class MigrationOutOfOrder(MigrationError):
    """A new file is numbered below one its module already applied: migrations only move forward."""


class EmbeddedDatabaseError(Exception):
    """The embedded PostgreSQL could not be started in the data folder."""
