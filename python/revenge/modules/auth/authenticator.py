"""The hot middleware: credential -> SHA-256 -> Rust ``SessionCache`` -> :class:`Principal`.

A hit costs one header read, one SHA-256 and two dictionary-speed lookups; no
database, no await. A miss resolves the hash through the pool (sessions, or API
keys for the API-key header), fills the cache and the user directory, and from
then on the worker answers from memory for at most ``auth.session_cache_ttl``.

Credentials, in order: ``Authorization: Bearer <token>``, the API-key header,
the session cookie. Session tokens and API keys share one cache keyed by hash;
a flag bit keeps a session token from being accepted in the API-key header and
the reverse.

A browser sends the cookie on its own, also when another site makes it post a
form or an image request here; so a request that may change state (anything but
GET, HEAD, OPTIONS) carrying only the cookie must also carry :data:`CSRF_HEADER`,
which a cross-site form cannot set and a cross-site script may not send without a
CORS preflight this server never grants. Bearer tokens and API keys are never sent
by a browser on its own, so they need no such header.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from hashlib import sha256

from revenge._core import SessionCache
from revenge.http import Principal, Problem, Request
from revenge.modules.auth.directory import UserDirectory, UserView
from revenge.modules.auth.repository import Credential
from revenge.modules.auth.tokens import MAX_CREDENTIAL_LENGTH, api_key_id

log = logging.getLogger(__name__)

FLAG_API_KEY = 1
"""``Session.flags`` bit: the cached entry is an API key, not a login session."""

Resolver = Callable[[str], Awaitable[Credential | None]]

_CHALLENGE = (("www-authenticate", 'Bearer realm="revenge"'),)

CSRF_HEADER = "x-requested-with"
"""Required (any value) beside a cookie on state-changing requests; the web client sends it."""
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


def csrf_refused() -> Problem:
    return Problem(
        403,
        "csrf_header_required",
        "Cross-site request refused",
        f"a request authenticated by the session cookie that changes state must send the "
        f"{CSRF_HEADER} header",
    )


def unauthenticated(detail: str) -> Problem:
    return Problem(401, "unauthenticated", "Authentication required", detail, headers=_CHALLENGE)


def cookie_value(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header, or ``None``.

    A plain split instead of ``http.cookies``: this runs on every browser request,
    and ``SimpleCookie`` costs about 15 us where this costs about 1.

    >>> cookie_value('theme=dark; revenge_session=abc-_1; x="q"', "revenge_session")
    'abc-_1'
    >>> cookie_value('x="q"', "x"), cookie_value("revenge_session_old=1", "revenge_session")
    ('q', None)
    """
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value
    return None


