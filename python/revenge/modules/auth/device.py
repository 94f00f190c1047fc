"""Sign in on a TV: a short code shown on the screen, approved from a signed-in device.

1. The TV asks (``start``): it gets ``user_code`` (``ABCD-EFGH``, to show) and a
   polling secret (256 bits, only its hash is stored). Both live ``CODE_TTL``.
2. The person approves the code from a signed-in session (``approve``). Guessing
   codes is throttled by the login throttle's PostgreSQL counters, under keys of
   their own (``tv <network>``, ``tv:<user id>``), and the space is 31^8 ~ 8.5e11:
   even at 10 guesses a second for a code's whole lifetime (far more than the
   throttle lets through), 20 live codes are found with probability ~1.4e-6.
3. The TV polls with its secret (``poll``): pending until approved, then once
   (``claimed_at``) a session of the approver, the same opaque session a password
   login gives. It is the approver's own identity: their role and libraries, no
   more (an API key cannot approve; a disabled approver's code gives nothing).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg

from revenge.modules.auth import repository as repo
from revenge.modules.auth.service import AccountDisabled, AuthService, LoginResult
from revenge.modules.auth.throttle import LoginThrottle, Policy, network_of
from revenge.modules.auth.tokens import new_session_token, token_hash
from revenge.runtime.errors import DomainError

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
"""31 symbols that cannot be misread for one another (no 0/O, 1/I/L)."""
CODE_LENGTH = 8
CODE_TTL = 600.0
POLL_INTERVAL = 5
MAX_LIVE_CODES_PER_NETWORK = 20
MAX_USER_CODE_INPUT = 16

APPROVAL_THROTTLE = LoginThrottle(
    ip=Policy(free=10, base=1.0, cap=300.0),
    pair=Policy(free=10, base=1.0, cap=300.0),
    account=Policy(free=20, base=1.0, cap=300.0),
    window=CODE_TTL,
)
"""Wrong codes an address or an account may try before each further one waits (doubling)."""


class DeviceCodeNotFound(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "device_code_not_found",
            "No such code",
            kind="not_found",
            detail="check the code shown on the TV",
        )


class DeviceCodeExpired(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "device_code_expired",
            "The code has expired",
            kind="gone",
            detail="ask the TV for a new code",
        )


class DeviceCodeUsed(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "device_code_used",
            "The code was already used",
            kind="gone",
            detail="a code signs in one TV once; ask the TV for a new code",
        )


class AuthorizationPending(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "authorization_pending",
            "Not approved yet",
            kind="pending",
            detail=f"poll again in {POLL_INTERVAL} s",
            retry_after=POLL_INTERVAL,
        )


class SlowDown(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "slow_down",
            "Polling too fast",
            kind="throttled",
            detail=f"poll at most every {POLL_INTERVAL} s",
            retry_after=POLL_INTERVAL,
        )


class TooManyCodes(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "too_many_device_codes",
            "Too many codes pending",
            kind="throttled",
            detail="this network holds many unused codes; use one or wait for them to expire",
            retry_after=60,
        )


@dataclass(frozen=True, slots=True)
class DeviceStart:
    user_code: str
    """As shown: ``ABCD-EFGH``."""
    device_secret: str
    expires_at: datetime
    interval: int


@dataclass(frozen=True, slots=True)
class Approval:
    client: str
    approved_at: datetime


def new_user_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def shown(code: str) -> str:
    """``ABCDEFGH`` as the TV shows it: ``ABCD-EFGH``."""
    return f"{code[:4]}-{code[4:]}"


def normalised(typed: str) -> str | None:
    """The stored form of what a person typed (case, spaces and dashes ignored), or ``None``.

    >>> normalised(" abcd-efgh "), normalised("ABCD EFG"), normalised("ABCD-EFG0")
    ('ABCDEFGH', None, None)
    """
    code = "".join(ch for ch in typed.upper() if ch not in " -")
    if len(code) != CODE_LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


class DeviceFlow:
    """The three steps above over the auth service's database, throttle and authenticator."""

    def __init__(self, auth: AuthService, throttle: LoginThrottle = APPROVAL_THROTTLE) -> None:
        self.auth = auth
        self.db = auth.db
        self.throttle = throttle

    async def start(self, ip: str, client: str) -> DeviceStart:
        """A new code for a TV at ``ip``; 429 when its network holds too many live ones."""
        network = network_of(ip)
        secret = new_session_token()
        async with self.db.transaction() as conn:
            # One network at a time: counting and inserting cannot interleave.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tv {network}",))
            cur = await conn.execute(
                "SELECT count(*) FROM device_codes WHERE network = %s AND expires_at > now() "
                "AND claimed_at IS NULL",
                (network,),
            )
            row = await cur.fetchone()
            if row is not None and row[0] >= MAX_LIVE_CODES_PER_NETWORK:
                raise TooManyCodes()
            while True:
                code = new_user_code()
                try:
                    async with conn.transaction():
                        cur = await conn.execute(
                            "INSERT INTO device_codes "
                            "(user_code, secret_hash, client, network, expires_at) "
                            "VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s)) "
                            "RETURNING expires_at",
                            (code, token_hash(secret), client[:256], network, CODE_TTL),
                        )
                        inserted = await cur.fetchone()
                    break
                except psycopg.errors.UniqueViolation:
                    continue  # an old code still holds these letters: draw again
        assert inserted is not None
        return DeviceStart(shown(code), secret, inserted[0], POLL_INTERVAL)

    async def approve(self, user_id: int, typed: str, ip: str) -> Approval:
        """Approve the code for ``user_id``'s TV session; wrong guesses are throttled."""
        network, account = f"tv {network_of(ip)}", f"tv:{user_id}"
        async with self.db.connection() as conn:
            await self.throttle.reserve(conn, network, account)  # 429, counting nothing
        code = normalised(typed)
        async with self.db.transaction() as conn:
            row = None
            if code is not None:
                cur = await conn.execute(
                    "SELECT expires_at <= now(), approved_by IS NOT NULL, client "
                    "FROM device_codes WHERE user_code = %s FOR UPDATE",
                    (code,),
                )
                row = await cur.fetchone()
            if row is None:
                raise DeviceCodeNotFound()  # the reserved attempt stays counted
            expired, approved, client = row
            if approved:
                raise DeviceCodeUsed()
            if expired:
                raise DeviceCodeExpired()
            cur = await conn.execute(
                "UPDATE device_codes SET approved_by = %s, approved_at = now() "
                "WHERE user_code = %s RETURNING approved_at",
                (user_id, code),
            )
            done = await cur.fetchone()
            await self.throttle.refund(conn, network, account, succeeded=True)
        assert done is not None
        return Approval(str(client), done[0])

    async def poll(self, secret: str, ip: str, client: str) -> LoginResult:
        """The TV's session once approved (once only); pending, expired, used: problems."""
        token = new_session_token()
        digest = token_hash(token)
        async with self.db.transaction() as conn:
            claimed = await self._claim(conn, token_hash(secret), digest, ip, client)
        if claimed is None:
            # Raised after the transaction: polled_at is kept (a raise inside rolls back).
            raise AuthorizationPending()
        user, session = claimed
        self.auth.authenticator.remember(
            digest,
            repo.Credential(
                user.id, user.username, user.role, user.created_at, session.expires_at.timestamp()
            ),
        )
        return LoginResult(token, session, user)

    async def _claim(
        self, conn: repo.Conn, secret_hash: str, digest: str, ip: str, client: str
    ) -> tuple[repo.UserRecord, repo.SessionRecord] | None:
        """The approver and the TV's new session; ``None`` while not approved."""
        cur = await conn.execute(
            "SELECT id, expires_at <= now(), claimed_at IS NOT NULL, approved_by, "
            "polled_at > now() - make_interval(secs => %s), client "
            "FROM device_codes WHERE secret_hash = %s FOR UPDATE",
            (POLL_INTERVAL - 0.5, secret_hash),
        )
        row = await cur.fetchone()
        if row is None:
            raise DeviceCodeNotFound()
        code_id, expired, claimed, approver, too_soon, described = row
        if claimed:
            raise DeviceCodeUsed()
        if expired:
            raise DeviceCodeExpired()
        if approver is None:
            if too_soon:
                raise SlowDown()
            await conn.execute(
                "UPDATE device_codes SET polled_at = now() WHERE id = %s", (code_id,)
            )
            return None
        user = await repo.user_by_id(conn, approver)
        if user is None or user.disabled:
            raise AccountDisabled()
        # Named as the approver saw it (the TV's description when it asked), else as it polls.
        session = await repo.insert_session(
            conn, user.id, digest, self.auth.settings.session_ttl, described or client, ip
        )
        await conn.execute(
            "UPDATE device_codes SET claimed_at = now(), polled_at = now() WHERE id = %s",
            (code_id,),
        )
        return user, session


async def delete_stale_device_codes(conn: repo.Conn) -> int:
    """Codes a day past their expiry (kept that long so a late poll still hears 'expired')."""
    cur = await conn.execute("DELETE FROM device_codes WHERE expires_at < now() - interval '1 day'")
    return cur.rowcount
