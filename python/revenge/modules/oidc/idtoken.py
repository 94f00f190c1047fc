"""ID token validation (OpenID Connect Core 3.1.3.7), with joserfc for the signature.

:func:`signing_key` picks the key *before* anything is verified: the header's
``alg`` must be an asymmetric algorithm the provider announced (``none`` and the
HMAC family are refused: an HMAC "signature" made with our own client secret
proves nothing about the provider), and its ``kid`` must name a key of the
provider's published set. :func:`validate` then checks the signature with that
key alone, and the claims: ``iss`` is the provider's, ``aud`` holds our client id
(``azp`` too when there are several audiences), ``exp`` has not passed, ``iat``
is not in the future, ``nonce`` is the one this sign-in sent (compared in constant
time) and ``sub`` is present.

Each refusal is an :class:`IdTokenRejected` with a stable ``reason``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""The only algorithms accepted: a signature only the provider's private key can make."""

MAX_TOKEN_BYTES = 16384
LEEWAY = 60.0
"""Seconds of clock difference tolerated on ``exp`` and ``iat``."""

Key = RSAKey | ECKey | OKPKey


class IdTokenRejected(Exception):
    """The ID token was refused; ``reason`` is stable (tests and logs match on it)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Header:
    alg: str
    kid: str | None


def read_header(token: str) -> Header:
    """The protected header, unverified (to choose the key); malformed tokens refused."""
    if len(token) > MAX_TOKEN_BYTES:
        raise IdTokenRejected("malformed", "the ID token is too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise IdTokenRejected("malformed", "the ID token is not a signed JWT (three parts)")
    try:
        header = orjson.loads(_b64decode(parts[0]))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise IdTokenRejected("malformed", "the ID token's header is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        raise IdTokenRejected("malformed", "the ID token's header has no algorithm")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise IdTokenRejected("malformed", "the ID token's key id is not a string")
    if "crit" in header:
        raise IdTokenRejected("malformed", "the ID token has critical header parameters")
    return Header(header["alg"], kid)


def check_algorithm(alg: str, announced: Iterable[str] | None) -> None:
    """``alg`` must be asymmetric and, when the provider lists its algorithms, one of them."""
    if alg not in ASYMMETRIC:
        raise IdTokenRejected(
            "algorithm", f"algorithm {alg[:20]!r} is refused (only asymmetric signatures)"
        )
    if announced is not None and alg not in set(announced):
        raise IdTokenRejected("algorithm", f"the provider does not announce {alg!r}")


def signing_key(header: Header, keys: KeySet) -> Key | None:
    """The published key the header names (by ``kid``; without one, the only key that fits)."""
    fitting = [key for key in keys.keys if isinstance(key, Key) and _fits(key, header.alg)]
    if header.kid is not None:
        for key in fitting:
            if key.kid == header.kid:
                return key
        return None
    return fitting[0] if len(fitting) == 1 else None


def validate(
    token: str,
    key: Key,
    alg: str,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of a token whose signature and claims hold; :class:`IdTokenRejected` else."""
    try:
        decoded = jwt.decode(token, key, algorithms=[alg])
    except JoseError as exc:
        raise IdTokenRejected("signature", f"the signature does not verify ({exc.error})") from None
    except (ValueError, TypeError):
        raise IdTokenRejected("malformed", "the ID token cannot be decoded") from None
    claims = dict(decoded.claims)
    now = time.time() if now is None else now
    if claims.get("iss") != issuer:
        raise IdTokenRejected("issuer", "the ID token is from another issuer")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise IdTokenRejected("audience", "the ID token is not meant for this server")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise IdTokenRejected("audience", "several audiences and this server is not the azp")
    exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
    if exp is None or exp + LEEWAY < now:
        raise IdTokenRejected("expired", "the ID token has expired")
    if iat is None or iat - LEEWAY > now:
        raise IdTokenRejected("issued_at", "the ID token is issued in the future")
    sent = claims.get("nonce")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
        raise IdTokenRejected("nonce", "the ID token's nonce is not this sign-in's")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 1 <= len(subject) <= 255:
        raise IdTokenRejected("subject", "the ID token has no usable subject")
    return claims


def public_key_set(document: dict[str, Any]) -> KeySet:
    """The signing keys of a JWKS document (private, symmetric and encryption keys left out).

    ``ValueError`` when it holds no usable key at all.
    """
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("the key set has no 'keys' list")
    keys: list[Key] = []
    for entry in entries[:100]:
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if entry.get("use", "sig") != "sig" or "d" in entry:
            continue
        try:
            imported = KeySet.import_key_set({"keys": [entry]})
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        keys.extend(imported.keys)  # type: ignore[arg-type]
    if not keys:
        raise ValueError("the key set holds no usable signing key")
    return KeySet(keys)  # type: ignore[arg-type]


def _fits(key: Key, alg: str) -> bool:
    declared = key.alg
    if declared is not None and declared != alg:
        return False
    family = {"R": "RSA", "P": "RSA", "E": "EC"}.get(alg[0], "")
    if alg == "EdDSA":
        family = "OKP"
    return bool(key.key_type == family)


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
