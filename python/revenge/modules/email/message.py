"""Building a message: headers refused when they carry CR/LF, a Message-ID from the key.

>>> msg = build_message("Revenge <r@example.org>", "ann@example.org", "Hi", "Body", "k1")
>>> msg["To"], msg["Subject"], msg["Message-ID"].endswith("@revenge.invalid>")
('ann@example.org', 'Hi', True)
>>> build_message("r@example.org", "ann@example.org", "Hi\\r\\nBcc: eve@example.org", "x", "k")
Traceback (most recent call last):
...
ValueError: subject: CR/LF and other control characters are not allowed in a header
"""

from __future__ import annotations

import hashlib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr


def _header_value(name: str, value: str) -> str:
    if not value.isprintable():
        raise ValueError(f"{name}: CR/LF and other control characters are not allowed in a header")
    return value


def check_address(address: str) -> str:
    """``address`` when it is one plain ``local@domain`` address, else ``ValueError``."""
    _header_value("address", address)
    name, parsed = parseaddr(address)
    local, at, domain = parsed.rpartition("@")
    if name or parsed != address or not at or not local or "." not in domain or " " in parsed:
        raise ValueError(f"address: {address!r} is not one plain e-mail address")
    Address(addr_spec=parsed)  # the stdlib's own syntax check
    return parsed


def message_id(key: str) -> str:
    """The same key gives the same Message-ID: a resent message can be recognised."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@revenge.invalid>"


def build_message(sender: str, to: str, subject: str, body: str, key: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = _header_value("sender", sender)
    msg["To"] = check_address(to)
    msg["Subject"] = _header_value("subject", subject)
    msg["Message-ID"] = message_id(key)
    msg["Date"] = formatdate(usegmt=True)
    msg.set_content(body)
    return msg
