"""Single sign-on use cases: start a sign-in at a provider, finish it at the callback.

:meth:`SingleSignOn.begin` makes the state, nonce, PKCE verifier (S256) and a browser
binding, stores them (the state and binding only as SHA-256) in ``oidc_flows`` so
any worker can finish the flow, and returns the provider's authorization URL.
:meth:`SingleSignOn.finish` takes the flow out (single use: a replayed state finds
nothing), checks the browser binding, trades the code for tokens, validates the
ID token (``idtoken``), then signs the person in through auth's
:class:`~revenge.modules.auth.ExternalSignIn`, which makes the same opaque session
as a password login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from revenge.config import OidcProvider, OidcSettings
from revenge.infra.db import Database
from revenge.modules.auth import ExternalAccount, ExternalSignIn, LoginResult
from revenge.modules.oidc import repository as repo
from revenge.runtime.errors import DomainError

if TYPE_CHECKING:
    from revenge.modules.oidc.client import Metadata, OidcClient

log = logging.getLogger(__name__)

CALLBACK_PATH = "/api/v1/oidc/{name}/callback"
MAX_RETURN_PATH = 2048


class SignInFailed(DomainError):
    """The sign-in cannot be finished; ``code`` says why (stable), ``detail`` says more."""

    def __init__(self, code: str, message: str, detail: str, *, kind: Any = "invalid") -> None:
        super().__init__(code, message, kind=kind, detail=detail)


def unknown_provider(name: str) -> DomainError:
    return DomainError(
        "oidc_provider_unknown",
        "No such sign-in provider",
        kind="not_found",
        detail=f"no provider named {name[:40]!r} is configured",
    )


def safe_return_path(value: str | None) -> str:
    """A same-origin path to send the browser to afterwards; ``ValueError`` for anything else.

    Only a path starting with one ``/`` (not ``//`` nor ``/\\``, which browsers take as
    another host), without a scheme, host, backslash or control character.

    >>> safe_return_path("/web/#/movies?x=1"), safe_return_path(None)
    ('/web/#/movies?x=1', '/')
    >>> for bad in ("//evil.example", "https://evil.example/", "/\\\\evil", "javascript:x", "web"):
    ...     try:
    ...         safe_return_path(bad)
    ...     except ValueError:
    ...         print("refused", bad)
    refused //evil.example
    refused https://evil.example/
    refused /\\evil
    refused javascript:x
    refused web
    """
    if value is None or value == "":
        return "/"
    if len(value) > MAX_RETURN_PATH:
        raise ValueError("the return path is too long")
    if any(ord(ch) < 0x21 or ch == "\\" or ord(ch) == 0x7F for ch in value):
        raise ValueError("the return path has spaces, control characters or backslashes")
    if not value.startswith("/") or value.startswith("//"):
        raise ValueError("the return path must be a path on this server (start with one '/')")
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        raise ValueError("the return path must be a path on this server")
    return value


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _challenge(verifier: str) -> str:
    raw = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def binding_cookie(state: str) -> str:
    """The name of the cookie that ties a sign-in to the browser that started it."""
    return f"revenge_oidc_{_digest(state)[:16]}"


@dataclass(frozen=True, slots=True)
class Started:
    """Where to send the browser, and the binding cookie to set on it."""

    authorization_url: str
    cookie_name: str
    binding: str


@dataclass(frozen=True, slots=True)
class Finished:
    login: LoginResult
    return_to: str
    cookie_name: str


UseClient = Callable[[], Any]
"""``async with use_client() as client``: the cold service, leased for one step."""


class SingleSignOn:
    def __init__(
        self,
        db: Database,
        settings: OidcSettings,
        sign_in: Callable[[], ExternalSignIn],
        use_client: UseClient,
    ) -> None:
        self.db = db
        self.settings = settings
        self.providers = {p.name: p for p in settings.providers}
        self._sign_in = sign_in
        self._use_client = use_client

    def provider(self, name: str) -> OidcProvider:
        found = self.providers.get(name)
        if found is None:
            raise unknown_provider(name)
        return found

    def redirect_uri(self, provider: OidcProvider) -> str:
        """The callback registered at the provider: from configuration, never from a request."""
        if provider.redirect_uri:
            return provider.redirect_uri
        return self.settings.public_url.rstrip("/") + CALLBACK_PATH.format(name=provider.name)

    def secure_cookies(self, provider: OidcProvider) -> bool:
        return self.redirect_uri(provider).startswith("https://")

    async def begin(self, name: str, return_to: str | None) -> Started:
        provider = self.provider(name)
        try:
            back = safe_return_path(return_to)
        except ValueError as exc:
            raise DomainError(
                "oidc_return_invalid", "Return path refused", kind="invalid", detail=str(exc)
            ) from None
        async with self._use_client() as client:
            metadata = await client.metadata(provider)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier, binding = secrets.token_urlsafe(48), secrets.token_urlsafe(32)
        async with self.db.connection() as conn:
            await repo.insert_flow(
                conn,
                _digest(state),
                _digest(binding),
                provider.name,
                nonce,
                verifier,
                back,
                self.settings.flow_ttl,
            )
        scopes = ["openid", *(s for s in provider.scopes if s != "openid")]
        query = urlencode(
            {
                "response_type": "code",
                "client_id": provider.client_id,
                "redirect_uri": self.redirect_uri(provider),
                "scope": " ".join(scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": _challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        joiner = "&" if "?" in metadata.authorization_endpoint else "?"
        return Started(
            f"{metadata.authorization_endpoint}{joiner}{query}", binding_cookie(state), binding
        )

    async def finish(
        self,
        name: str,
        *,
        state: str | None,
        code: str | None,
        error: str | None,
        issuer: str | None,
        binding: Callable[[str], str | None],
        ip: str,
        client: str,
    ) -> Finished:
        """``binding(cookie_name)`` reads the request's cookie of that name."""
        provider = self.provider(name)
        if not state:
            raise SignInFailed("oidc_state_invalid", "Unknown sign-in", "the callback has no state")
        async with self.db.connection() as conn:
            flow = await repo.take_flow(conn, _digest(state))
        if flow is None or flow.provider != provider.name:
            raise SignInFailed(
                "oidc_state_invalid",
                "Unknown sign-in",
                "this sign-in is unknown or was already used: start again",
            )
        if flow.expired:
            raise SignInFailed(
                "oidc_state_expired",
                "Sign-in expired",
                "the sign-in took too long: start again",
                kind="gone",
            )
        cookie_name = binding_cookie(state)
        offered = binding(cookie_name)
        if offered is None or not hmac.compare_digest(_digest(offered), flow.binding_hash):
            raise SignInFailed(
                "oidc_browser_mismatch",
                "Sign-in started elsewhere",
                "this sign-in was started in another browser (or its cookie is gone): start again",
            )
        if error is not None:
            raise SignInFailed(
                "oidc_denied",
                "The provider did not sign you in",
                f"the provider answered {error[:64]!r}",
                kind="unauthenticated",
            )
        if not code:
            raise SignInFailed("oidc_code_missing", "No code", "the callback has no code")
        async with self._use_client() as oidc:
            metadata = await oidc.metadata(provider)
            if issuer is not None and issuer != metadata.issuer:
                # RFC 9207: an answer naming another issuer is a mix-up attack.
                raise SignInFailed(
                    "oidc_issuer_mismatch", "Wrong issuer", "the answer names another issuer"
                )
            answer = await oidc.exchange(
                provider, code, flow.code_verifier, self.redirect_uri(provider)
            )
            if isinstance(answer, str):
                raise SignInFailed(
                    "oidc_code_rejected",
                    "The provider refused the code",
                    f"the token endpoint answered {answer!r} (expired, used or not this "
                    "server's code): start again",
                    kind="unauthenticated",
                )
            claims = await self._validated(oidc, provider, metadata, answer.id_token, flow.nonce)
        login = await self._account(provider, metadata.issuer, claims, ip, client)
        return Finished(login, flow.return_to, cookie_name)

    async def _validated(
        self, oidc: OidcClient, provider: OidcProvider, metadata: Metadata, token: str, nonce: str
    ) -> dict[str, Any]:
        from revenge.modules.oidc import idtoken  # loaded with the client, where configured

        try:
            header = idtoken.read_header(token)
            idtoken.check_algorithm(header.alg, metadata.algorithms)
            keys = await oidc.keys(provider)
            key = idtoken.signing_key(header, keys)
            if key is None:  # rotated since we read the set? read it again (rate-limited)
                key = idtoken.signing_key(header, await oidc.keys(provider, refresh=True))
            if key is None:
                raise idtoken.IdTokenRejected(
                    "unknown_key", "the ID token is signed with a key the provider never published"
                )
            return idtoken.validate(
                token,
                key,
                header.alg,
                issuer=metadata.issuer,
                client_id=provider.client_id,
                nonce=nonce,
            )
        except idtoken.IdTokenRejected as exc:
            log.warning("oidc %s: ID token refused (%s)", provider.name, exc.reason)
            raise SignInFailed(
                "oidc_token_invalid",
                "ID token refused",
                exc.detail,
                kind="unauthenticated",
            ) from None

    async def _account(
        self, provider: OidcProvider, issuer: str, claims: dict[str, Any], ip: str, client: str
    ) -> LoginResult:
        subject = str(claims["sub"])
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        verified = email if email and claims.get("email_verified") is True else None
        linkable = verified if provider.link_verified_email else None

        async def find(conn: repo.Conn) -> int | None:
            user_id = await repo.identity_user(conn, issuer, subject)
            if user_id is None and linkable is not None:
                user_id = await repo.user_with_verified_email(conn, linkable)
            return user_id

        async def link(conn: repo.Conn, user_id: int) -> None:
            await repo.link_identity(conn, issuer, subject, user_id, provider.name, verified)

        wanted = claims.get("preferred_username")
        if not isinstance(wanted, str) or not wanted:
            wanted = email.split("@", 1)[0] if email else ""
        account = ExternalAccount(
            username=wanted[:64],
            fallback_username=f"{provider.name}-{_digest(subject)[:8]}",
            admin=_admin(provider, claims),
            verified_email=linkable,
        )
        return await self._sign_in().sign_in(account, find, link, ip, client[:256])


def _admin(provider: OidcProvider, claims: dict[str, Any]) -> bool | None:
    """``None`` when no admin claim is configured (the role is Revenge's to manage)."""
    if not provider.admin_claim:
        return None
    value = claims.get(provider.admin_claim)
    if isinstance(value, list):
        return provider.admin_value in [str(item) for item in value]
    if isinstance(value, bool):
        return value and provider.admin_value in ("true", "1", "yes")
    return value is not None and str(value) == provider.admin_value
