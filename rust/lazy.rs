//! LazyCell: an atomic state machine `empty -> initialising -> ready | failed`,
//! with single-flight initialisation, a back-off after failures and `reset` for
//! offloading.
//!
//! [`LazyCore`] is plain Rust (generic over the value and the error) so it is
//! tested without an interpreter; [`py::LazyCell`] is the thin Python face.
//!
//! Design:
//! - The value lives in an [`ArcSwapOption`]: a ready `get` is one atomic load
//!   plus a borrowed guard, no lock, so many threads (GIL or free-threaded) read
//!   it without contending on a mutex.
//! - Everything that changes the state (claiming an attempt, finishing it,
//!   failing it, resetting) goes through one small mutex, and waiters block on a
//!   condvar tied to it. The Python face waits with the GIL released, in short
//!   slices so Ctrl-C is still seen, which is what keeps an initialiser that
//!   releases and re-takes the GIL from deadlocking.
//! - Attempts are numbered, so the asynchronous path (`try_begin` -> `finish` /
//!   `fail`) needs no callback into asyncio and a stale completion is refused.
//! - A read marks the cell used with a relaxed flag (stored only when it was
//!   clear, so concurrent readers do not bounce a cache line); `idle_seconds`
//!   turns the flag into a time stamp, keeping the clock off the hot path.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::clock::monotonic_coarse_nanos;

/// The four states, as stored in the state atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Empty = 0,
    Initialising = 1,
    Ready = 2,
    Failed = 3,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Initialising,
            2 => State::Ready,
            3 => State::Failed,
            _ => State::Empty,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Empty => "empty",
            State::Initialising => "initialising",
            State::Ready => "ready",
            State::Failed => "failed",
        }
    }
}

/// Exponential back-off after failures: `initial * 2^(n-1)`, capped at `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// Checks the bounds the Python face promises (finite, `0 <= initial <= max <= 1 day`).
    pub fn new(initial_s: f64, max_s: f64) -> Result<Backoff, String> {
        const DAY: f64 = 86_400.0;
        for (name, v) in [("backoff_initial", initial_s), ("backoff_max", max_s)] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be a finite number >= 0, got {v}"));
            }
            if v > DAY {
                return Err(format!("{name} must be at most 86400 seconds, got {v}"));
            }
        }
        if initial_s > max_s {
            return Err(format!(
                "backoff_initial ({initial_s}) must not exceed backoff_max ({max_s})"
            ));
        }
        Ok(Backoff {
            initial: Duration::from_secs_f64(initial_s),
            max: Duration::from_secs_f64(max_s),
        })
    }

    /// The delay after the `failures`-th consecutive failure (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(32);
        let factor = 1u64 << shift;
        let nanos = (self.initial.as_nanos() as u64).saturating_mul(factor);
        Duration::from_nanos(nanos).min(self.max)
    }
}

/// Identifies the thread that claimed an attempt, to refuse a self-deadlock.
pub type Owner = usize;

/// The calling thread's [`Owner`] id (address of a thread-local).
pub fn current_owner() -> Owner {
    thread_local!(static MARK: u8 = const { 0 });
    MARK.with(|m| m as *const u8 as usize)
}

/// What `try_begin` decided.
#[derive(Debug)]
pub enum Begin<T, E> {
    /// Already ready: here is the value.
    Ready(Arc<T>),
    /// The caller owns attempt `id` and must `finish` or `fail` it.
    Claimed(u64),
    /// Attempt `id` is in flight, claimed by `owner`.
    InFlight { id: u64, owner: Owner },
    /// The last attempt failed; retry after `retry_after`.
    Backoff {
        retry_after: Duration,
        error: Option<Arc<E>>,
    },
}

/// The outcome of one attempt, as seen by its waiters.
#[derive(Debug)]
pub enum Outcome<E> {
    Ready,
    Failed(Arc<E>),
    /// The outcome was overwritten by a later attempt; callers look again.
    Superseded,
}

