"""Users, login sessions and API keys; the hot authentication middleware.

One entry point wires it all::

    auth = install(router, settings, db, pubsub=cache)   # cache: optional Redis broadcast
    app = HttpApp(router, authenticator=auth.authenticator, phases=[db_phase, *auth.phases])

``install`` adds the routes; ``auth.phases`` (after the database phase) prepare the
password hasher, create the bootstrap admin on an empty users table and start the
revocation listener.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from revenge._core import SessionCache
from revenge.config import Settings
from revenge.http import Phase, Router
from revenge.infra.database import Database
from revenge.infra.jobs import add_cleanup_step
from revenge.modules.auth import repository
from revenge.modules.auth.authenticator import Authenticator
from revenge.modules.auth.directory import UserDirectory
from revenge.modules.auth.passwords import PasswordHasher
from revenge.modules.auth.revocation import (
    Message,
    PubSub,
    RevocationListener,
    RevocationPublisher,
)
from revenge.modules.auth.routes import add_routes
from revenge.modules.auth.service import AuthService
from revenge.modules.auth.throttle import ClientAddress, LoginThrottle
from revenge.runtime.health import Category, Check

__all__ = ["AuthModule", "AuthService", "Authenticator", "install"]

add_cleanup_step("expired_sessions", repository.delete_expired_sessions)

_BYTES_PER_ENTRY_ESTIMATE = 256


@dataclass(slots=True)
class AuthModule:
    authenticator: Authenticator
    service: AuthService
    cache: SessionCache
    listener: RevocationListener
    phases: list[Phase] = field(default_factory=list)

    def health_check(self) -> Check:
        """Warm check: is this worker hearing revocations? (If not, the cache TTL bounds it.)"""

        async def probe() -> None:
            if not self.listener.listening:
                raise RuntimeError(
                    "revocation listener not connected; cached credentials live at most "
                    "auth.session_cache_ttl"
                )

        return Check("auth_revocations", Category.WARM, probe, timeout=1.0)

    def stats(self) -> dict[str, int]:
        """Counters for metrics: the Rust cache's, plus misses, revocations heard, refusals."""
        return {
            **{f"session_cache_{k}": v for k, v in self.cache.stats().items()},
            "auth_misses": self.authenticator.misses,
            "revocations_received": self.listener.received,
            "revocation_listener_reconnects": self.listener.reconnects,
            "password_checks_refused": self.service.hasher.rejected,
        }


def build_session_cache(settings: Settings) -> SessionCache:
    max_bytes = settings.memory.session_cache_max_mb << 20
    return SessionCache(
        max_entries=max(1024, max_bytes // _BYTES_PER_ENTRY_ESTIMATE),
        max_bytes=max_bytes,
        ttl=settings.auth.session_cache_ttl,
        idle_timeout=settings.auth.session_idle_timeout,
    )


def install(
    router: Router, settings: Settings, db: Database, *, pubsub: PubSub | None = None
) -> AuthModule:
    """Add the auth routes to ``router``; the middleware and start-up phases to wire."""
    auth = settings.auth
    cache = build_session_cache(settings)
    idle = auth.session_idle_timeout

    async def resolve_session(digest: str) -> repository.Credential | None:
        async with db.connection() as conn:
            return await repository.resolve_session(conn, digest, idle)

    async def resolve_api_key(digest: str) -> repository.Credential | None:
        async with db.connection() as conn:
            return await repository.resolve_api_key(conn, digest)

    authenticator = Authenticator(
        cache,
        UserDirectory(),
        resolve_session=resolve_session,
        resolve_api_key=resolve_api_key,
        cookie_name=auth.cookie_name,
        api_key_header=auth.api_key_header,
    )

    def apply(message: Message) -> None:
        if message[0] == "s":
            authenticator.revoke_hash(message[1])
        else:
            authenticator.revoke_user(message[1])

    listener = RevocationListener(
        lambda: db.url, apply, authenticator.forget_everything, pubsub=pubsub
    )
    hasher = PasswordHasher(auth)
    service = AuthService(
        db, auth, hasher, LoginThrottle(), authenticator, RevocationPublisher(pubsub)
    )
    add_routes(router, service, ClientAddress(settings.server.trusted_proxies))

    async def start() -> None:
        await hasher.start()
        await service.bootstrap_admin()
        await listener.start()

    async def stop() -> None:
        await listener.stop()
        hasher.close()

    return AuthModule(authenticator, service, cache, listener, [Phase("auth", start, stop)])
