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
import unicodedata
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


MAX_ADDRESS_LENGTH = 254
"""The longest address a mail server must accept (RFC 5321's path less its brackets)."""


def normal_address(address: str) -> str:
    """An address as stored: trimmed, NFC, domain in lower case (the local part is the
    owner's: a server may tell its cases apart). ``ValueError`` when it is not one plain
    address.

    >>> normal_address("  Ann.Lee@Example.ORG ")
    'Ann.Lee@example.org'
    >>> normal_address("ann@example.org\\r\\nBcc: eve@example.org")
    Traceback (most recent call last):
    ...
    ValueError: address: CR/LF and other control characters are not allowed in a header
    """
    text = unicodedata.normalize("NFC", address.strip())
    local, _, domain = text.rpartition("@")
    text = f"{local}@{domain.lower()}" if local else text
    if len(text) > MAX_ADDRESS_LENGTH:
        raise ValueError(f"address: longer than {MAX_ADDRESS_LENGTH} characters")
    return check_address(text)


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
