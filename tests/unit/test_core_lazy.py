"""revenge._core.LazyCell: single flight, failure back-off, reset, async attempt protocol."""

from __future__ import annotations

import gc
import random
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revenge._core import LazyCell, LazyInitBackoff

THREADS = 200


def _run_threads(n: int, target: Callable[[], object]) -> list[object]:
    """Start ``n`` threads behind a barrier; return what each returned or raised."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive(), "a waiter hung"
    return results


def test_starts_empty_and_get_does_not_initialise() -> None:
    cell: LazyCell[int] = LazyCell()
    assert cell.get() is None
    assert cell.state == "empty"
    assert not cell.is_ready
    assert cell.init_count == 0
    assert cell.idle_seconds() == 0.0
    assert cell.last_error is None


def test_get_or_init_then_get_returns_the_same_object() -> None:
    cell: LazyCell[object] = LazyCell()
    value = object()
    assert cell.get_or_init(lambda: value) is value
    assert cell.get() is value
    assert cell.get_or_init(lambda: object()) is value
    assert cell.state == "ready"
    assert cell.is_ready
    assert cell.init_count == 1
    assert cell.last_init_seconds >= 0.0


def test_single_flight_with_200_threads_and_a_gil_releasing_initialiser() -> None:
    cell: LazyCell[object] = LazyCell()
    calls: list[int] = []
    value = object()

    def init() -> object:
        calls.append(1)
        # Release and re-take the GIL several times (PyO3 FAQ deadlock case).
        for _ in range(5):
            time.sleep(0.002)
        return value

    results = _run_threads(THREADS, lambda: cell.get_or_init(init))
    assert len(calls) == 1
    assert all(r is value for r in results)
    assert cell.init_count == 1


def test_every_waiter_of_a_failed_attempt_gets_its_error() -> None:
    cell: LazyCell[int] = LazyCell(backoff_initial=30.0, backoff_max=30.0)
    calls: list[int] = []
    started = threading.Event()
    release = threading.Event()
    boom = ValueError("boom")

    def init() -> int:
        calls.append(1)
        started.set()
        release.wait(10)
        raise boom

    owner_result: list[BaseException] = []

    def owner() -> None:
        try:
            cell.get_or_init(init)
        except BaseException as exc:
            owner_result.append(exc)

    t = threading.Thread(target=owner)
    t.start()
    assert started.wait(10)
    assert cell.state == "initialising"
    waiter_results: list[object] = []
    entered = threading.Barrier(21)

    def waiter() -> None:
        entered.wait()
        waiter_results.append(_catch(cell.get_or_init, init))

    waiters = [threading.Thread(target=waiter) for _ in range(20)]
    for w in waiters:
        w.start()
    entered.wait()
    # Give the waiters time to block on the attempt; one that is descheduled
    # past its end sees the back-off instead, which the checks below accept
    # (it carries the same error), so correctness never depends on timing.
    time.sleep(0.2)
    assert cell.attempt is not None
    release.set()
    t.join(10)
    for w in waiters:
        w.join(10)
    assert len(calls) == 1
    assert owner_result == [boom]
    assert len(waiter_results) == 20
    for r in waiter_results:
        assert r is boom or (isinstance(r, LazyInitBackoff) and r.__cause__ is boom), r
    assert _state(cell) == "failed"
    assert cell.failure_count == 1
    assert cell.last_error is boom


def _state(cell: LazyCell[object] | LazyCell[int] | LazyCell[str]) -> str:
    """The state, typed as ``str`` so mypy does not narrow it between reads."""
    return str(cell.state)


def _catch(fn: Callable[..., object], *args: object) -> object:
    try:
        return fn(*args)
    except BaseException as exc:
        return exc


def test_failure_is_retried_after_the_backoff() -> None:
    # A long back-off so a descheduled test thread still finds it running;
    # only upper bounds on the time left are asserted (they cannot be missed).
    cell: LazyCell[int] = LazyCell(backoff_initial=2.0, backoff_max=2.0)
    with pytest.raises(ZeroDivisionError):
        cell.get_or_init(lambda: 1 // 0)
    with pytest.raises(LazyInitBackoff) as info:
        cell.get_or_init(lambda: 1)
    message, retry_after = info.value.args
    assert "back-off" in message
    assert 0.0 <= retry_after <= 2.0
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert cell.retry_after() <= 2.0
    assert cell.state == "failed"


def test_failure_is_retried_once_the_backoff_has_passed() -> None:
    cell: LazyCell[int] = LazyCell(backoff_initial=0.05, backoff_max=0.05)
    with pytest.raises(ZeroDivisionError):
        cell.get_or_init(lambda: 1 // 0)
    deadline = time.monotonic() + 10
    while cell.retry_after() > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cell.get_or_init(lambda: 7) == 7
    assert cell.state == "ready"
    assert cell.failure_count == 1
    assert cell.init_count == 1


def test_backoff_grows_after_consecutive_failures_up_to_its_cap() -> None:
    # The exact doubling is a cargo test (lazy::tests::backoff_doubles_and_caps);
    # here only the never-exceeded cap of each step is checked.
    cell: LazyCell[int] = LazyCell(backoff_initial=0.02, backoff_max=0.05)
    for cap in (0.02, 0.04, 0.05, 0.05):
        with pytest.raises(KeyError):
            cell.get_or_init(_raise_key)
        assert cell.retry_after() <= cap
        while cell.retry_after() > 0:
            time.sleep(0.005)
    assert cell.failure_count == 4


def _raise_key() -> int:
    raise KeyError("x")


def test_reset_returns_old_value_and_next_get_initialises_again() -> None:
    cell: LazyCell[list[int]] = LazyCell()
    first = cell.get_or_init(lambda: [1])
    assert cell.reset() is first
    assert cell.state == "empty"
    assert cell.get() is None
    assert cell.reset() is None
    second = cell.get_or_init(lambda: [2])
    assert second == [2]
    assert cell.init_count == 2


def test_reset_clears_a_failure_backoff() -> None:
    cell: LazyCell[int] = LazyCell(backoff_initial=60.0, backoff_max=60.0)
    with pytest.raises(RuntimeError):
        cell.get_or_init(_raise_runtime)
    assert cell.reset() is None
    assert cell.state == "empty"
    assert cell.get_or_init(lambda: 3) == 3


def _raise_runtime() -> int:
    raise RuntimeError("down")


def test_async_protocol_try_begin_finish_fail() -> None:
    cell: LazyCell[str] = LazyCell(backoff_initial=0.0, backoff_max=0.0)
    attempt = cell.try_begin()
    assert attempt is not None
    assert cell.state == "initialising"
    assert cell.attempt == attempt
    assert cell.try_begin() is None  # in flight
    with pytest.raises(ValueError, match="not the attempt in flight"):
        cell.finish(attempt + 1, "late")
    cell.fail(attempt, OSError("no route"))
    assert _state(cell) == "failed"
    with pytest.raises(ValueError, match="not in flight"):
        cell.finish(attempt, "stale")
    second = cell.try_begin()  # zero back-off: retry at once
    assert second is not None and second != attempt
    cell.finish(second, "svc")
    assert cell.get() == "svc"
    assert cell.try_begin() is None  # ready


def test_thread_waiting_on_an_async_attempt_gets_its_value() -> None:
    cell: LazyCell[str] = LazyCell()
    attempt = cell.try_begin()
    assert attempt is not None
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(cell.get_or_init(lambda: "wrong")))
    waiter.start()
    time.sleep(0.05)  # (this thread owns the attempt: its own wait() would refuse)
    assert cell.state == "initialising"
    cell.finish(attempt, "right")
    waiter.join(10)
    assert results == ["right"]
    assert cell.wait(timeout=0.05) == "ready"


def test_owner_thread_blocking_on_its_own_attempt_raises_instead_of_deadlocking() -> None:
    cell: LazyCell[int] = LazyCell(backoff_initial=30.0, backoff_max=30.0)
    with pytest.raises(RuntimeError, match="deadlock"):
        cell.get_or_init(lambda: cell.get_or_init(lambda: 1))
    # The refused inner call failed the outer attempt, which started a back-off.
    assert _state(cell) == "failed"
    assert cell.failure_count == 1
    with pytest.raises(LazyInitBackoff):
        cell.try_begin()


def test_get_or_init_timeout() -> None:
    cell: LazyCell[int] = LazyCell()
    attempt = cell.try_begin()
    assert attempt is not None
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(_catch(cell.get_or_init, lambda: 1, 0.05)))
    t.start()
    t.join(10)
    assert len(out) == 1
    assert isinstance(out[0], TypeError)  # timeout is keyword-only
    t = threading.Thread(
        target=lambda: out.append(_catch(lambda: cell.get_or_init(lambda: 1, timeout=0.05)))
    )
    t.start()
    t.join(10)
    assert isinstance(out[1], TimeoutError)
    cell.finish(attempt, 5)


def test_idle_seconds_grows_and_get_refreshes_it() -> None:
    cell: LazyCell[int] = LazyCell()
    cell.get_or_init(lambda: 1)
    time.sleep(0.03)
    idle = cell.idle_seconds()
    assert idle > 0.0
    cell.get()
    assert cell.idle_seconds() < idle


def test_readers_during_resets_see_a_value_or_none() -> None:
    cell: LazyCell[int] = LazyCell()
    stop = threading.Event()
    bad: list[object] = []

    def reader() -> None:
        while not stop.is_set():
            v = cell.get_or_init(lambda: 5)
            if v != 5:
                bad.append(v)
            g = cell.get()
            if g not in (None, 5):
                bad.append(g)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for r in readers:
        r.start()
    for _ in range(300):
        cell.reset()
    stop.set()
    for r in readers:
        r.join(10)
    assert bad == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"backoff_initial": -1.0}, ValueError),
        ({"backoff_max": float("inf")}, ValueError),
        ({"backoff_initial": float("nan")}, ValueError),
        ({"backoff_initial": 5.0, "backoff_max": 1.0}, ValueError),
        ({"backoff_max": 1e12}, ValueError),
        ({"backoff_initial": "1"}, TypeError),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        LazyCell(**kwargs)  # type: ignore[arg-type]


def test_bad_method_arguments() -> None:
    cell: LazyCell[int] = LazyCell()
    with pytest.raises(TypeError):
        cell.get_or_init(5)  # type: ignore[arg-type]
    attempt = cell.try_begin()
    assert attempt is not None
    with pytest.raises(TypeError):
        cell.fail(attempt, "not an exception")  # type: ignore[arg-type]
    with pytest.raises((OverflowError, ValueError)):
        cell.finish(-1, 1)
    with pytest.raises(ValueError):
        cell.wait(timeout=-1.0)
    with pytest.raises(ValueError):
        cell.get_or_init(lambda: 1, timeout=float("nan"))
    cell.finish(attempt, 1)


def test_uncallable_initialiser_fails_the_attempt_not_the_cell() -> None:
    cell: LazyCell[int] = LazyCell(backoff_initial=0.0, backoff_max=0.0)
    with pytest.raises(TypeError):
        cell.get_or_init(lambda x: x)  # type: ignore[arg-type,misc]
    assert _state(cell) == "failed"
    assert cell.get_or_init(lambda: 2) == 2


@settings(deadline=None)
@given(st.lists(st.sampled_from(["ok", "fail", "reset", "get"]), max_size=30))
def test_state_machine_matches_a_model(ops: list[str]) -> None:
    cell: LazyCell[int] = LazyCell(backoff_initial=0.0, backoff_max=0.0)
    model_value: int | None = None
    inits = failures = 0
    for i, op in enumerate(ops):
        if op == "ok":
            got = cell.get_or_init(lambda i=i: i)  # type: ignore[misc]
            if model_value is None:
                model_value = i
                inits += 1
            assert got == model_value
        elif op == "fail":
            if model_value is None:
                with pytest.raises(ArithmeticError):
                    cell.get_or_init(lambda: 1 // 0)
                failures += 1
            else:
                assert cell.get_or_init(lambda: 1 // 0) == model_value
        elif op == "reset":
            assert cell.reset() == model_value
            model_value = None
        else:
            assert cell.get() == model_value
        assert cell.init_count == inits
        assert cell.failure_count == failures
        assert cell.is_ready == (model_value is not None)


class _Service:
    cell: LazyCell[_Service] | None = None


def _cycle_through_value() -> weakref.ref[_Service]:
    cell: LazyCell[_Service] = LazyCell()
    service = _Service()
    service.cell = cell  # service -> cell -> service
    cell.get_or_init(lambda: service)
    return weakref.ref(service)


def test_reference_cycles_through_the_cell_are_collected() -> None:
    probe = _cycle_through_value()
    gc.collect()
    assert probe() is None


class _Boom(Exception):
    pass


def _cycle_through_failure() -> weakref.ref[_Service]:
    owner = _Service()
    cell: LazyCell[int] = LazyCell()
    owner.cell = cell  # type: ignore[assignment]

    def init() -> int:
        holder = owner  # the traceback's frame keeps owner, hence the cell, alive
        raise _Boom(holder)

    with pytest.raises(_Boom):
        cell.get_or_init(init)
    return weakref.ref(owner)


def test_a_failure_traceback_holding_the_cell_is_collected() -> None:
    probe = _cycle_through_failure()
    gc.collect()
    assert probe() is None


# -- issue 18: liveness ------------------------------------------------------

_DEL_TOUCHES_THE_CELL = """
import threading, time
from revenge._core import LazyCell