/// Refusal of a completion whose attempt is not the one in flight.
#[derive(Debug, PartialEq, Eq)]
pub struct NotInFlight {
    pub attempt: u64,
    pub in_flight: Option<u64>,
}

impl std::fmt::Display for NotInFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.in_flight {
            Some(cur) => write!(
                f,
                "attempt {} is not the attempt in flight ({cur})",
                self.attempt
            ),
            None => write!(f, "attempt {} is not in flight (none is)", self.attempt),
        }
    }
}

#[derive(Debug)]
struct InFlight {
    id: u64,
    owner: Owner,
    started: Instant,
}

#[derive(Debug)]
struct Inner<E> {
    next_attempt: u64,
    in_flight: Option<InFlight>,
    /// Attempt id and error of the most recent completed attempt (None error = success).
    last_done: Option<(u64, Option<Arc<E>>)>,
    last_error: Option<Arc<E>>,
    consecutive_failures: u32,
    retry_at: Option<Instant>,
}

/// The interpreter-free lazy cell. `T` is the value, `E` the error.
#[derive(Debug)]
pub struct LazyCore<T, E> {
    value: ArcSwapOption<T>,
    state: AtomicU8,
    last_use: AtomicU64,
    used: AtomicBool,
    init_count: AtomicU64,
    failure_count: AtomicU64,
    last_init_nanos: AtomicU64,
    backoff: Backoff,
    inner: Mutex<Inner<E>>,
    done: Condvar,
}

impl<T, E> LazyCore<T, E> {
    pub fn new(backoff: Backoff) -> Self {
        LazyCore {
            value: ArcSwapOption::const_empty(),
            state: AtomicU8::new(State::Empty as u8),
            last_use: AtomicU64::new(0),
            used: AtomicBool::new(false),
            init_count: AtomicU64::new(0),
            failure_count: AtomicU64::new(0),
            last_init_nanos: AtomicU64::new(0),
            backoff,
            inner: Mutex::new(Inner {
                next_attempt: 1,
                in_flight: None,
                last_done: None,
                last_error: None,
                consecutive_failures: 0,
                retry_at: None,
            }),
            done: Condvar::new(),
        }
    }

    // A panic while holding the lock cannot leave `Inner` half-updated in a way
    // that matters (every update is a few plain stores), so poisoning is ignored
    // rather than turned into a panic of its own.
    fn lock(&self) -> MutexGuard<'_, Inner<E>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a use. Reads only set a flag (a load, and a store when it was
    /// clear): no clock read on the hot path. `idle_seconds` turns the flag
    /// into a time stamp when it looks.
    #[inline]
    fn touch(&self) {
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
    }

    fn stamp(&self) {
        self.last_use
            .store(monotonic_coarse_nanos(), Ordering::Relaxed);
        self.used.store(false, Ordering::Relaxed);
    }

