"""revenge._core.SessionCache: bounds, expiry, revocation, statistics, bad input."""

from __future__ import annotations

import secrets
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revenge._core import Session, SessionCache

HOUR = 3600.0


def _cache(**overrides: float) -> SessionCache:
    kwargs: dict[str, float] = {
        "max_entries": 1000,
        "max_bytes": 1 << 20,
        "ttl": 600.0,
        "idle_timeout": 300.0,
    }
    kwargs.update(overrides)
    return SessionCache(**kwargs)  # type: ignore[arg-type]


def _token(i: int) -> str:
    return f"{i:043d}"


def _put(cache: SessionCache, token: str, user_id: int = 1, *, ttl: float = HOUR) -> None:
    cache.insert(token, user_id=user_id, role="user", flags=3, expires_at=time.time() + ttl)


def test_insert_then_get_returns_the_record() -> None:
    cache = _cache()
    expires = time.time() + HOUR
    cache.insert("t" * 43, user_id=42, role="admin", flags=5, expires_at=expires)
    got = cache.get("t" * 43)
    assert isinstance(got, Session)
    assert (got.user_id, got.role, got.flags, got.expires_at) == (42, "admin", 5, expires)
    assert got == cache.get("t" * 43)
    assert cache.get("u" * 43) is None
    assert len(cache) == 1


def test_token_equality_not_identity() -> None:
    cache = _cache()
    token = secrets.token_urlsafe(32)
    _put(cache, token, 9)
    same_text = "".join(list(token))  # a different str object
    assert same_text is not token
    got = cache.get(same_text)
    assert got is not None and got.user_id == 9


def test_str_subclass_tokens_match_plain_ones() -> None:
    class Token(str):
        def __hash__(self) -> int:
            return 1

    cache = _cache()
    _put(cache, "abc", 4)
    got = cache.get(Token("abc"))
    assert got is not None and got.user_id == 4


def test_long_tokens_work() -> None:
    cache = _cache()
    long = "L" * 400
    _put(cache, long, 2)
    got = cache.get(long)
    assert got is not None and got.user_id == 2
    assert cache.get(long[:-1]) is None


def test_revoke_one_token() -> None:
    cache = _cache()
    _put(cache, _token(1))
    _put(cache, _token(2))
    assert cache.revoke(_token(1)) is True
    assert cache.revoke(_token(1)) is False
    assert cache.get(_token(1)) is None
    assert cache.get(_token(2)) is not None
    assert cache.stats()["revoked"] == 1


def test_revoke_user_drops_all_and_only_that_users_sessions() -> None:
    cache = _cache()
    for i in range(30):
        _put(cache, _token(i), user_id=i % 3)
    assert cache.revoke_user(1) == 10
    assert cache.revoke_user(1) == 0
    for i in range(30):
        assert (cache.get(_token(i)) is None) == (i % 3 == 1)


def test_reinserting_a_token_for_another_user_moves_it() -> None:
    cache = _cache()
    _put(cache, _token(1), user_id=1)
    _put(cache, _token(1), user_id=2)
    assert cache.revoke_user(1) == 0
    got = cache.get(_token(1))
    assert got is not None and got.user_id == 2
    assert len(cache) == 1


def test_insert_reports_whether_it_cached() -> None:
    cache = _cache()
    assert cache.insert("a", user_id=1, role="u", flags=0, expires_at=time.time() + HOUR) is True
    assert cache.insert("b", user_id=1, role="u", flags=0, expires_at=time.time() - 1) is False


def test_a_fill_that_raced_a_revocation_is_refused() -> None:
    cache = _cache()
    epoch = cache.epoch()  # the fill reads the epoch, then the database...
    cache.revoke_user(5)  # ...while the session is revoked
    stale = cache.insert(
        _token(1), user_id=5, role="u", flags=0, expires_at=time.time() + HOUR, epoch=epoch
    )
    assert stale is False
    assert cache.get(_token(1)) is None
    fresh = cache.insert(
        _token(1), user_id=5, role="u", flags=0, expires_at=time.time() + HOUR, epoch=cache.epoch()
    )
    assert fresh is True
    assert cache.get(_token(1)) is not None
    for revocation in (lambda: cache.revoke("x"), cache.clear):
        before = cache.epoch()
        revocation()
        assert cache.epoch() > before