class Authenticator:
    """``await authenticator(request) -> Principal`` or a 401 problem."""

    __slots__ = (
        "_api_key_header",
        "_cache",
        "_cookie_name",
        "_directory",
        "_max_principals",
        "_principals",
        "_resolve_key",
        "_resolve_session",
        "generation",
        "misses",
        "trusted",
    )

    def __init__(
        self,
        cache: SessionCache,
        directory: UserDirectory,
        *,
        resolve_session: Resolver,
        resolve_api_key: Resolver,
        cookie_name: str,
        api_key_header: str,
        max_principals: int = 100_000,
    ) -> None:
        self._cache = cache
        self._principals: dict[str, Principal] = {}
        """Ready Principals by credential hash; used only after the Rust cache says valid."""
        self._max_principals = max_principals
        self._directory = directory
        self._resolve_session = resolve_session
        self._resolve_key = resolve_api_key
        self._cookie_name = cookie_name
        self._api_key_header = api_key_header.lower()
        self.generation = 0
        """Bumped by every revocation; a miss started before one must not fill the cache."""
        self.misses = 0
        self.trusted = False
        """Whether cache hits may be served: only while this worker hears revocations."""

    @property
    def directory(self) -> UserDirectory:
        return self._directory

    def cached(self, request: Request) -> Principal | None:
        """The hit path, without an await: the Principal if the Rust cache holds the credential.

        ``None`` on a miss (then ``await authenticator(request)`` asks the database);
        a 401 problem for a missing or malformed credential. Always ``None`` while
        the cache is not trusted (revocations may be passing this worker by).
        """
        if not self.trusted:
            return None
        headers = request.headers
        secret = headers.get("authorization")
        if secret is not None and secret.startswith("Bearer "):
            # The common case inline; _credential has every other form and the errors.
            secret = secret[7:].strip()
            flags = 0
            if not secret or len(secret) > MAX_CREDENTIAL_LENGTH:
                secret, flags = self._credential(headers, request.method)  # raises the 401
        else:
            secret, flags = self._credential(headers, request.method)
        digest = sha256(secret.encode()).hexdigest()
        session = self._cache.get(digest)
        if session is not None and session.flags == flags:
            # The Rust cache decides validity; the Principal is only a ready-made answer.
            principal = self._principals.get(digest)
            if principal is not None:
                return principal
            view = self._directory.get(session.user_id)
            if view is not None:
                return self._principal(digest, view, secret if flags else None)
        return None

    async def __call__(self, request: Request) -> Principal:
        principal = self.cached(request)
        if principal is not None:
            return principal
        secret, flags = self._credential(request.headers, request.method)
        return await self._miss(secret, sha256(secret.encode()).hexdigest(), flags)

    def _credential(self, headers: Mapping[str, str], method: str) -> tuple[str, int]:
        """The secret and its ``flags`` (``FLAG_API_KEY`` or 0), or a 401 problem
        (a 403 for a cookie on a state-changing request without :data:`CSRF_HEADER`)."""
        secret = headers.get("authorization")
        if secret is not None:
            if not secret.startswith("Bearer ") and secret[:7].lower() != "bearer ":
                raise unauthenticated("the Authorization header must use the Bearer scheme")
            secret = secret[7:].strip()
            flags = 0
        else:
            secret = headers.get(self._api_key_header)
            if secret is not None:
                flags = FLAG_API_KEY
            else:
                flags = 0
                cookies = headers.get("cookie")
                if cookies is not None:
                    secret = cookie_value(cookies, self._cookie_name)
                    if secret and method not in SAFE_METHODS and CSRF_HEADER not in headers:
                        raise csrf_refused()
        if not secret or len(secret) > MAX_CREDENTIAL_LENGTH:
            raise unauthenticated("send a session token (Bearer or cookie) or an API key")
        return secret, flags

    def _principal(self, digest: str, view: UserView, api_key: str | None) -> Principal:
        if api_key is None:
            principal = Principal(view.id, view.username, view.role, "session", digest)
        else:
            principal = Principal(view.id, view.username, view.role, "api_key", api_key[4:20])
        if len(self._principals) >= self._max_principals:
            self._principals.clear()
        self._principals[digest] = principal
        return principal

    async def _miss(self, secret: str, digest: str, flags: int) -> Principal:
        self.misses += 1
        generation = self.generation
        if flags:
            key_id = api_key_id(secret)
            credential = await self._resolve_key(digest) if key_id else None
        else:
            key_id = None
            credential = await self._resolve_session(digest)
        if credential is None:
            raise unauthenticated("the credential is unknown, expired or revoked")
        if generation == self.generation:
            view = self.remember(digest, credential, flags)
            return self._principal(digest, view, secret if key_id is not None else None)
        # Revoked meanwhile: answer this request (it began before), cache nothing.
        view = UserDirectory.view_of(
            credential.user_id, credential.username, credential.role, credential.created_at
        )
        if key_id is not None:
            return Principal(view.id, view.username, view.role, "api_key", key_id)
        return Principal(view.id, view.username, view.role, "session", digest)

    def remember(self, digest: str, credential: Credential, flags: int = 0) -> UserView:
        """Cache a resolved credential and its user's profile (also used right after login)."""
        self._principals.pop(digest, None)
        self._cache.insert(
            digest,
            user_id=credential.user_id,
            role=credential.role,
            flags=flags,
            expires_at=min(credential.expires_at, time.time() + 366 * 86400.0),
        )
        return self._directory.put(
            credential.user_id, credential.username, credential.role, credential.created_at
        )

    # -- revocation ----------------------------------------------------------------

    def revoke_hash(self, digest: str) -> None:
        self.generation += 1
        self._cache.revoke(digest)
        self._principals.pop(digest, None)

    def revoke_user(self, user_id: int) -> None:
        self.generation += 1
        self._cache.revoke_user(user_id)
        self._directory.drop(user_id)

    def trust_cache(self, trusted: bool) -> None:
        """Serve hits (``True``) or treat them as misses (``False``); the listener's state."""
        self.trusted = trusted

    def forget_everything(self) -> None:
        """After missed revocations: nothing cached may be trusted any more."""
        self.generation += 1
        self._cache.clear()
        self._directory.clear()
        self._principals.clear()