    /// Lock-free read: calls `f` with the value when ready and stamps the last use.
    #[inline]
    pub fn with_value<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let guard = self.value.load();
        let v = guard.as_ref()?;
        self.touch();
        Some(f(v))
    }

    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Claims an attempt for `owner`, or says why not.
    pub fn try_begin(&self, owner: Owner) -> Begin<T, E> {
        if let Some(v) = self.value.load_full() {
            self.touch();
            return Begin::Ready(v);
        }
        let mut inner = self.lock();
        if let Some(v) = self.value.load_full() {
            self.touch();
            return Begin::Ready(v);
        }
        if let Some(f) = &inner.in_flight {
            return Begin::InFlight {
                id: f.id,
                owner: f.owner,
            };
        }
        if let Some(at) = inner.retry_at {
            let now = Instant::now();
            if now < at {
                return Begin::Backoff {
                    retry_after: at - now,
                    error: inner.last_error.clone(),
                };
            }
        }
        let id = inner.next_attempt;
        inner.next_attempt += 1;
        inner.in_flight = Some(InFlight {
            id,
            owner,
            started: Instant::now(),
        });
        self.state
            .store(State::Initialising as u8, Ordering::Release);
        Begin::Claimed(id)
    }

    fn take_attempt(&self, inner: &mut Inner<E>, attempt: u64) -> Result<InFlight, NotInFlight> {
        match &inner.in_flight {
            Some(f) if f.id == attempt => Ok(inner.in_flight.take().expect("checked above")),
            other => Err(NotInFlight {
                attempt,
                in_flight: other.as_ref().map(|f| f.id),
            }),
        }
    }

    /// Completes `attempt` with `value`; the cell becomes ready.
    pub fn finish(&self, attempt: u64, value: T) -> Result<(), NotInFlight> {
        let mut inner = self.lock();
        let flight = self.take_attempt(&mut inner, attempt)?;
        let took = flight.started.elapsed();
        self.value.store(Some(Arc::new(value)));
        self.state.store(State::Ready as u8, Ordering::Release);
        self.last_init_nanos
            .store(took.as_nanos() as u64, Ordering::Relaxed);
        self.init_count.fetch_add(1, Ordering::Relaxed);
        self.stamp();
        inner.consecutive_failures = 0;
        inner.retry_at = None;
        inner.last_done = Some((attempt, None));
        drop(inner);
        self.done.notify_all();
        Ok(())
    }

    /// Fails `attempt` with `error`; the back-off starts.
    pub fn fail(&self, attempt: u64, error: E) -> Result<(), NotInFlight> {
        let mut inner = self.lock();
        self.take_attempt(&mut inner, attempt)?;
        let error = Arc::new(error);
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        inner.retry_at = Some(Instant::now() + self.backoff.delay(inner.consecutive_failures));
        inner.last_error = Some(error.clone());
        inner.last_done = Some((attempt, Some(error)));
        self.failure_count.fetch_add(1, Ordering::Relaxed);
        self.state.store(State::Failed as u8, Ordering::Release);
        drop(inner);
        self.done.notify_all();
        Ok(())
    }

    /// Waits up to `timeout` for attempt `id` to complete. `None` = still in flight.
    pub fn wait_attempt(&self, id: u64, timeout: Duration) -> Option<Outcome<E>> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            match &inner.in_flight {
                Some(f) if f.id == id => {}
                _ => break,
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            inner = self
                .done
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Some(match &inner.last_done {
            Some((done, None)) if *done == id => Outcome::Ready,
            Some((done, Some(e))) if *done == id => Outcome::Failed(e.clone()),
            _ => Outcome::Superseded,
        })
    }

    /// Waits up to `timeout` until no attempt is in flight; returns the state then.
    pub fn wait_idle(&self, timeout: Duration) -> State {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        while inner.in_flight.is_some() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            inner = self
                .done
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        self.state()
    }

    /// Offload: drops the value (returned) and clears a failure's back-off. An
    /// attempt in flight is left alone (it completes normally) and `None` is
    /// returned.
    pub fn reset(&self) -> Option<Arc<T>> {
        let mut inner = self.lock();
        if inner.in_flight.is_some() {
            return None;
        }
        inner.retry_at = None;
        inner.consecutive_failures = 0;
        self.state.store(State::Empty as u8, Ordering::Release);
        self.value.swap(None)
    }

    pub fn init_count(&self) -> u64 {
        self.init_count.load(Ordering::Relaxed)
    }

    pub fn failure_count(&self) -> u64 {
        self.failure_count.load(Ordering::Relaxed)
    }

    pub fn last_init_seconds(&self) -> f64 {
        self.last_init_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }

    pub fn last_error(&self) -> Option<Arc<E>> {
        self.lock().last_error.clone()
    }

    /// The attempt in flight, if any.
    pub fn attempt_in_flight(&self) -> Option<u64> {
        self.lock().in_flight.as_ref().map(|f| f.id)
    }

    /// Seconds since the value was last returned or set; 0.0 when not ready.
    ///
    /// A use is seen at the next call of this method (which then counts from
    /// that moment), so the answer is accurate to the interval between two
    /// calls: it may say "used just now" for a use up to one interval old,
    /// never "idle" for a value in use. The runtime's idle sweeper polls it.
    pub fn idle_seconds(&self) -> f64 {
        if self.state() != State::Ready {
            return 0.0;
        }
        if self.used.swap(false, Ordering::AcqRel) {
            self.last_use
                .store(monotonic_coarse_nanos(), Ordering::Relaxed);
            return 0.0;
        }
        let last = self.last_use.load(Ordering::Relaxed);
        monotonic_coarse_nanos().saturating_sub(last) as f64 / 1e9
    }

    /// Calls `value` for the held value and `error` once per distinct held
    /// error (for the garbage collector: each reference exactly once). Skips
    /// the errors if the state lock is busy, which only hides edges (safe).
    pub fn visit<X>(
        &self,
        mut value: impl FnMut(&T) -> Result<(), X>,
        mut error: impl FnMut(&E) -> Result<(), X>,
    ) -> Result<(), X> {
        if let Some(v) = self.value.load().as_ref() {
            value(v)?;
        }
        if let Ok(inner) = self.inner.try_lock() {
            if let Some(e) = &inner.last_error {
                error(e)?;
            }
            if let Some((_, Some(e))) = &inner.last_done {
                let seen = inner.last_error.as_ref().is_some_and(|l| Arc::ptr_eq(l, e));
                if !seen {
                    error(e)?;
                }
            }
        }
        Ok(())
    }

    /// Drops the value and the remembered errors (garbage-collector clear);
    /// they are dropped after the lock is released.
    pub fn clear_refs(&self) {
        let (value, errors) = {
            let mut inner = self.lock();
            let errors = (inner.last_error.take(), inner.last_done.take());
            if inner.in_flight.is_none() {
                self.state.store(State::Empty as u8, Ordering::Release);
            }
            (self.value.swap(None), errors)
        };
        drop(value);
        drop(errors);
    }

    /// Time left of the current back-off (zero when none).
    pub fn retry_after(&self) -> Duration {
        match self.lock().retry_at {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => Duration::ZERO,
        }
    }
}

