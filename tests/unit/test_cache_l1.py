"""The L1's budgets: bytes and entries are never exceeded, and eviction is least recently used."""

from __future__ import annotations

from collections import OrderedDict

from hypothesis import given, settings
from hypothesis import strategies as st

from revenge.infra.cache.l1 import LocalCache


def test_exactly_the_byte_budget_fits_and_one_byte_more_evicts_the_oldest() -> None:
    l1 = LocalCache(max_entries=100, max_bytes=20)
    l1.put("a", b"x" * 9, ttl=60)  # 1 + 9 bytes: key and value both count
    l1.put("b", b"y" * 9, ttl=60)
    assert l1.nbytes == 20 and len(l1) == 2  # exactly the budget: both kept
    l1.put("c", b"z", ttl=60)  # 2 bytes more: "a", the least recently used, goes
    assert l1.get("a") is None and l1.get("b") == b"y" * 9 and l1.get("c") == b"z"
    assert l1.nbytes == 12 and l1.evictions == 1


def test_a_value_larger_than_the_budget_is_not_kept_and_drops_the_old_copy() -> None:
    l1 = LocalCache(max_entries=10, max_bytes=16)
    l1.put("k", b"old", ttl=60)
    l1.put("k", b"v" * 15, ttl=60)  # 1 + 15 = 16: fits exactly
    assert l1.get("k") == b"v" * 15 and l1.nbytes == 16
    l1.put("k", b"v" * 16, ttl=60)  # 17 bytes: larger than the whole budget
    assert l1.get("k") is None and l1.nbytes == 0 and len(l1) == 0


def test_overwriting_and_removing_keep_the_byte_count_exact() -> None:
    l1 = LocalCache(max_entries=10, max_bytes=1000)
    l1.put("key", b"12345", ttl=60)
    l1.put("key", b"1", ttl=60)
    assert l1.nbytes == 4
    l1.pop("key")
    assert l1.nbytes == 0


def test_shrink_holds_the_byte_limit_too() -> None:
    l1 = LocalCache(max_entries=1000, max_bytes=100)
    for key in "abcde":
        l1.put(key, b"x" * 19, ttl=60)  # 20 bytes each: 100 in all
    assert l1.shrink(0.5) == 3  # 50 bytes allowed: two entries of 20 stay
    assert l1.nbytes == 40 and l1.get("d") is not None and l1.get("e") is not None


_ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "get", "pop"]),
        st.sampled_from(["a", "bb", "ccc", "dddd", "e", "ff"]),
        st.integers(min_value=0, max_value=40),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(ops=_ops, max_entries=st.integers(1, 6), max_bytes=st.integers(1, 64))
def test_never_over_budget_and_evicts_like_an_lru(
    ops: list[tuple[str, str, int]], max_entries: int, max_bytes: int
) -> None:
    l1 = LocalCache(max_entries=max_entries, max_bytes=max_bytes, clock=lambda: 0.0)
    model: OrderedDict[str, bytes] = OrderedDict()  # what a byte-and-entry bounded LRU holds
    for op, key, size in ops:
        value = bytes(size)
        if op == "put":
            model.pop(key, None)
            if len(key) + size <= max_bytes:
                model[key] = value
                while len(model) > max_entries or _size(model) > max_bytes:
                    model.popitem(last=False)
            l1.put(key, value, ttl=60)
        elif op == "get":
            if key in model:
                model.move_to_end(key)
            assert l1.get(key) == model.get(key)
        else:
            model.pop(key, None)
            l1.pop(key)
        assert l1.nbytes == _size(model) <= max_bytes
        assert len(l1) == len(model) <= max_entries


def _size(items: OrderedDict[str, bytes]) -> int:
    return sum(len(k) + len(v) for k, v in items.items())
