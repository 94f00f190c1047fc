"""Login throttling with growing delays, counted in PostgreSQL: one allowance for every worker and host.

Three counters, each with its own free allowance, after which every further
failure doubles the wait before the next attempt (up to a cap); an attempt
during the wait gets 429 with ``Retry-After``:

* per client network — an address guessing many accounts slows itself down
  (IPv4 by address, IPv6 by /64: one host holds a whole /64);
* per (account, network) — one address guessing one account slows itself down;
* per account — a distributed guess against one account slows down every
  network the account has never logged in from. A network with a successful
  login on that account is never held back by it, so nobody can lock the owner
  out; a new network waits at most the account cap.

An attempt is *reserved* before the password is checked (counted as a failure
in one statement, ``login_reserve``), so concurrent tries cannot all pass the
check before the first failure is written; a success (or an attempt the hasher
refused) gives it back (``login_refund``). Counters forget after ``window``
seconds without an attempt. Redis is optional, so the counters live in the
database every process already shares; it costs one function call per login,
beside an argon2id check.

>>> network_of("2001:db8:1:2:aaaa::1"), network_of("::ffff:198.51.100.7")
('2001:db8:1:2::/64', '198.51.100.7')
>>> Policy(free=2, base=1.0, cap=5.0).delay(4)
2.0
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, replace

from revenge.config import AuthSettings
from revenge.http import Request
from revenge.modules.auth import repository as repo
from revenge.runtime.errors import DomainError


@dataclass(frozen=True, slots=True)
class Policy:
    free: int
    """Failures allowed before any delay."""
    base: float
    """First delay, seconds; doubles with each further failure."""
    cap: float
    """Longest delay, seconds."""

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` failures (SQL's ``login_delay`` computes the same)."""
        over = failures - self.free
        if over <= 0:
            return 0.0
        return min(self.cap, self.base * (2.0 ** min(over - 1, 30)))


DEFAULT_IP = Policy(free=20, base=1.0, cap=300.0)
DEFAULT_PAIR = Policy(free=5, base=1.0, cap=900.0)
DEFAULT_ACCOUNT = Policy(free=50, base=1.0, cap=60.0)


def network_of(ip: str) -> str:
    """The throttle's key for a client address: IPv4 as is, IPv6 by its /64."""
    try:
        address = ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return ip[:64]  # not an address (a Unix socket peer): counted as given
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class TooManyAttempts(DomainError):
    """429 ``too_many_attempts`` with ``Retry-After``: this address waits before its next try."""

    def __init__(self, wait: float) -> None:
        seconds = max(1, int(wait + 0.999))
        super().__init__(
            "too_many_attempts",
            "Too many login attempts",
            kind="throttled",
            detail=f"try again in {seconds} s",
            retry_after=seconds,
        )


class LoginThrottle:
    """``reserve`` before checking a password, ``refund`` when it was right (or never checked)."""

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> LoginThrottle:
        """The default allowances, with ``auth.login_delay`` as every first wait."""
        base = settings.login_delay
        return cls(
            ip=replace(DEFAULT_IP, base=base, cap=max(base, DEFAULT_IP.cap)),
            pair=replace(DEFAULT_PAIR, base=base, cap=max(base, DEFAULT_PAIR.cap)),
            account=replace(DEFAULT_ACCOUNT, base=base, cap=max(base, DEFAULT_ACCOUNT.cap)),
            window=settings.login_window,
        )

    def __init__(
        self,
        *,
        ip: Policy = DEFAULT_IP,
        pair: Policy = DEFAULT_PAIR,
        account: Policy = DEFAULT_ACCOUNT,
        window: float = 900.0,
    ) -> None:
        self.ip, self.pair, self.account = ip, pair, account
        self.policies = repo.ThrottlePolicies(
            window,
            (ip.free, ip.base, ip.cap),
            (pair.free, pair.base, pair.cap),
            (account.free, account.base, account.cap),
        )

    async def reserve(self, conn: repo.Conn, network: str, account: str) -> None:
        """Count this attempt, or raise 429 (``too_many_attempts``, ``Retry-After``)."""
        wait = await repo.reserve_login_attempt(conn, network, account, self.policies)
        if wait > 0:
            raise TooManyAttempts(wait)

    async def refund(self, conn: repo.Conn, network: str, account: str, *, succeeded: bool) -> None:
        await repo.refund_login_attempt(conn, network, account, succeeded)


class ClientAddress:
    """The caller's IP: the peer, or ``X-Forwarded-For`` when the peer is a trusted proxy.

    >>> addr = ClientAddress(["10.0.0.0/8"])
    >>> addr.resolve("10.1.2.3", "203.0.113.9, 10.0.0.7")
    '203.0.113.9'
    >>> addr.resolve("198.51.100.1", "203.0.113.9")
    '198.51.100.1'
    """

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._networks = tuple(
            ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies
        )

    def trusted(self, address: str) -> bool:
        if not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def resolve(self, peer: str, forwarded_for: str | None) -> str:
        peer = peer.strip("[]")  # an IPv6 peer may arrive as "[::1]"
        if not forwarded_for or not self.trusted(peer):
            return peer
        # Walk from the nearest hop back; the first address not ours is the client.
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip().strip("[]")
            if not hop:
                continue
            if not self.trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer  # garbage in the header: trust only what we saw
        return peer  # every hop is one of our proxies

    def of(self, request: Request) -> str:
        return self.resolve(request.client, request.headers.get("x-forwarded-for"))

    def is_tls(self, request: Request) -> bool:
        if request.scheme == "https":
            return True
        proto = request.headers.get("x-forwarded-proto")
        return (
            proto is not None and proto.strip().lower() == "https" and self.trusted(request.client)
        )