pub mod py {
    //! The Python face: `revenge._core.LazyCell` and `LazyInitBackoff`.
    use std::sync::Arc;
    use std::time::Duration;

    use pyo3::exceptions::{PyRuntimeError, PyValueError};
    use pyo3::gc::PyVisit;
    use pyo3::prelude::*;
    use pyo3::PyTraverseError;

    use super::{current_owner, Backoff, Begin, LazyCore, Outcome};

    pyo3::create_exception!(
        revenge._core,
        LazyInitBackoff,
        PyRuntimeError,
        "The last initialisation failed and its back-off has not elapsed.\n\n\
         ``args == (message, retry_after_seconds)``; ``__cause__`` is the last error."
    );

    /// How long a waiter sleeps (GIL released) between checks for signals.
    const WAIT_SLICE: Duration = Duration::from_millis(50);

    type Core = LazyCore<Py<PyAny>, Py<PyAny>>;

    /// Atomic state machine ``empty -> initialising -> ready | failed``, reset for offload.
    #[pyclass(frozen, generic, module = "revenge._core")]
    pub struct LazyCell {
        core: Core,
    }

    fn backoff_error(
        py: Python<'_>,
        retry_after: Duration,
        error: Option<Arc<Py<PyAny>>>,
    ) -> PyErr {
        let secs = retry_after.as_secs_f64();
        let err = LazyInitBackoff::new_err((
            format!("initialisation failed; retrying after the back-off ({secs:.3}s left)"),
            secs,
        ));
        if let Some(e) = error {
            err.set_cause(py, Some(PyErr::from_value(e.bind(py).clone())));
        }
        err
    }

