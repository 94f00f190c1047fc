"""The Range parser against RFC 9110's grammar, by example and by property (hypothesis)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from revenge.http.ranges import MAX_RANGES, UNSATISFIABLE, ByteRange, parse_range

sizes = st.integers(min_value=0, max_value=10**12)
positions = st.integers(min_value=0, max_value=10**20)


@given(st.text(max_size=200), sizes)
def test_any_header_is_answered_without_raising(header: str, size: int) -> None:
    result = parse_range(header, size)
    assert result is None or result is UNSATISFIABLE or isinstance(result, ByteRange)
    if isinstance(result, ByteRange):
        assert 0 <= result.start < result.stop <= size


@given(st.binary(max_size=100).map(lambda raw: "bytes=" + raw.decode("latin-1")), sizes)
def test_any_byte_soup_after_the_unit_is_answered(header: str, size: int) -> None:
    result = parse_range(header, size)
    if isinstance(result, ByteRange):
        assert 0 <= result.start < result.stop <= size


@given(positions, st.one_of(st.none(), positions), sizes)
def test_int_range_semantics(first: int, last: int | None, size: int) -> None:
    spec = f"bytes={first}-" + ("" if last is None else str(last))
    result = parse_range(spec, size)
    if size == 0 or (last is not None and last < first):
        assert result is None
    elif first >= size:
        assert result is UNSATISFIABLE
    else:
        stop = size if last is None else min(last + 1, size)
        assert result == ByteRange(first, stop)


@given(positions, sizes)
@example(0, 10)  # bytes=-0: unsatisfiable; random draws do not always try it (mutant G1)
def test_suffix_range_semantics(suffix: int, size: int) -> None:
    result = parse_range(f"bytes=-{suffix}", size)
    if size == 0:
        assert result is None
    elif suffix == 0:
        assert result is UNSATISFIABLE
    else:
        assert result == ByteRange(max(0, size - suffix), size)


@given(st.lists(st.tuples(positions, positions), min_size=1, max_size=MAX_RANGES), sizes)
def test_the_first_satisfiable_range_of_a_set_is_served(
    pairs: list[tuple[int, int]], size: int
) -> None:
    ordered = [(min(a, b), max(a, b)) for a, b in pairs]
    result = parse_range("bytes=" + ", ".join(f"{a}-{b}" for a, b in ordered), size)
    if size == 0:
        assert result is None
        return
    satisfiable = [(a, b) for a, b in ordered if a < size]
    if not satisfiable:
        assert result is UNSATISFIABLE
    else:
        a, b = satisfiable[0]
        assert result == ByteRange(a, min(b + 1, size))


def test_examples() -> None:
    assert parse_range("bytes=0-499", 10_000) == ByteRange(0, 500)
    assert parse_range("bytes=500-999", 10_000) == ByteRange(500, 1000)
    assert parse_range("bytes=-500", 10_000) == ByteRange(9500, 10_000)
    assert parse_range("bytes=9500-", 10_000) == ByteRange(9500, 10_000)
    assert parse_range("bytes=0-0,-1", 10_000) == ByteRange(0, 1)
    assert parse_range("bytes=" + "0-0," * (MAX_RANGES + 1), 10_000) is None
    assert parse_range("bytes=" + "9" * 5000 + "-", 10) is None  # malformed, no int() blow-up
    assert parse_range("bytes=" + "0" * 5000 + "1-", 10) == ByteRange(1, 10)
    assert parse_range("bytes=,,", 10) is None
    assert ByteRange(5, 10).content_range(10) == "bytes 5-9/10"
