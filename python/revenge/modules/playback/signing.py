"""Signed, expiring media URLs for players that cannot send a credential (``<video src>``, VLC,
cast devices).

A signature binds the playback session, its user, its item and an expiry time; it is the
query ``?exp=<epoch seconds>&sig=<HMAC-SHA256, base64url>`` on every URL of that session
(playlists, segments, the direct file, subtitles). The path names the session, so a URL
can only ever open that session's media, and only until ``exp``; a session id alone opens
nothing.

>>> signer = UrlSigner(b"k" * 32)
>>> query = signer.query("s1", user_id=7, item_id=42, expires=2_000_000_000)
>>> exp, sig = query.split("&")
>>> signer.check("s1", 7, 42, exp[4:], sig[4:], now=1_900_000_000)
'ok'
>>> signer.check("s1", 8, 42, exp[4:], sig[4:], now=1_900_000_000)
'invalid'
>>> signer.check("s1", 7, 42, exp[4:], sig[4:], now=2_000_000_001)
'expired'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Literal

Verdict = Literal["ok", "invalid", "expired"]

MAX_SIGNATURE_LENGTH = 64  # base64url of 32 bytes is 43 characters


class UrlSigner:
    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the URL signing key must be at least 32 bytes")
        self._key = key

    def signature(self, session_id: str, user_id: int, item_id: int, expires: int) -> str:
        message = f"v1|{session_id}|{user_id}|{item_id}|{expires}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def query(self, session_id: str, *, user_id: int, item_id: int, expires: int) -> str:
        sig = self.signature(session_id, user_id, item_id, expires)
        return f"exp={expires}&sig={sig}"

    def check(
        self,
        session_id: str,
        user_id: int,
        item_id: int,
        exp: str,
        sig: str,
        *,
        now: float,
    ) -> Verdict:
        """The signature is compared in constant time before the expiry is looked at, so a
        forger learns nothing from which of the two failed."""
        if not exp.isascii() or not exp.isdigit() or len(exp) > 12:
            return "invalid"
        if not sig.isascii() or len(sig) > MAX_SIGNATURE_LENGTH:
            return "invalid"
        expected = self.signature(session_id, user_id, item_id, int(exp))
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            return "invalid"
        return "expired" if int(exp) < now else "ok"