    fn seconds(name: &str, v: Option<f64>) -> PyResult<Duration> {
        match v {
            None => Ok(Duration::from_secs(86_400 * 365)),
            Some(s) if (0.0..=86_400.0 * 365.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
            Some(s) => Err(PyValueError::new_err(format!(
                "{name} must be None or a finite number of seconds >= 0, got {s}"
            ))),
        }
    }

    impl LazyCell {
        /// Waits (GIL released, in slices) for attempt `id`; `Ok(None)` on timeout.
        fn wait_for(
            &self,
            py: Python<'_>,
            id: u64,
            timeout: Duration,
        ) -> PyResult<Option<Outcome<Py<PyAny>>>> {
            let deadline = std::time::Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let slice = left.min(WAIT_SLICE);
                if let Some(outcome) = py.detach(|| self.core.wait_attempt(id, slice)) {
                    return Ok(Some(outcome));
                }
                py.check_signals()?;
                if left <= slice {
                    return Ok(None);
                }
            }
        }
    }

    #[pymethods]
    impl LazyCell {
        #[new]
        #[pyo3(signature = (*, backoff_initial = 0.1, backoff_max = 30.0))]
        fn new(backoff_initial: f64, backoff_max: f64) -> PyResult<Self> {
            let backoff =
                Backoff::new(backoff_initial, backoff_max).map_err(PyValueError::new_err)?;
            Ok(LazyCell {
                core: LazyCore::new(backoff),
            })
        }

        #[getter]
        fn state(&self) -> &'static str {
            self.core.state().as_str()
        }

        #[getter]
        fn is_ready(&self) -> bool {
            self.core.state() == super::State::Ready
        }

        /// The value if ready, else ``None``. Lock-free; records the last-use time.
        fn get(&self, py: Python<'_>) -> Option<Py<PyAny>> {
            self.core.with_value(|v| v.clone_ref(py))
        }