cell = LazyCell(backoff_initial=0.0, backoff_max=0.0)


class Boom(Exception):
    def __del__(self):
        # What a failing cold service's exception may do when it goes: touch
        # the cell, and release the GIL (closing a socket, a sleep).
        cell.last_error
        cell.retry_after()
        time.sleep(0.05)


stop = threading.Event()


def bystander():
    while not stop.is_set():
        cell.last_error
        cell.retry_after()
        cell.state


def boom():
    raise Boom("down")


bystanders = [threading.Thread(target=bystander) for _ in range(2)]
for t in bystanders:
    t.start()
for _ in range(5):
    try:
        cell.get_or_init(boom)
    except Boom:
        pass
stop.set()
for t in bystanders:
    t.join()
print("ok")
"""


def test_an_initialisers_exception_whose_del_touches_the_cell_does_not_hang() -> None:
    # A hang takes the whole interpreter with it, so it runs in a child process.
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _DEL_TOUCHES_THE_CELL],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the interpreter hung: an error was dropped while the cell's lock was held")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_a_waiter_gets_the_value_of_the_attempt_it_waited_for_despite_a_reset() -> None:
    cell: LazyCell[str] = LazyCell()
    first = cell.try_begin()
    assert first is not None
    results: list[object] = []
    calling = threading.Event()

    def wait_for_it() -> None:
        calling.set()
        results.append(cell.get_or_init(lambda: "the waiter ran init", timeout=30))

    waiter = threading.Thread(target=wait_for_it)
    waiter.start()
    calling.wait(30)
    time.sleep(0.2)  # the waiter is blocked on `first`
    # Finish, reset and claim again while this thread holds the GIL: the
    # waiter cannot look between these steps.
    cell.finish(first, "first")
    cell.reset()
    second = cell.try_begin()
    assert second is not None
    time.sleep(0.2)
    cell.finish(second, "second")
    waiter.join(30)
    assert not waiter.is_alive()
    assert results == ["first"]


def test_waiters_under_reset_churn_get_values() -> None:
    # Short form of the review's hammer: 3 threads, 0.5 ms initialiser, 10 %
    # of the calls followed by a reset. Only a generous hang guard is timed.
    cell: LazyCell[int] = LazyCell(backoff_initial=0.0, backoff_max=0.0)
    stop = threading.Event()
    errors: list[BaseException] = []
    got = [0, 0, 0]

    def init() -> int:
        time.sleep(0.0005)
        return 7

    def user(i: int) -> None:
        rnd = random.Random(i)
        try:
            while not stop.is_set():
                assert cell.get_or_init(init, timeout=10.0) == 7
                got[i] += 1
                if rnd.random() < 0.1:
                    cell.reset()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a waiter hung"
    assert errors == []
    assert all(n > 0 for n in got), got


def test_wait_by_the_owner_of_the_attempt_raises_instead_of_blocking() -> None:
    cell: LazyCell[int] = LazyCell()
    attempt = cell.try_begin()
    assert attempt is not None
    with pytest.raises(RuntimeError, match="deadlock"):
        cell.wait(0.5)
    # Another thread may wait for it.
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(cell.wait(0.05)))
    t.start()
    t.join(10)
    assert out == ["initialising"]
    cell.finish(attempt, 1)
    assert cell.wait(0) == "ready"


def test_wait_inside_init_raises_instead_of_blocking() -> None:
    cell: LazyCell[object] = LazyCell(backoff_initial=0.0, backoff_max=0.0)
    with pytest.raises(RuntimeError, match="deadlock"):
        cell.get_or_init(lambda: cell.wait(0.5))


def test_an_abandoned_attempt_leaves_the_cell_usable_and_wakes_its_waiters() -> None:
    cell: LazyCell[str] = LazyCell(backoff_initial=30.0, backoff_max=30.0)
    attempt = cell.try_begin()
    assert attempt is not None
    results: list[object] = []
    waiter = threading.Thread(
        target=lambda: results.append(cell.get_or_init(lambda: "waiter", timeout=30))
    )
    waiter.start()
    time.sleep(0.1)
    cell.abandon(attempt)
    waiter.join(30)
    # No failure, no back-off: the waiter ran the next attempt itself.
    assert results == ["waiter"]
    assert (cell.failure_count, cell.retry_after()) == (0, 0.0)
    with pytest.raises(ValueError):
        cell.abandon(attempt)
