"""Typed face of the Rust extension ``revenge._core``.

The crate holds the hot, concurrent data structures; it knows nothing of HTTP,
SQL or configuration files. Every constructor validates its arguments and
raises ``TypeError`` / ``ValueError``; no Rust panic reaches Python.
"""

from collections.abc import Callable
from typing import ClassVar, Final, Generic, Literal, TypeVar, final

__version__: Final[str]

_T = TypeVar("_T")

LazyState = Literal["empty", "initialising", "ready", "failed"]
PressureLevel = Literal["normal", "moderate", "critical"]

class LazyInitBackoff(RuntimeError):
    """The last initialisation failed and its back-off has not elapsed.

    ``args == (message, retry_after_seconds)``; ``__cause__`` is the last error.
    """

@final
class LazyCell(Generic[_T]):
    """Atomic state machine ``empty -> initialising -> ready | failed``, reset for offload.

    ``get()`` on a ready cell is a lock-free read. Initialisation is single
    flight per attempt; a failure is retried after an exponential back-off
    (``backoff_initial`` doubling up to ``backoff_max`` seconds) rather than
    cached forever.

    A value of ``None`` is stored like any other, but ``get()`` cannot tell it
    from "not ready": use ``is_ready`` (or do not initialise to ``None``).

    All state lives in atomics and one small mutex, and no Python object is
    ever released while that mutex is held: an error whose ``__del__`` (or a
    finaliser its traceback keeps alive) reads the cell, or releases the GIL,
    cannot deadlock it. The cell takes part in garbage collection: a value, or
    a failure's traceback, that refers back to the cell does not leak. The
    module declares that it needs the GIL (it is built for the stable ABI,
    which a free-threaded interpreter does not load).

    >>> cell = LazyCell()
    >>> cell.get() is None
    True
    >>> cell.get_or_init(lambda: 42)
    42
    >>> cell.state, cell.init_count
    ('ready', 1)
    >>> cell.reset()
    42
    >>> cell.state
    'empty'
    """

    def __init__(self, *, backoff_initial: float = 0.1, backoff_max: float = 30.0) -> None: ...
    @property
    def state(self) -> LazyState: ...
    @property
    def is_ready(self) -> bool: ...
    def get(self) -> _T | None:
        """The value if ready, else ``None``. Lock-free; marks the cell used (see ``idle_seconds``)."""
    def get_or_init(self, init: Callable[[], _T], *, timeout: float | None = None) -> _T:
        """Synchronous single flight for threads.

        Runs ``init`` if this caller wins the attempt; otherwise waits (GIL
        released, in 50 ms slices so signals are still handled) for the attempt
        in flight and returns its value or raises its error: every waiter of one
        attempt gets that attempt's outcome, even when the cell is reset (or
        tried again) before the waiter wakes. An abandoned attempt (see
        ``abandon``) sends its waiters back to claim or wait for the next one.
        Raises ``LazyInitBackoff`` while a
        failure's back-off runs, ``TimeoutError`` when ``timeout`` seconds pass
        with the attempt still in flight (``None`` = wait as long as it takes),
        and ``RuntimeError`` instead of deadlocking when the thread that owns the
        attempt in flight asks (recursive ``init``, or a blocking call on the
        event-loop thread whose task holds an async attempt).
        """
    def try_begin(self) -> int | None:
        """Claim an initialisation attempt for an asynchronous initialiser.

        Returns an attempt id when the caller must initialise (state becomes
        ``initialising``); ``None`` when the cell is ready or an attempt is
        already in flight. Raises ``LazyInitBackoff`` during back-off.
        """
    def finish(self, attempt: int, value: _T) -> None:
        """Complete attempt ``attempt`` with ``value``: state becomes ``ready``.

        Raises ``ValueError`` if ``attempt`` is not the attempt in flight.
        """
    def fail(self, attempt: int, error: BaseException) -> None:
        """Fail attempt ``attempt``: state becomes ``failed`` and the back-off starts.

        Threads blocked in ``get_or_init`` on this attempt raise ``error``.
        Raises ``ValueError`` if ``attempt`` is not the attempt in flight.
        """
    def abandon(self, attempt: int) -> None:
        """End attempt ``attempt`` without an outcome (its initialiser never ran).

        For an owner that cannot finish or fail it, e.g. a task cancelled
        before its first step: no failure is counted and no back-off starts;
        the state goes back to ``empty`` (``failed`` if the attempt was a
        retry after a failure), and threads waiting on it claim or wait for
        the next attempt. Raises ``ValueError`` if ``attempt`` is not in flight.
        """
    def wait(self, timeout: float | None = None) -> LazyState:
        """Block (GIL released) until no attempt is in flight or ``timeout`` passes.

        Returns the state then. For the async side when an attempt it did not
        start (e.g. a thread's ``get_or_init``) is in flight:
        ``await asyncio.to_thread(cell.wait, 1.0)``. Raises ``RuntimeError``
        instead of blocking when the calling thread owns the attempt in flight
        (called inside ``init``, or on the event loop whose task holds an async
        attempt): it would wait for itself.
        """
    @property
    def attempt(self) -> int | None:
        """The id of the attempt in flight, if any."""
    def retry_after(self) -> float:
        """Seconds left of the current failure back-off (0.0 when none)."""
    def reset(self) -> _T | None:
        """Offload: drop the value (returned, for closing); the next get initialises again.

        Also clears a failure's back-off (state ``failed`` -> ``empty``). While an
        attempt is in flight it does nothing and returns ``None``.
        """
    @property
    def init_count(self) -> int:
        """Successful initialisations so far."""
    @property
    def failure_count(self) -> int: ...
    @property
    def last_init_seconds(self) -> float:
        """Duration of the last successful initialisation, in seconds (0.0 if none)."""
    @property
    def last_error(self) -> BaseException | None: ...
    def idle_seconds(self) -> float:
        """Seconds since the value was last returned (or set); 0.0 when not ready.

        Reads only flag a use (no clock on the hot path); this call turns the
        flag into a time stamp. So the answer is accurate to the interval
        between two calls: a use is reported as "just now" up to one polling
        interval late, and a value in use is never reported idle.
        """