        /// Synchronous single flight for threads (waits with the GIL released).
        #[pyo3(signature = (init, *, timeout = None))]
        fn get_or_init(
            &self,
            py: Python<'_>,
            init: Bound<'_, PyAny>,
            timeout: Option<f64>,
        ) -> PyResult<Py<PyAny>> {
            if let Some(v) = self.core.with_value(|v| v.clone_ref(py)) {
                return Ok(v);
            }
            if !init.is_callable() {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "init must be a callable taking no arguments, got {}",
                    init.get_type().name()?
                )));
            }
            let timeout = seconds("timeout", timeout)?;
            let deadline = std::time::Instant::now() + timeout;
            let me = current_owner();
            loop {
                match self.core.try_begin(me) {
                    Begin::Ready(v) => return Ok(v.clone_ref(py)),
                    Begin::Backoff { retry_after, error } => {
                        return Err(backoff_error(py, retry_after, error))
                    }
                    Begin::Claimed(id) => {
                        // Whatever happens in `init` (an exception, a Rust panic
                        // unwinding through us), the attempt must end, or every
                        // waiter would hang: the guard fails it on unwind.
                        struct Abandon<'a>(&'a Core, u64, bool);
                        impl Drop for Abandon<'_> {
                            fn drop(&mut self) {
                                if self.2 {
                                    let e = Python::attach(|py| {
                                        PyRuntimeError::new_err("initialiser panicked")
                                            .into_value(py)
                                            .into_any()
                                    });
                                    let _ = self.0.fail(self.1, e);
                                }
                            }
                        }
                        let mut guard = Abandon(&self.core, id, true);
                        let result = init.call0();
                        guard.2 = false;
                        return match result {
                            Ok(v) => {
                                let out = v.clone().unbind();
                                self.core
                                    .finish(id, v.unbind())
                                    .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
                                Ok(out)
                            }
                            Err(err) => {
                                let value = err.value(py).clone().into_any().unbind();
                                let _ = self.core.fail(id, value);
                                Err(err)
                            }
                        };
                    }
                    Begin::InFlight { id, owner } => {
                        if owner == me {
                            return Err(PyRuntimeError::new_err(
                                "LazyCell.get_or_init called by the thread that is initialising \
                                 this cell (recursive initialisation, or a blocking wait on the \
                                 event-loop thread running its async initialiser): it would deadlock",
                            ));
                        }
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        match self.wait_for(py, id, left)? {
                            Some(Outcome::Failed(e)) => {
                                return Err(PyErr::from_value(e.bind(py).clone()))
                            }
                            Some(Outcome::Ready) | Some(Outcome::Superseded) => continue,
                            None => {
                                return Err(pyo3::exceptions::PyTimeoutError::new_err(format!(
                                    "LazyCell initialisation still in flight after {:.3}s",
                                    timeout.as_secs_f64()
                                )))
                            }
                        }
                    }
                }
            }
        }

        /// Claim an attempt for an asynchronous initialiser (id), or ``None``.
        fn try_begin(&self, py: Python<'_>) -> PyResult<Option<u64>> {
            match self.core.try_begin(current_owner()) {
                Begin::Claimed(id) => Ok(Some(id)),
                Begin::Ready(_) | Begin::InFlight { .. } => Ok(None),
                Begin::Backoff { retry_after, error } => Err(backoff_error(py, retry_after, error)),
            }
        }

        fn finish(&self, attempt: u64, value: Py<PyAny>) -> PyResult<()> {
            self.core
                .finish(attempt, value)
                .map_err(|e| PyValueError::new_err(e.to_string()))
        }

        fn fail(
            &self,
            attempt: u64,
            error: Bound<'_, pyo3::exceptions::PyBaseException>,
        ) -> PyResult<()> {
            self.core
                .fail(attempt, error.into_any().unbind())
                .map_err(|e| PyValueError::new_err(e.to_string()))
        }

        /// Wait (GIL released) until no attempt is in flight; returns the state.
        #[pyo3(signature = (timeout = None))]
        fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<&'static str> {
            let timeout = seconds("timeout", timeout)?;
            let deadline = std::time::Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let slice = left.min(WAIT_SLICE);
                let state = py.detach(|| self.core.wait_idle(slice));
                if state != super::State::Initialising || left <= slice {
                    return Ok(state.as_str());
                }
                py.check_signals()?;
            }
        }

        fn reset(&self, py: Python<'_>) -> Option<Py<PyAny>> {
            self.core.reset().map(|v| v.clone_ref(py))
        }

        #[getter]
        fn attempt(&self) -> Option<u64> {
            self.core.attempt_in_flight()
        }

        #[getter]
        fn init_count(&self) -> u64 {
            self.core.init_count()
        }

        #[getter]
        fn failure_count(&self) -> u64 {
            self.core.failure_count()
        }

        #[getter]
        fn last_init_seconds(&self) -> f64 {
            self.core.last_init_seconds()
        }

        #[getter]
        fn last_error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
            self.core.last_error().map(|e| e.clone_ref(py))
        }

        fn retry_after(&self) -> f64 {
            self.core.retry_after().as_secs_f64()
        }

        fn idle_seconds(&self) -> f64 {
            self.core.idle_seconds()
        }

        fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
            self.core.visit(|v| visit.call(v), |e| visit.call(e))
        }

        fn __clear__(&self) {
            self.core.clear_refs();
        }

        fn __repr__(&self) -> String {
            format!(
                "<LazyCell state={} init_count={} failure_count={}>",
                self.core.state().as_str(),
                self.core.init_count(),
                self.core.failure_count()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::thread;

    fn quick() -> Backoff {
        Backoff::new(0.01, 0.05).unwrap()
    }

    /// The sync single flight the Python face implements, in plain Rust.
    fn get_or_init(
        cell: &LazyCore<u64, String>,
        init: impl FnOnce() -> Result<u64, String>,
    ) -> Result<u64, String> {
        loop {
            match cell.try_begin(current_owner()) {
                Begin::Ready(v) => return Ok(*v),
                Begin::Backoff { .. } => return Err("backoff".into()),
                Begin::Claimed(id) => {
                    return match init() {
                        Ok(v) => {
                            cell.finish(id, v).unwrap();
                            Ok(v)
                        }
                        Err(e) => {
                            cell.fail(id, e.clone()).unwrap();
                            Err(e)
                        }
                    }
                }
                Begin::InFlight { id, .. } => {
                    match cell.wait_attempt(id, Duration::from_secs(10)) {
                        Some(Outcome::Failed(e)) => return Err((*e).clone()),
                        Some(_) => continue,
                        None => panic!("waited too long"),
                    }
                }
            }
        }
    }

    #[test]
    fn empty_then_ready_then_reset() {
        let cell: LazyCore<u64, String> = LazyCore::new(quick());
        assert_eq!(cell.state(), State::Empty);
        assert_eq!(cell.with_value(|v| *v), None);
        assert_eq!(get_or_init(&cell, || Ok(42)), Ok(42));
        assert_eq!(cell.state(), State::Ready);
        assert_eq!(cell.with_value(|v| *v), Some(42));
        assert_eq!(cell.init_count(), 1);
        assert_eq!(cell.reset().map(|v| *v), Some(42));
        assert_eq!(cell.state(), State::Empty);
        assert_eq!(cell.with_value(|v| *v), None);
        assert_eq!(get_or_init(&cell, || Ok(7)), Ok(7));
        assert_eq!(cell.init_count(), 2);
    }

    #[test]
    fn stale_completion_is_refused() {
        let cell: LazyCore<u64, String> = LazyCore::new(quick());
        let Begin::Claimed(id) = cell.try_begin(current_owner()) else {
            panic!("should claim")
        };
        assert!(matches!(
            cell.try_begin(current_owner()),
            Begin::InFlight { id: i, .. } if i == id
        ));
        assert_eq!(
            cell.finish(id + 1, 1),
            Err(NotInFlight {
                attempt: id + 1,
                in_flight: Some(id)
            })
        );
        cell.finish(id, 5).unwrap();
        assert!(cell.finish(id, 6).is_err());
        assert!(cell.fail(id, "x".into()).is_err());
        assert_eq!(cell.with_value(|v| *v), Some(5));
    }

    #[test]
    fn failure_starts_a_backoff() {
        // Long enough that a descheduled test thread still finds it running.
        let cell: LazyCore<u64, String> = LazyCore::new(Backoff::new(10.0, 10.0).unwrap());
        assert_eq!(
            get_or_init(&cell, || Err("boom".into())),
            Err("boom".into())
        );
        assert_eq!(cell.state(), State::Failed);
        assert_eq!(cell.failure_count(), 1);
        assert_eq!(cell.last_error().as_deref(), Some(&"boom".to_string()));
        match cell.try_begin(current_owner()) {
            Begin::Backoff { retry_after, error } => {
                assert!(retry_after <= Duration::from_secs(10));
                assert_eq!(error.as_deref(), Some(&"boom".to_string()));
            }
            other => panic!("expected back-off, got {other:?}"),
        }
    }

    #[test]
    fn failure_is_retried_after_the_backoff() {
        let cell: LazyCore<u64, String> = LazyCore::new(Backoff::new(0.01, 0.01).unwrap());
        assert!(get_or_init(&cell, || Err("boom".into())).is_err());
        thread::sleep(Duration::from_millis(20));
        assert_eq!(get_or_init(&cell, || Ok(3)), Ok(3));
        assert_eq!(cell.state(), State::Ready);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff::new(0.1, 1.0).unwrap();
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(4), Duration::from_millis(800));
        assert_eq!(b.delay(5), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
        assert!(Backoff::new(-1.0, 1.0).is_err());
        assert!(Backoff::new(2.0, 1.0).is_err());
        assert!(Backoff::new(f64::NAN, 1.0).is_err());
        assert!(Backoff::new(0.0, f64::INFINITY).is_err());
        assert!(Backoff::new(0.0, 1e9).is_err());
    }

    #[test]
    fn reset_clears_backoff_and_leaves_flight_alone() {
        let cell: LazyCore<u64, String> = LazyCore::new(Backoff::new(10.0, 10.0).unwrap());
        let _ = get_or_init(&cell, || Err("x".into()));
        assert!(matches!(
            cell.try_begin(current_owner()),
            Begin::Backoff { .. }
        ));
        assert!(cell.reset().is_none());
        assert_eq!(cell.state(), State::Empty);
        let Begin::Claimed(id) = cell.try_begin(current_owner()) else {
            panic!()
        };
        assert!(cell.reset().is_none());
        assert_eq!(cell.state(), State::Initialising);
        cell.finish(id, 1).unwrap();
        assert_eq!(cell.with_value(|v| *v), Some(1));
    }

    #[test]
    fn single_flight_under_many_threads() {
        for _round in 0..20 {
            let cell: Arc<LazyCore<u64, String>> = Arc::new(LazyCore::new(quick()));
            let runs = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..32)
                .map(|_| {
                    let cell = cell.clone();
                    let runs = runs.clone();
                    thread::spawn(move || {
                        get_or_init(&cell, || {
                            runs.fetch_add(1, Ordering::SeqCst);
                            thread::sleep(Duration::from_millis(2));
                            Ok(99)
                        })
                    })
                })
                .collect();
            for h in handles {
                assert_eq!(h.join().unwrap(), Ok(99));
            }
            assert_eq!(runs.load(Ordering::SeqCst), 1);
            assert_eq!(cell.init_count(), 1);
        }
    }

    #[test]
    fn all_waiters_of_a_failed_attempt_get_its_error() {
        let cell: Arc<LazyCore<u64, String>> =
            Arc::new(LazyCore::new(Backoff::new(5.0, 5.0).unwrap()));
        let runs = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(std::sync::Barrier::new(16));
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (cell, runs, barrier) = (cell.clone(), runs.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    get_or_init(&cell, || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(30));
                        Err("nope".into())
                    })
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Threads that arrived during the attempt share its error; any that came
        // after it ended see the back-off instead.
        assert!(results
            .iter()
            .all(|r| r == &Err("nope".to_string()) || r == &Err("backoff".to_string())));
        assert!(results.iter().any(|r| r == &Err("nope".to_string())));
        assert_eq!(cell.failure_count(), 1);
    }

    #[test]
    fn readers_hammer_while_reset_and_reinit() {
        let cell: Arc<LazyCore<u64, String>> = Arc::new(LazyCore::new(quick()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (cell, stop) = (cell.clone(), stop.clone());
                thread::spawn(move || {
                    let mut seen = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let v = get_or_init(&cell, || Ok(11)).unwrap();
                        assert_eq!(v, 11);
                        seen += 1;
                    }
                    seen
                })
            })
            .collect();
        for _ in 0..200 {
            cell.reset();
            thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        assert!(cell.init_count() >= 1);
    }

    #[test]
    fn visit_reports_each_reference_once_and_clear_drops_them() {
        let cell: LazyCore<u64, String> = LazyCore::new(Backoff::new(0.0, 0.0).unwrap());
        let _ = get_or_init(&cell, || Err("e1".into()));
        let mut seen = (0, 0);
        cell.visit::<()>(
            |_| {
                seen.0 += 1;
                Ok(())
            },
            |_| {
                seen.1 += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0, 1), "last_error and last_done share one reference");
        get_or_init(&cell, || Ok(5)).unwrap();
        let mut seen = (0, 0);
        cell.visit::<()>(
            |_| {
                seen.0 += 1;
                Ok(())
            },
            |_| {
                seen.1 += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (1, 1));
        cell.clear_refs();
        assert_eq!(cell.state(), State::Empty);
        assert!(cell.last_error().is_none());
        assert_eq!(cell.with_value(|v| *v), None);
    }

    #[test]
    fn idle_seconds_counts_from_last_use() {
        let cell: LazyCore<u64, String> = LazyCore::new(quick());
        assert_eq!(cell.idle_seconds(), 0.0);
        get_or_init(&cell, || Ok(1)).unwrap();
        thread::sleep(Duration::from_millis(30));
        assert!(cell.idle_seconds() > 0.0);
        let before = cell.idle_seconds();
        cell.with_value(|_| ());
        assert!(cell.idle_seconds() < before);
    }
}
