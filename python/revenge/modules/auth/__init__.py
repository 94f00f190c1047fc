"""Users, login sessions and API keys; the hot authentication middleware.

``MODULE`` installs it: the routes, the request authenticator, and its services:

* ``session_cache`` (hot): the Rust ``SessionCache`` that answers most requests;
* ``auth`` (warm, critical): :class:`AuthService`; starting it readies the password
  hasher and creates the bootstrap admin on an empty users table;
* ``auth_revocations`` (warm): the listener that drops revoked credentials from this
  process's cache (PostgreSQL NOTIFY, and Redis when configured);

plus the ``expired_sessions`` cleanup step and ``migrations/``. Other modules read
the caller from ``request.principal``; they never import this package's internals.
What they may use is exported here: ``read_preferences(conn, user_id)`` gives a
user's :class:`UserPreferences` (the playback decision's languages and bitrate cap);
:class:`ExternalSignIn` gives a module that proves identity another way (single
sign-on) the same session as a password login; ``admin_addresses(conn)`` the e-mail
addresses of the enabled administrators.

Password reset by e-mail and invitation e-mails go through the e-mail module's
outbox (``password_reset_mail`` jobs; see :mod:`.reset`).
"""

from __future__ import annotations

from importlib import resources

from revenge._core import SessionCache
from revenge.config import Settings
from revenge.contract import JOBS, JobContext, Module, ModuleContext, Payload, ServiceKey, Tier
from revenge.infra.jobs import Jobs
from revenge.modules.auth import repository
from revenge.modules.auth.authenticator import Authenticator
from revenge.modules.auth.device import DeviceFlow, delete_stale_device_codes
from revenge.modules.auth.directory import UserDirectory
from revenge.modules.auth.email_routes import add_email_routes
from revenge.modules.auth.external import ExternalAccount, ExternalSignIn
from revenge.modules.auth.invitations import Invitations, delete_stale_invitations
from revenge.modules.auth.management import UserManagement
from revenge.modules.auth.passwords import PasswordHasher
from revenge.modules.auth.people_routes import (
    add_device_routes,
    add_invitation_routes,
    add_preference_routes,
)
from revenge.modules.auth.preferences import UserPreferences, read_preferences
from revenge.modules.auth.repository import admin_addresses
from revenge.modules.auth.reset import PASSWORD_RESET_MAIL, PasswordResets, delete_stale_resets
from revenge.modules.auth.revocation import Message, RevocationListener, RevocationPublisher
from revenge.modules.auth.routes import add_routes
from revenge.modules.auth.service import AuthService, LoginResult
from revenge.modules.auth.setup_routes import add_setup_routes
from revenge.modules.auth.throttle import ClientAddress, LoginThrottle
from revenge.modules.auth.user_routes import add_user_routes

__all__ = [
    "AUTH",
    "MODULE",
    "REVOCATIONS",
    "SESSION_CACHE",
    "AuthService",
    "Authenticator",
    "ClientAddress",
    "ExternalAccount",
    "ExternalSignIn",
    "LoginResult",
    "UserPreferences",
    "admin_addresses",
    "build_session_cache",
    "install",
    "read_preferences",
]

SESSION_CACHE: ServiceKey[SessionCache] = ServiceKey("session_cache", Tier.HOT)
AUTH: ServiceKey[AuthService] = ServiceKey("auth", Tier.WARM)
REVOCATIONS: ServiceKey[RevocationListener] = ServiceKey("auth_revocations", Tier.WARM)

_BYTES_PER_ENTRY_ESTIMATE = 256


def build_session_cache(settings: Settings) -> SessionCache:
    max_bytes = settings.memory.session_cache_max_mb << 20
    return SessionCache(
        max_entries=max(1024, max_bytes // _BYTES_PER_ENTRY_ESTIMATE),
        max_bytes=max_bytes,
        ttl=settings.auth.session_cache_ttl,
        idle_timeout=settings.auth.session_idle_timeout,
    )


def install(ctx: ModuleContext) -> None:
    """Routes, the authenticator, the services above, a cleanup step and the migrations."""
    settings, db = ctx.settings, ctx.database
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
        lambda: db.url,
        apply,
        authenticator.forget_everything,
        on_state=authenticator.trust_cache,
        pubsub=ctx.cache,
    )
    hasher = PasswordHasher(auth)
    service = AuthService(
        db,
        auth,
        hasher,
        LoginThrottle.from_settings(auth),
        authenticator,
        RevocationPublisher(ctx.cache),
    )
    addresses = ClientAddress(settings.server.trusted_proxies)
    services = ctx.services

    def jobs() -> Jobs:
        return services.get(JOBS)

    users = UserManagement(service)
    resets = PasswordResets(service, settings.email)
    add_routes(ctx.router, service, addresses)
    add_user_routes(ctx.router, users)
    add_email_routes(ctx.router, users, resets, jobs, addresses)
    add_preference_routes(ctx.router, db)
    add_device_routes(ctx.router, DeviceFlow(service), addresses)
    add_invitation_routes(ctx.router, Invitations(service), addresses, settings.email, jobs)
    add_setup_routes(ctx.router, service, addresses)
    ctx.authenticate_with(authenticator)

    ctx.provide(SESSION_CACHE, lambda: cache)
    pressure = ctx.services.pressure
    if pressure is not None:
        pressure.attach_session_cache("sessions", cache)

    async def start_auth() -> AuthService:
        await hasher.start()
        await service.fill_username_keys()
        await service.bootstrap_admin()
        return service

    ctx.provide(AUTH, start_auth, close=lambda s: s.hasher.close(), critical=True)

    async def start_listener() -> RevocationListener:
        await listener.start()
        return listener

    ctx.provide(REVOCATIONS, start_listener, close=lambda lsn: lsn.stop(), health=_listening)
    ctx.cleanup_step("expired_sessions", repository.delete_expired_sessions)
    ctx.cleanup_step("login_counters", repository.delete_stale_login_counters)
    ctx.cleanup_step("device_codes", delete_stale_device_codes)
    ctx.cleanup_step("invitations", delete_stale_invitations)
    ctx.cleanup_step("password_resets", delete_stale_resets)

    async def reset_mail(job: JobContext, payload: Payload) -> None:
        await resets.mail(jobs(), str(payload["address"]))

    ctx.job(PASSWORD_RESET_MAIL, reset_mail)
    ctx.migrations(resources.files(__name__) / "migrations")


def _listening(listener: RevocationListener) -> None:
    """Is this process hearing revocations? (If not, every request asks the database.)"""
    if not listener.listening:
        raise RuntimeError("revocation listener not connected; every request asks the database")


MODULE = Module("auth", install)