@final
class Session:
    """An immutable session record owned by Rust (no Python objects inside).

    Each ``SessionCache.get`` hit returns a new ``Session`` (a copy of the
    record); two are equal when their fields are.
    """

    @property
    def user_id(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def flags(self) -> int: ...
    @property
    def expires_at(self) -> float:
        """Absolute expiry, Unix seconds."""

@final
class SessionCache:
    """Bounded (entries and bytes) token -> Session cache with TTL, idle timeout and revocation.

    Built on the ``quick_cache`` crate (CLOCK-Pro-like hot/cold queues with
    ghost entries: scan resistant). Both bounds hold at every moment:
    ``len(cache) <= max_entries`` and ``stats()["bytes"] <= max_bytes``, where
    bytes are the estimated footprint of the entries (slot, key, index).

    Expiry: an entry lives at most ``min(ttl, expires_at - now)``; one not read
    for between 7/8 and 8/8 of ``idle_timeout`` is dropped (early, never late:
    the last-access stamp is refreshed at most every ``idle_timeout / 8``).
    Dead entries are removed when read, or all at once by ``purge_expired()``.

    New entries wait in a probation queue (10 % of each shard) for a second
    hit before joining the protected hot set, which is what keeps a scan from
    flushing the hot sessions.

    Errors: a non-``str`` token, non-int ids/flags, non-number times raise
    ``TypeError``; out-of-range values (``max_entries < 32``, ``max_bytes``
    below 16768 (sixteen entries of the largest size) or above 1 TiB,
    ``ttl``/``idle_timeout`` not in
    ``(0, 10 years]``, a token of 0 or > 512 bytes, a role > 256 bytes, a
    negative ``flags``, a non-finite ``expires_at``) raise ``ValueError``.

    >>> cache = SessionCache(max_entries=1000, max_bytes=1 << 20, ttl=60.0, idle_timeout=30.0)
    >>> import time
    >>> cache.insert("tok", user_id=7, role="admin", flags=0, expires_at=time.time() + 3600)
    True
    >>> cache.get("tok").user_id
    7
    >>> cache.revoke_user(7)
    1
    >>> cache.get("tok") is None
    True
    """

    def __init__(
        self, *, max_entries: int, max_bytes: int, ttl: float, idle_timeout: float
    ) -> None: ...
    @property
    def max_entries(self) -> int: ...
    @property
    def max_bytes(self) -> int: ...
    def get(self, token: str) -> Session | None:
        """The live session for ``token``; ``None`` if absent, expired or idle too long."""
    def insert(
        self,
        token: str,
        *,
        user_id: int,
        role: str,
        flags: int,
        expires_at: float,
        epoch: int | None = None,
    ) -> bool:
        """Cache a session; kept at most ``min(ttl, expires_at - now)`` seconds.

        Replaces any entry for ``token``. Returns whether it is cached: an
        ``expires_at`` already in the past caches nothing (and drops the
        token's entry); so does an ``epoch`` that a revocation has passed.

        ``epoch``: the value of ``epoch()`` read *before* fetching the session
        from the database. If any ``revoke``/``revoke_user``/``clear`` ran since,
        the insert is refused, which closes the race where a fill re-caches a
        session revoked while it was being read.
        """
    def epoch(self) -> int:
        """The revocation epoch (bumped by every revoke, revoke_user and clear)."""
    def revoke(self, token: str) -> bool:
        """Drop the entry for ``token``; ``True`` if there was one."""
    def revoke_user(self, user_id: int) -> int:
        """Drop every cached session of ``user_id``; returns how many were dropped."""
    def purge_expired(self) -> int:
        """Drop every expired or idle entry now (O(entries)); returns how many.

        Call it periodically (e.g. every ``idle_timeout / 2``) so dead entries
        give their memory back without waiting to be read or evicted.
        """
    def advance_clock(self, seconds: float) -> None:
        """Tests only: move this cache's clock forward by ``seconds``."""
    def clear(self) -> None: ...
    def __len__(self) -> int:
        """Entries held, including dead ones not yet read or purged."""
    def stats(self) -> dict[str, int]:
        """``hits``, ``misses``, ``inserts``, ``entries``, ``bytes``,
        ``evicted_size``, ``evicted_expired``, ``evicted_idle``, ``revoked``."""

@final
class TranscodeCache:
    """Byte-budgeted segment cache; pinned entries are never evicted.

    The budget is never exceeded: admission and the evictions that make room
    happen under one lock, and an insert that cannot fit after evicting
    unpinned entries is refused (returns ``False`` / ``None``) without
    evicting anything. Eviction is least-recently-used among unpinned entries.

    What an entry costs: its value's bytes, its key's bytes (UTF-8) and a
    fixed ``ENTRY_OVERHEAD_BYTES`` (the slot, the LRU node, the ``bytes``
    object's header), so neither empty values nor long keys are free. Keys
    are at most ``MAX_KEY_BYTES``. ``stats()["bytes"]`` counts these charges.

    Pins belong to holders. ``pin`` (or ``insert_pinned``) returns a token;
    only ``unpin`` with that token releases that pin, once. The entry is
    evictable again when its last pin is released. Tokens are unique for the
    life of the cache: after ``remove`` or ``clear`` the entry's pins are gone
    with it, and if the key is inserted again an old holder's token releases
    nothing (``unpin`` returns ``False``), so it cannot drop a new holder's
    pin. A replacing ``insert`` of a pinned key keeps its holders' pins.

    The model for playback: each stream (session x segment) pins the segments
    it is about to send and keeps the token with the stream; it unpins with
    that token when the segment has been sent or the stream ends (a ``finally``),
    and never unpins a token twice. A transcoder restart that removes and
    re-inserts a segment leaves the old streams' tokens dead, which is safe:
    they only needed the old bytes, which they hold.

    Zero copy: the cache keeps the very ``bytes`` object given to ``insert``
    and ``get`` returns that object (a new reference), so a segment can be
    handed to the HTTP layer as is, any number of times.

    Pressure (``set_pressure``): ``moderate`` halves the effective budget and
    admits only pinned entries; ``critical`` evicts every unpinned entry and
    admits only pinned ones (within half the budget). Back on ``normal`` the
    effective budget grows by ``grow_step`` of the budget after each
    ``quiet_seconds`` without pressure (all the periods that passed at once).
    Pinned bytes are never evicted, so the effective budget may be exceeded by
    pinned bytes until they are unpinned (the full budget never is); ``unpin``
    enforces it at once.

    Errors: a non-``bytes`` ``data`` or a non-``int`` token raises
    ``TypeError``; an entry whose charge is larger than the whole budget, a key
    longer than ``MAX_KEY_BYTES``, a negative token, ``budget_bytes`` < 1 or >
    1 PiB, ``quiet_seconds`` outside ``[0, 86400]``, ``grow_step`` outside
    ``(0, 1]``, or an unknown level raise ``ValueError``.

    >>> cache = TranscodeCache(budget_bytes=4 << 20)
    >>> seg = bytes(1 << 20)
    >>> token = cache.insert_pinned("movie/seg1", seg)
    >>> cache.get("movie/seg1") is seg
    True
    >>> cache.set_pressure("critical")
    0
    >>> cache.insert("movie/seg2", seg)
    False
    >>> cache.unpin("movie/seg1", token), cache.unpin("movie/seg1", token)
    (True, False)
    >>> len(cache)
    0
    """

    ENTRY_OVERHEAD_BYTES: ClassVar[int]
    """Bytes charged per entry besides its value and key."""
    MAX_KEY_BYTES: ClassVar[int]
    """Longest key accepted (bytes of UTF-8)."""

    def __init__(
        self, *, budget_bytes: int, quiet_seconds: float = 30.0, grow_step: float = 0.25
    ) -> None: ...
    @property
    def budget_bytes(self) -> int: ...
    @property
    def effective_budget_bytes(self) -> int:
        """The budget after pressure: full, half on moderate, pinned-only on critical."""
    @property
    def level(self) -> PressureLevel:
        """The last level given to ``set_pressure`` (``normal`` at first)."""
    def insert(self, key: str, data: bytes) -> bool:
        """Cache ``data`` unpinned (replacing ``key``'s entry, keeping its pins); ``False`` if refused."""
    def insert_pinned(self, key: str, data: bytes) -> int | None:
        """Cache ``data`` with a new pin and return its token; ``None`` if refused.

        Admitted under pressure too (within half the budget). A replaced
        entry's pins are kept alongside the new one.
        """
    def get(self, key: str) -> bytes | None:
        """The cached segment: the same ``bytes`` object that was inserted, not a copy."""
    def pin(self, key: str) -> int | None:
        """Pin ``key``'s entry for one holder and return the token (``None`` if absent)."""
    def unpin(self, key: str, token: int) -> bool:
        """Release the pin ``token`` on ``key``'s entry; enforces the budget at once.

        ``False`` if the entry is gone or ``token`` is not one of its pins
        (released already, or a pin of an entry removed before this one).
        """
    def remove(self, key: str) -> bool:
        """Drop ``key``'s entry and its pins (their tokens release nothing after)."""
    def set_pressure(self, level: PressureLevel) -> int:
        """React to a pressure level; returns bytes evicted to meet the new budget."""
    def advance_clock(self, seconds: float) -> None:
        """Tests only: move this cache's clock forward (for the quiet period)."""
    def clear(self) -> None:
        """Drop every entry and pin."""
    def __len__(self) -> int: ...
    def stats(self) -> dict[str, int]:
        """``hits``, ``misses``, ``entries``, ``bytes`` (charged: values, keys and
        overhead), ``pinned_bytes``, ``pinned_entries``, ``evictions``,
        ``evicted_bytes``, ``rejected``, ``budget_bytes``, ``effective_budget_bytes``."""

@final
class PressureReading:
    """One reading of the memory files, with the level it led to."""

    @property
    def level(self) -> PressureLevel: ...
    @property
    def used_bytes(self) -> int:
        """cgroup: ``memory.current - inactive_file`` (working set); else ``MemTotal - MemAvailable``."""
    @property
    def limit_bytes(self) -> int:
        """cgroup ``memory.max`` (tightest up the tree, at most MemTotal), else MemTotal."""
    @property
    def available_bytes(self) -> int: ...
    @property
    def ratio(self) -> float:
        """``used / limit``, 0.0..1.0+; a limit of 0 (``memory.max`` = 0) reads as 1.0."""
    @property
    def psi_some_avg10(self) -> float | None:
        """PSI ``some avg10`` (percent) from the cgroup's ``memory.pressure`` or
        ``/proc/pressure/memory``; ``None`` where PSI is unavailable."""
    @property
    def psi_full_avg10(self) -> float | None: ...
    @property
    def source(self) -> Literal["cgroup", "meminfo"]: ...
    @property
    def high_events(self) -> int:
        """``memory.events`` ``high`` count since the previous reading (0 on the first)."""
    @property
    def max_events(self) -> int:
        """``memory.events`` ``max`` count since the previous reading."""
    @property
    def oom_kill_events(self) -> int:
        """``memory.events`` ``oom_kill`` count since the previous reading."""

@final
class MemoryPressure:
    """Reads cgroup v2, PSI and /proc/meminfo below ``root``; levels with hysteresis.

    ``critical`` when ``ratio >= critical``, PSI some avg10 ``>= psi_critical``,
    or new ``memory.events`` ``max``/``oom_kill``; ``moderate`` when
    ``ratio >= moderate``, PSI ``>= psi_moderate`` or new ``high`` events.
    Leaving a level needs the ratio below ``threshold - hysteresis`` (PSI below
    ``psi_threshold - 100 * hysteresis``). Where PSI is unavailable it is no
    signal (not a reading of 0). A cgroup ``memory.max`` of 0 is critical.
    cgroup v1's memory controller is used on hybrid hosts without a v2 memory
    controller.

    ``root`` must be a directory (``ValueError``); thresholds need
    ``0 < moderate < critical <= 1``, ``0 <= hysteresis < moderate``,
    ``0 <= psi_moderate < psi_critical <= 100`` and ``psi_moderate > 100 *
    hysteresis`` (else ``moderate`` could never be left) (``ValueError``).
    ``read()`` raises ``OSError`` when ``/proc/meminfo`` is missing or unreadable.
    """

    def __init__(
        self,
        *,
        root: str = "/",
        moderate: float = 0.80,
        critical: float = 0.95,
        hysteresis: float = 0.05,
        psi_moderate: float = 10.0,
        psi_critical: float = 40.0,
    ) -> None: ...
    def read(self) -> PressureReading:
        """Read the files (GIL released) and update the level."""
    @property
    def level(self) -> PressureLevel:
        """The level of the last reading (``normal`` before the first)."""

def memory_limit_bytes(root: str = "/") -> int:
    """Memory this process may use: cgroup v2 ``memory.max`` when set, else MemTotal.

    Raises ``OSError`` when ``root``'s ``proc/meminfo`` cannot be read.
    """
