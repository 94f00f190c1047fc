"""The in-process L1: a small LRU of byte values with a TTL, bounded by entries and bytes.

Values are stored as bytes so callers never share mutable objects and the byte
budget is exact.

>>> now = [0.0]
>>> l1 = LocalCache(max_entries=2, max_bytes=1024, clock=lambda: now[0])
>>> l1.put("a", b"1", ttl=10); l1.put("b", b"2", ttl=10); l1.get("a")
b'1'
>>> l1.put("c", b"3", ttl=10)  # evicts b, the least recently used
>>> l1.get("b") is None, len(l1)
(True, 2)
>>> now[0] = 11.0
>>> l1.get("a") is None
True
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class LocalCache:
    """Least-recently-used, TTL-bounded, byte-budgeted map of ``str -> bytes``."""

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 16 << 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        """Bytes held by values and keys (an estimate of the payload, not of Python overhead)."""
        return self._bytes

    def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= self._clock():
            self._remove(key)
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: str, value: bytes, ttl: float) -> None:
        size = len(key) + len(value)
        if ttl <= 0 or size > self.max_bytes:
            self._remove(key)
            return
        self._remove(key)
        self._items[key] = (self._clock() + ttl, value)
        self._bytes += size
        while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
            old_key, _ = next(iter(self._items.items()))
            self._remove(old_key)
            self.evictions += 1

    def shrink(self, fraction: float) -> int:
        """Evict least recently used entries down to ``fraction`` of both limits;
        the number evicted (memory pressure).

        >>> l1 = LocalCache(max_entries=4)
        >>> for k in "abcd": l1.put(k, b"v", ttl=10)
        >>> l1.shrink(0.5), len(l1), l1.get("d")
        (2, 2, b'v')
        """
        entries, nbytes = int(self.max_entries * fraction), int(self.max_bytes * fraction)
        evicted = 0
        while self._items and (len(self._items) > entries or self._bytes > nbytes):
            self._remove(next(iter(self._items)))
            evicted += 1
        self.evictions += evicted
        return evicted

    def pop(self, key: str) -> None:
        self._remove(key)

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0

    def _remove(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= len(key) + len(item[1])