def test_ttl_is_honoured() -> None:
    cache = _cache(ttl=10.0, idle_timeout=1000.0)
    _put(cache, _token(1))
    cache.advance_clock(9.0)
    assert cache.get(_token(1)) is not None
    cache.advance_clock(2.0)
    assert cache.get(_token(1)) is None
    assert cache.stats()["evicted_expired"] == 1


def test_absolute_expiry_caps_the_ttl() -> None:
    cache = _cache(ttl=1000.0, idle_timeout=1000.0)
    _put(cache, _token(1), ttl=5.0)
    cache.advance_clock(6.0)
    assert cache.get(_token(1)) is None


def test_already_expired_session_is_not_cached_and_drops_the_old_one() -> None:
    cache = _cache()
    _put(cache, _token(1))
    cache.insert(_token(1), user_id=1, role="user", flags=0, expires_at=time.time() - 1)
    assert cache.get(_token(1)) is None
    assert len(cache) == 0


def test_idle_timeout_is_honoured_and_reads_refresh_it() -> None:
    cache = _cache(ttl=1000.0, idle_timeout=10.0)
    _put(cache, _token(1))
    _put(cache, _token(2))
    for _ in range(5):
        cache.advance_clock(6.0)
        assert cache.get(_token(1)) is not None
    assert cache.get(_token(2)) is None
    assert cache.stats()["evicted_idle"] == 1
    cache.advance_clock(10.5)
    assert cache.get(_token(1)) is None


def test_purge_expired_frees_dead_entries() -> None:
    cache = _cache(ttl=10.0, idle_timeout=1000.0)
    for i in range(50):
        _put(cache, _token(i), user_id=i)
    assert cache.purge_expired() == 0
    cache.advance_clock(11.0)
    assert cache.purge_expired() == 50
    stats = cache.stats()
    assert (len(cache), stats["bytes"], stats["evicted_expired"]) == (0, 0, 50)


def test_clear() -> None:
    cache = _cache()
    for i in range(20):
        _put(cache, _token(i), user_id=i)
    cache.clear()
    assert len(cache) == 0
    assert cache.stats()["bytes"] == 0
    assert cache.revoke_user(3) == 0


def test_stats_count_hits_misses_inserts() -> None:
    cache = _cache()
    _put(cache, _token(1))
    cache.get(_token(1))
    cache.get(_token(1))
    cache.get(_token(2))
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["inserts"], stats["entries"]) == (2, 1, 1, 1)
    assert stats["bytes"] > 0
    assert set(stats) == {
        "hits",
        "misses",
        "inserts",
        "entries",
        "bytes",
        "evicted_size",
        "evicted_expired",
        "evicted_idle",
        "revoked",
    }


@settings(max_examples=40, deadline=None)
@given(
    max_entries=st.integers(min_value=32, max_value=300),
    max_bytes=st.integers(min_value=16768, max_value=200_000),
    ops=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=500),
            st.integers(min_value=0, max_value=20),
            st.text(max_size=40),
        ),
        max_size=400,
    ),
)
def test_never_over_either_bound_and_the_newest_entry_is_readable(
    max_entries: int, max_bytes: int, ops: list[tuple[int, int, str]]
) -> None:
    cache = SessionCache(max_entries=max_entries, max_bytes=max_bytes, ttl=60.0, idle_timeout=60.0)
    expires = time.time() + HOUR
    for key, user, role in ops:
        cache.insert(_token(key), user_id=user, role=role, flags=0, expires_at=expires)
        got = cache.get(_token(key))
        assert got is not None and got.role == role
        stats = cache.stats()
        assert len(cache) <= max_entries
        assert stats["bytes"] <= max_bytes
        assert stats["entries"] == len(cache)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["put", "revoke", "revoke_user", "get"]), st.integers(0, 30)),
        max_size=200,
    )
)
def test_matches_a_dict_model_when_nothing_is_evicted(ops: list[tuple[str, int]]) -> None:
    cache = _cache(max_entries=10_000, max_bytes=16 << 20)
    model: dict[str, int] = {}
    for op, k in ops:
        token, user = _token(k), k % 4
        if op == "put":
            _put(cache, token, user)
            model[token] = user
        elif op == "revoke":
            assert cache.revoke(token) == (token in model)
            model.pop(token, None)
        elif op == "revoke_user":
            gone = [t for t, u in model.items() if u == user]
            assert cache.revoke_user(user) == len(gone)
            for t in gone:
                del model[t]
        else:
            got = cache.get(token)
            assert (got.user_id if got else None) == model.get(token)
    assert len(cache) == len(model)


