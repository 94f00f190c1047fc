"""Login throttling with growing delays that only the failing party can trigger.

Three counters of recent failures, each with its own free allowance, after
which every further failure doubles the wait before the next attempt (up to a
cap); an attempt during the wait gets 429 with ``Retry-After``:

* per client IP — an address guessing many accounts slows itself down;
* per (account, IP) — one address guessing one account slows itself down;
* per account — a distributed guess against one account slows down every
  address *that has already failed on that account*. An address with no
  failure of its own (the owner at home) is never held back by it, so nobody
  can lock somebody else out; they can only spend their own attempts.

Counters forget after ``window`` seconds without failure; a successful login
clears the (account, IP) counter. The state is per worker and bounded in size.

>>> now = [0.0]
>>> t = LoginThrottle(clock=lambda: now[0], pair=Policy(free=2, base=1.0, cap=8.0))
>>> for _ in range(3): t.record_failure("1.2.3.4", "alice")
>>> t.retry_after("1.2.3.4", "alice") > 0, t.retry_after("5.6.7.8", "alice")
(True, 0.0)
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from revenge.http import Problem, Request


@dataclass(frozen=True, slots=True)
class Policy:
    free: int
    """Failures allowed before any delay."""
    base: float
    """First delay, seconds; doubles with each further failure."""
    cap: float
    """Longest delay, seconds."""

    def delay(self, failures: int) -> float:
        over = failures - self.free
        if over <= 0:
            return 0.0
        return min(self.cap, self.base * (2.0 ** min(over - 1, 30)))


@dataclass(slots=True)
class _Counter:
    failures: int
    last_failure: float


class _Table:
    __slots__ = ("_items", "_max", "_policy", "_window")

    def __init__(self, policy: Policy, window: float, max_entries: int) -> None:
        self._policy = policy
        self._window = window
        self._max = max_entries
        self._items: dict[object, _Counter] = {}

    def wait(self, key: object, now: float) -> float:
        counter = self._items.get(key)
        if counter is None:
            return 0.0
        if now - counter.last_failure > self._window:
            del self._items[key]
            return 0.0
        return max(0.0, counter.last_failure + self._policy.delay(counter.failures) - now)

    def has(self, key: object, now: float) -> bool:
        counter = self._items.get(key)
        return counter is not None and now - counter.last_failure <= self._window

    def fail(self, key: object, now: float) -> None:
        counter = self._items.pop(key, None)
        if counter is None or now - counter.last_failure > self._window:
            counter = _Counter(0, now)
        counter.failures += 1
        counter.last_failure = now
        self._items[key] = counter  # re-inserted: dict order is least recently failed first
        if len(self._items) > self._max:
            self._evict(now)

    def forget(self, key: object) -> None:
        self._items.pop(key, None)

    def _evict(self, now: float) -> None:
        expired = [k for k, c in self._items.items() if now - c.last_failure > self._window]
        for key in expired:
            del self._items[key]
        while len(self._items) > self._max:
            del self._items[next(iter(self._items))]

    def __len__(self) -> int:
        return len(self._items)


class LoginThrottle:
    """``retry_after(ip, account)`` before checking a password; ``record_*`` after."""

    def __init__(
        self,
        *,
        ip: Policy = Policy(free=20, base=1.0, cap=300.0),
        pair: Policy = Policy(free=5, base=1.0, cap=900.0),
        account: Policy = Policy(free=50, base=1.0, cap=60.0),
        window: float = 900.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ip = _Table(ip, window, max_entries)
        self._pair = _Table(pair, window, max_entries)
        self._account = _Table(account, window, max_entries)
        self._clock = clock

    def retry_after(self, ip: str, account: str) -> float:
        """Seconds before this address may try this account again; 0.0 when it may now."""
        now = self._clock()
        account = account.lower()
        pair = (account, ip)
        wait = max(self._ip.wait(ip, now), self._pair.wait(pair, now))
        if self._pair.has(pair, now):
            wait = max(wait, self._account.wait(account, now))
        return wait

    def check(self, ip: str, account: str) -> None:
        """Raise 429 (``too_many_attempts``, with ``Retry-After``) while a delay runs."""
        wait = self.retry_after(ip, account)
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            raise Problem(
                429,
                "too_many_attempts",
                "Too many login attempts",
                f"try again in {seconds} s",
                headers=[("retry-after", str(seconds))],
            )

    def record_failure(self, ip: str, account: str) -> None:
        now = self._clock()
        account = account.lower()
        self._ip.fail(ip, now)
        self._pair.fail((account, ip), now)
        self._account.fail(account, now)

    def record_success(self, ip: str, account: str) -> None:
        self._pair.forget((account.lower(), ip))


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
