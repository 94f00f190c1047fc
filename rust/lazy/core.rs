//! The interpreter-free core of `lazy` (see the module doc in `mod.rs`).

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

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