def test_scan_does_not_flush_the_hot_set() -> None:
    cache = _cache(max_entries=1000, max_bytes=16 << 20)
    hot = [_token(i) for i in range(200)]
    for t in hot:
        _put(cache, t)
    for _ in range(3):
        for t in hot:
            cache.get(t)
    for i in range(10_000, 14_000):  # a one-pass scan, 4x the capacity
        _put(cache, _token(i))
    survivors = sum(cache.get(t) is not None for t in hot)
    assert survivors >= 150, survivors


def test_threads_hammering_keep_the_bounds() -> None:
    cache = _cache(max_entries=500, max_bytes=1 << 20)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            for i in range(3000):
                k = (i * 7 + seed) % 2000
                if i % 5 == 0:
                    cache.revoke_user(k % 10)
                elif i % 3 == 0:
                    _put(cache, _token(k), user_id=k % 10)
                else:
                    got = cache.get(_token(k))
                    if got is not None:
                        assert got.user_id == k % 10
                assert len(cache) <= 500
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.stats()["bytes"] <= 1 << 20


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"max_entries": 0}, ValueError),
        ({"max_entries": 1}, ValueError),
        ({"max_entries": 31}, ValueError),
        ({"max_bytes": 16767}, ValueError),
        ({"max_entries": -5}, ValueError),
        ({"max_entries": 2**80}, ValueError),
        ({"max_entries": 1.5}, TypeError),
        ({"max_bytes": 100}, ValueError),
        ({"max_bytes": 2**50}, ValueError),
        ({"max_bytes": "1MB"}, TypeError),
        ({"ttl": 0.0}, ValueError),
        ({"ttl": -1.0}, ValueError),
        ({"ttl": float("nan")}, ValueError),
        ({"ttl": float("inf")}, ValueError),
        ({"idle_timeout": 1e12}, ValueError),
        ({"idle_timeout": "30s"}, TypeError),
    ],
)
def test_bad_constructor_arguments(overrides: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        _cache(**overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("token", "fields", "error"),
    [
        (b"bytes", {}, TypeError),
        (None, {}, TypeError),
        ("", {}, ValueError),
        ("x" * 513, {}, ValueError),
        ("\ud800", {}, ValueError),
        ("t", {"user_id": "7"}, TypeError),
        ("t", {"user_id": 2**64}, ValueError),
        ("t", {"flags": -1}, ValueError),
        ("t", {"flags": 1.0}, TypeError),
        ("t", {"role": "r" * 257}, ValueError),
        ("t", {"role": 3}, TypeError),
        ("t", {"expires_at": float("nan")}, ValueError),
        ("t", {"expires_at": "tomorrow"}, TypeError),
        ("t", {"epoch": -1}, ValueError),
        ("t", {"epoch": "0"}, TypeError),
    ],
)
def test_bad_insert_arguments(
    token: object, fields: dict[str, object], error: type[Exception]
) -> None:
    cache = _cache()
    kwargs: dict[str, object] = {
        "user_id": 1,
        "role": "user",
        "flags": 0,
        "expires_at": time.time() + HOUR,
    }
    kwargs.update(fields)
    with pytest.raises(error):
        cache.insert(token, **kwargs)  # type: ignore[arg-type]
    assert len(cache) == 0


def test_bad_lookup_arguments() -> None:
    cache = _cache()
    with pytest.raises(TypeError):
        cache.get(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cache.revoke(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cache.revoke_user("7")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        cache.advance_clock(-1.0)
    # An over-long token in a lookup is just a miss (hostile headers must not raise).
    assert cache.get("x" * 10_000) is None
