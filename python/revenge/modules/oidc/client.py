"""The cold OIDC service: one HTTP client and, per provider, its discovery document and keys.

Built on first use (nothing is fetched at start); each provider's discovery document
and key set are fetched the first time that provider is needed and kept for their
HTTP cache lifetime. Offloading closes the HTTP client and drops every cached
document: the next sign-in fetches them again.

A provider that failed its last call makes :meth:`OidcClient.check` raise, so
``/health`` says ``degraded``; the check tries the discovery document again, so it
recovers by itself once the provider is back.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc.jwk import KeySet

from revenge.config import OidcProvider, OidcSettings
from revenge.modules.oidc.documents import JsonAnswer, request_json
from revenge.modules.oidc.errors import ProviderError, ProviderInvalid, ProviderUnavailable
from revenge.modules.oidc.idtoken import public_key_set

MIN_KEY_REFRESH = 10.0
"""A token naming an unknown key re-reads the key set (rotation), at most this often."""


@dataclass(frozen=True, slots=True)
class Metadata:
    """What a sign-in needs of a discovery document (validated)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...] | None


@dataclass(slots=True)
class _Cached:
    metadata: Metadata | None = None
    metadata_expires: float = 0.0
    keys: KeySet | None = None
    keys_expires: float = 0.0
    keys_fetched: float = 0.0
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class Tokens:
    id_token: str


class OidcClient:
    def __init__(self, settings: OidcSettings, tls: ssl.SSLContext) -> None:
        self.settings = settings
        self.providers = {p.name: p for p in settings.providers}
        self.http = httpx.AsyncClient(
            verify=tls,
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=4),
            headers={"user-agent": "revenge-oidc"},
        )
        self._cache: dict[str, _Cached] = {name: _Cached() for name in self.providers}

    async def close(self) -> None:
        self._cache.clear()
        await self.http.aclose()

    # -- documents ------------------------------------------------------------------

    async def metadata(self, provider: OidcProvider) -> Metadata:
        """The provider's discovery document, fetched when missing or past its lifetime."""
        cached = self._cache[provider.name]
        if cached.metadata is not None and time.monotonic() < cached.metadata_expires:
            return cached.metadata
        url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
        answer = await self._call(
            provider, "discovery document", "GET", url, default_lifetime=self.settings.cache_ttl
        )
        try:
            metadata = parse_metadata(provider, answer.body)
        except ProviderError as exc:
            raise self._noted_error(exc) from None
        cached.metadata, cached.metadata_expires = metadata, time.monotonic() + answer.lifetime
        return metadata

    async def keys(self, provider: OidcProvider, *, refresh: bool = False) -> KeySet:
        """The provider's published signing keys; ``refresh`` re-reads them (rate-limited)."""
        cached = self._cache[provider.name]
        now = time.monotonic()
        fresh = cached.keys is not None and now < cached.keys_expires
        if fresh and not (refresh and now - cached.keys_fetched >= MIN_KEY_REFRESH):
            assert cached.keys is not None
            return cached.keys
        metadata = await self.metadata(provider)
        answer = await self._call(
            provider, "key set", "GET", metadata.jwks_uri, default_lifetime=self.settings.cache_ttl
        )
        try:
            keys = _key_set(provider, answer.body)
        except ProviderError as exc:
            raise self._noted_error(exc) from None
        cached.keys, cached.keys_expires, cached.keys_fetched = keys, now + answer.lifetime, now
        return keys

    async def exchange(
        self, provider: OidcProvider, code: str, verifier: str, redirect_uri: str
    ) -> Tokens | str:
        """Trade the code for tokens: :class:`Tokens`, or the provider's OAuth error code."""
        metadata = await self.metadata(provider)
        answer = await self._call(
            provider,
            "token answer",
            "POST",
            metadata.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            auth=(provider.client_id, provider.client_secret.get_secret_value()),
            accept_status=(200, 400, 401),
        )
        if answer.status != 200:
            error = answer.body.get("error")
            return error[:64] if isinstance(error, str) else "invalid_request"
        id_token = answer.body.get("id_token")
        if not isinstance(id_token, str):
            raise self._noted_error(
                ProviderInvalid(provider.name, "the token answer has no ID token")
            )
        return Tokens(id_token)

    # -- health ---------------------------------------------------------------------

    async def check(self) -> None:
        """Raise while a provider's last call failed (trying its discovery document again)."""
        failing = []
        for name, cached in list(self._cache.items()):
            if cached.failure is None:
                continue
            cached.metadata_expires = 0.0  # ask again: it may be back
            try:
                await self.metadata(self.providers[name])
            except ProviderError:
                failing.append(f"{name}: {cached.failure}")
        if failing:
            raise RuntimeError("provider failing: " + "; ".join(failing))

    # -- inside ---------------------------------------------------------------------

    async def _call(
        self, provider: OidcProvider, what: str, method: str, url: str, **options: Any
    ) -> JsonAnswer:
        try:
            answer = await request_json(
                self.http,
                provider.name,
                what,
                method,
                url,
                timeout=self.settings.timeout,
                max_bytes=self.settings.max_document_bytes,
                **options,
            )
        except ProviderError as exc:
            raise self._noted_error(exc) from None
        self._cache[provider.name].failure = None
        return answer

    def _noted_error(self, exc: ProviderError) -> ProviderError:
        cached = self._cache.get(exc.provider)
        if cached is not None:
            cached.failure = exc.reason
        return exc


def _url(value: object) -> bool:
    if not isinstance(value, str) or len(value) > 2048:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("https", "http") and bool(parts.netloc)


def parse_metadata(provider: OidcProvider, body: dict[str, Any]) -> Metadata:
    """The parts of a discovery document a sign-in uses; :class:`ProviderInvalid` when wrong.

    Its ``issuer`` must be the configured one (a document claiming another issuer is a
    mix-up: its tokens would name that issuer).
    """
    issuer = body.get("issuer")
    if not isinstance(issuer, str) or issuer.rstrip("/") != provider.issuer.rstrip("/"):
        raise ProviderInvalid(
            provider.name, "the discovery document names another issuer than the configured one"
        )
    missing = [
        name
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        if not _url(body.get(name))
    ]
    if missing:
        raise ProviderInvalid(
            provider.name, f"the discovery document lacks a usable {', '.join(missing)}"
        )
    algorithms = body.get("id_token_signing_alg_values_supported")
    announced = (
        tuple(a for a in algorithms if isinstance(a, str))[:32]
        if isinstance(algorithms, list)
        else None
    )
    return Metadata(
        issuer,
        body["authorization_endpoint"],
        body["token_endpoint"],
        body["jwks_uri"],
        announced,
    )


def _key_set(provider: OidcProvider, body: dict[str, Any]) -> KeySet:
    try:
        return public_key_set(body)
    except ValueError as exc:
        raise ProviderInvalid(provider.name, str(exc)) from None


__all__ = ["Metadata", "OidcClient", "ProviderInvalid", "ProviderUnavailable", "Tokens"]
