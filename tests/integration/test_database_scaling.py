"""The scaler's decision rule (pure; the pool tests show it acting on a real pool)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from revenge.infra.db.scaling import PoolSample, ScalePolicy

POLICY = ScalePolicy(base_min=2, max_size=50, up_threshold=0.8, down_threshold=0.2)


@st.composite
def samples(draw: st.DrawFn) -> tuple[PoolSample, int]:
    size = draw(st.integers(0, 50))
    available = draw(st.integers(0, size))
    sample = PoolSample(
        size=size,
        available=available,
        waiting=draw(st.integers(0, 200)),
        queued=draw(st.integers(0, 1000)),
        busy_ms=draw(st.integers(0, 60_000)),
        interval_ms=draw(st.integers(1, 10_000)),
    )
    return sample, draw(st.integers(POLICY.base_min, POLICY.max_size))


@given(samples())
def test_target_stays_within_bounds(case: tuple[PoolSample, int]) -> None:
    sample, current = case
    assert POLICY.base_min <= POLICY.target_min(sample, current) <= POLICY.max_size


@given(samples())
def test_queued_requests_never_lower_the_floor(case: tuple[PoolSample, int]) -> None:
    sample, current = case
    if sample.waiting or sample.queued:
        target = POLICY.target_min(sample, current)
        assert target >= current
        assert target > current or current == POLICY.max_size or sample.size >= POLICY.max_size


@given(samples())
def test_a_raise_never_opens_more_than_max_size(case: tuple[PoolSample, int]) -> None:
    sample, current = case
    target = POLICY.target_min(sample, current)
    if target > current:  # resize() opens target - current new connections
        assert sample.size + (target - current) <= POLICY.max_size


def test_a_full_pool_is_not_raised() -> None:
    busy = PoolSample(size=50, available=0, waiting=30, queued=30, busy_ms=50_000, interval_ms=1000)
    assert POLICY.target_min(busy, current_min=2) == 2


def test_grows_ahead_of_demand() -> None:
    # 8 of 8 connections busy, 4 waiting: room for the demand at 80 % utilisation.
    sample = PoolSample(size=8, available=0, waiting=4, queued=4, busy_ms=8000, interval_ms=1000)
    assert POLICY.target_min(sample, current_min=2) == 15


def test_shrinks_back_towards_the_minimum_only_when_idle() -> None:
    calm = PoolSample(size=15, available=14, waiting=0, queued=0, busy_ms=900, interval_ms=1000)
    assert POLICY.target_min(calm, current_min=15) == 2
    moderate = PoolSample(
        size=15, available=10, waiting=0, queued=0, busy_ms=5000, interval_ms=1000
    )
    assert POLICY.target_min(moderate, current_min=15) == 15
    assert POLICY.target_min(calm, current_min=2) == 2
