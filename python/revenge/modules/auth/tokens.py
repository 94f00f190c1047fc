"""Opaque credentials: random session tokens and API keys; only their SHA-256 is ever stored.

>>> token = new_session_token()
>>> len(token) >= 43 and token_hash(token) != token
True
>>> key, key_id = new_api_key()
>>> api_key_id(key) == key_id, api_key_id("rvk_short")
(True, None)
>>> token_hash("abc")[:16]
'ba7816bf8f01cfea'
"""

from __future__ import annotations

import secrets
from hashlib import sha256

TOKEN_BYTES = 32
"""Entropy of a session token or API key secret (256 bits)."""

API_KEY_PREFIX = "rvk_"
_API_KEY_ID_HEX = 16
MAX_CREDENTIAL_LENGTH = 512
"""Longer presented credentials are rejected before hashing: no real one is that long."""


def new_session_token() -> str:
    """A URL-safe random session token (32 random bytes, 43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(secret: str) -> str:
    """Lower-case hex SHA-256 of a token or key: the only form stored or sent between workers."""
    return sha256(secret.encode()).hexdigest()


def new_api_key() -> tuple[str, str]:
    """``(key, key_id)``: the key is ``rvk_<16 hex id>_<secret>``; the id is public.

    Embedding the public id lets the middleware name the key in a Principal without a
    lookup; the key only authenticates through the hash of the whole string.
    """
    key_id = secrets.token_hex(_API_KEY_ID_HEX // 2)
    return f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(TOKEN_BYTES)}", key_id


def api_key_id(key: str) -> str | None:
    """The public id embedded in ``key``, or ``None`` when it is not shaped like an API key."""
    end = len(API_KEY_PREFIX) + _API_KEY_ID_HEX
    if len(key) <= end + 1 or not key.startswith(API_KEY_PREFIX) or key[end] != "_":
        return None
    return key[len(API_KEY_PREFIX) : end]
