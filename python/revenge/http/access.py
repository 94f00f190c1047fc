"""Request ids and the one access line of each request.

The id is the ``X-Request-Id`` a trusted proxy (``server.trusted_proxies``) sent, when
it is 1-128 characters of ``A-Z a-z 0-9 . _ : -``; otherwise one made here: a random
per-process prefix and a counter, ``3f9c01a2b7-1042`` (unique across workers and
restarts, ~0.1 us). It
goes back in the ``X-Request-Id`` header of every response and in every problem body.

The line (see :mod:`revenge.runtime.logs` for the formats) holds the id, method, route
pattern (never the raw path: no client value, no id from the URL), status, duration
until the response was ready, and the user id. It goes to the batched access sink as a
tuple, not through ``logging`` (a ``LogRecord`` costs more than routing the request);
the sink formats and writes it off the request's path.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import secrets
from collections.abc import Iterable
from time import time

from revenge.runtime import logs

_OFFERED = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_MAX_PEERS = 1024


class AccessLog:
    """Makes (or accepts) request ids and writes access lines for one process."""

    __slots__ = ("_networks", "_next", "_peers", "_prefix", "sink", "trusts_proxies")

    def __init__(
        self, trusted_proxies: Iterable[str] = (), sink: logs.AccessSink | None = None
    ) -> None:
        self._networks = tuple(
            ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies
        )
        self._prefix = secrets.token_hex(5) + "-"
        self._next = itertools.count(1).__next__
        self._peers: dict[str, bool] = {}
        self.trusts_proxies = bool(self._networks)
        self.sink = sink if sink is not None else logs.access

    def request_id(self, offered: str | None, peer: str | None) -> str:
        """``offered`` when a trusted proxy sent a well-formed one, else a new id."""
        if (
            offered
            and peer is not None
            and self._networks
            and self.trusted(peer)
            and _OFFERED.fullmatch(offered)
        ):
            return offered
        return self._prefix + str(self._next())

    def new_id(self) -> str:
        return self._prefix + str(self._next())

    def trusted(self, peer: str) -> bool:
        known = self._peers.get(peer)
        if known is None:
            try:
                ip = ipaddress.ip_address(peer.strip("[]"))
            except ValueError:
                known = False
            else:
                known = any(ip in network for network in self._networks)
            if len(self._peers) >= _MAX_PEERS:
                self._peers.clear()
            self._peers[peer] = known
        return known

    def line(
        self,
        request_id: str,
        method: str,
        route: str | None,
        status: int,
        seconds: float,
        user_id: int | None,
    ) -> None:
        """Hand the access line to the sink (the caller checked ``sink.enabled``)."""
        self.sink.add((time(), request_id, method, route, status, seconds, user_id))
