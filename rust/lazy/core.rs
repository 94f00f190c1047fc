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
    /// The caller owns attempt `id` and must `finish`, `fail` or `abandon` it.
    Claimed(u64),
    /// Attempt `id` is in flight, claimed by `owner`.
    InFlight { id: u64, owner: Owner },
    /// The last attempt failed; retry after `retry_after`.
    Backoff {
        retry_after: Duration,
        error: Option<Arc<E>>,
    },
}

/// What `join` decided: like [`Begin`], but an attempt in flight comes with a
/// [`Waiter`] already registered on it, so its outcome is kept for this caller.
#[derive(Debug)]
pub enum Join<'a, T, E> {
    Ready(Arc<T>),
    Claimed(u64),
    Wait(Waiter<'a, T, E>),
    Backoff {
        retry_after: Duration,
        error: Option<Arc<E>>,
    },
}

/// The outcome of one attempt, as handed to each of its waiters.
#[derive(Debug)]
pub enum Outcome<T, E> {
    /// The attempt's own value (even if the cell was reset since).
    Ready(Arc<T>),
    Failed(Arc<E>),
    /// Ended without an outcome (its owner gave up): callers look again.
    Abandoned,
}

impl<T, E> Clone for Outcome<T, E> {
    fn clone(&self) -> Self {
        match self {
            Outcome::Ready(v) => Outcome::Ready(v.clone()),
            Outcome::Failed(e) => Outcome::Failed(e.clone()),
            Outcome::Abandoned => Outcome::Abandoned,
        }
    }
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
    /// Registered [`Waiter`]s: each gets this attempt's outcome.
    waiters: usize,
}

/// A finished attempt's outcome, kept until each of its waiters has taken it.
#[derive(Debug)]
struct Handoff<T, E> {
    id: u64,
    outcome: Outcome<T, E>,
    waiters: usize,
}

#[derive(Debug)]
struct Inner<T, E> {
    next_attempt: u64,
    in_flight: Option<InFlight>,
    /// One per finished attempt whose waiters have not all woken yet.
    handoffs: Vec<Handoff<T, E>>,
    consecutive_failures: u32,
    retry_at: Option<Instant>,
}

/// The interpreter-free lazy cell. `T` is the value, `E` the error.
///
/// Rule for every lock here: nothing of `T` or `E` is dropped while the lock is
/// held (for Python they are objects whose last reference may run arbitrary
/// code that re-enters the cell or releases the GIL). Whatever a section
/// replaces is moved out and dropped after the guard.
#[derive(Debug)]
pub struct LazyCore<T, E> {
    value: ArcSwapOption<T>,
    /// The last failure's error: outside the lock, so the garbage collector
    /// reads it without one (written only under the lock).
    last_error: ArcSwapOption<E>,
    state: AtomicU8,
    last_use: AtomicU64,
    used: AtomicBool,
    init_count: AtomicU64,
    failure_count: AtomicU64,
    last_init_nanos: AtomicU64,
    backoff: Backoff,
    inner: Mutex<Inner<T, E>>,
    done: Condvar,
    #[cfg(test)]
    hook: TestHook,
}

/// Tests only: a callback run at named points, to pause a thread there and
/// force an interleaving.
#[cfg(test)]
type HookFn = Arc<dyn Fn(&'static str) + Send + Sync>;

#[cfg(test)]
#[derive(Default)]
struct TestHook(Mutex<Option<HookFn>>);

#[cfg(test)]
impl std::fmt::Debug for TestHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestHook")
    }
}

/// A caller registered on an attempt in flight (from [`LazyCore::join`]).
/// Dropping it unregisters (a timeout, a signal), releasing its share of the
/// outcome.
#[derive(Debug)]
pub struct Waiter<'a, T, E> {
    core: &'a LazyCore<T, E>,
    id: u64,
    owner: Owner,
    collected: bool,
}

impl<T, E> Waiter<'_, T, E> {
    /// The attempt waited for.
    pub fn attempt(&self) -> u64 {
        self.id
    }

    /// The thread that owns the attempt.
    pub fn owner(&self) -> Owner {
        self.owner
    }

    /// Waits up to `timeout` for the attempt to end; `None` = still in flight
    /// (call again). The outcome is the attempt's own, whatever happened to
    /// the cell after it (a reset, a later attempt).
    pub fn wait(&mut self, timeout: Duration) -> Option<Outcome<T, E>> {
        assert!(!self.collected, "the outcome was already taken");
        let deadline = Instant::now() + timeout;
        let core = self.core;
        let mut inner = core.lock();
        while matches!(&inner.in_flight, Some(f) if f.id == self.id) {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            inner = core
                .done
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let (outcome, gone) = take_share(&mut inner, self.id);
        self.collected = true;
        drop(inner);
        drop(gone);
        Some(outcome)
    }
}

impl<T, E> Drop for Waiter<'_, T, E> {
    fn drop(&mut self) {
        if self.collected {
            return;
        }
        let mut inner = self.core.lock();
        let gone = match &mut inner.in_flight {
            Some(f) if f.id == self.id => {
                f.waiters = f.waiters.saturating_sub(1);
                None
            }
            _ => take_share(&mut inner, self.id).1,
        };
        drop(inner);
        drop(gone);
    }
}

/// Takes one waiter's share of attempt `id`'s outcome; returns the handoff
/// when that was the last share, for the caller to drop after unlocking.
fn take_share<T, E>(inner: &mut Inner<T, E>, id: u64) -> (Outcome<T, E>, Option<Handoff<T, E>>) {
    let Some(pos) = inner.handoffs.iter().position(|h| h.id == id) else {
        // Unreachable while every registration is counted; looking again is safe.
        return (Outcome::Abandoned, None);
    };
    let h = &mut inner.handoffs[pos];
    h.waiters -= 1;
    let outcome = h.outcome.clone();
    let gone = (h.waiters == 0).then(|| inner.handoffs.swap_remove(pos));
    (outcome, gone)
}

impl<T, E> LazyCore<T, E> {
    pub fn new(backoff: Backoff) -> Self {
        LazyCore {
            value: ArcSwapOption::const_empty(),
            last_error: ArcSwapOption::const_empty(),
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
                handoffs: Vec::new(),
                consecutive_failures: 0,
                retry_at: None,
            }),
            done: Condvar::new(),
            #[cfg(test)]
            hook: TestHook::default(),
        }
    }

    /// Tests only: runs `f(point)` at each named point of the code.
    #[cfg(test)]
    pub(crate) fn set_test_hook(&self, f: impl Fn(&'static str) + Send + Sync + 'static) {
        *self.hook.0.lock().unwrap() = Some(Arc::new(f));
    }

    #[cfg(test)]
    fn at(&self, point: &'static str) {
        let hook = self.hook.0.lock().unwrap().clone();
        if let Some(f) = hook {
            f(point);
        }
    }

    #[cfg(not(test))]
    #[inline(always)]
    fn at(&self, _point: &'static str) {}

    // A panic while holding the lock cannot leave `Inner` half-updated in a way
    // that matters (every update is a few plain stores), so poisoning is ignored
    // rather than turned into a panic of its own.
    fn lock(&self) -> MutexGuard<'_, Inner<T, E>> {
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
        self.used.store(false, Ordering::Release);
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

    /// The common decision of `try_begin` and `join`; with `register`, an
    /// attempt in flight counts the caller as one of its waiters.
    fn begin(&self, owner: Owner, register: bool) -> Begin<T, E> {
        if let Some(v) = self.value.load_full() {
            self.touch();
            return Begin::Ready(v);
        }
        let mut inner = self.lock();
        if let Some(v) = self.value.load_full() {
            self.touch();
            return Begin::Ready(v);
        }
        if let Some(f) = &mut inner.in_flight {
            if register {
                f.waiters += 1;
            }
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
                    error: self.last_error.load_full(),
                };
            }
        }
        let id = inner.next_attempt;
        inner.next_attempt += 1;
        inner.in_flight = Some(InFlight {
            id,
            owner,
            started: Instant::now(),
            waiters: 0,
        });
        self.state
            .store(State::Initialising as u8, Ordering::Release);
        Begin::Claimed(id)
    }

    /// Claims an attempt for `owner`, or says why not.
    pub fn try_begin(&self, owner: Owner) -> Begin<T, E> {
        self.begin(owner, false)
    }

    /// Like [`Self::try_begin`], but an attempt in flight registers the caller
    /// as its waiter (in the same step), so that attempt's outcome is kept
    /// for it however soon the cell is reset or tried again.
    pub fn join(&self, owner: Owner) -> Join<'_, T, E> {
        match self.begin(owner, true) {
            Begin::Ready(v) => Join::Ready(v),
            Begin::Claimed(id) => Join::Claimed(id),
            Begin::InFlight { id, owner } => Join::Wait(Waiter {
                core: self,
                id,
                owner,
                collected: false,
            }),
            Begin::Backoff { retry_after, error } => Join::Backoff { retry_after, error },
        }
    }

    fn take_attempt(&self, inner: &mut Inner<T, E>, attempt: u64) -> Result<InFlight, NotInFlight> {
        match &inner.in_flight {
            Some(f) if f.id == attempt => Ok(inner.in_flight.take().expect("checked above")),
            other => Err(NotInFlight {
                attempt,
                in_flight: other.as_ref().map(|f| f.id),
            }),
        }
    }

    /// Ends `flight` for its waiters: their outcome is kept until each took
    /// it. Without waiters the outcome is handed back, to drop after unlocking.
    #[must_use]
    fn hand_off(
        inner: &mut Inner<T, E>,
        flight: &InFlight,
        outcome: Outcome<T, E>,
    ) -> Option<Outcome<T, E>> {
        if flight.waiters == 0 {
            return Some(outcome);
        }
        inner.handoffs.push(Handoff {
            id: flight.id,
            outcome,
            waiters: flight.waiters,
        });
        None
    }

    /// Completes `attempt` with `value`; the cell becomes ready.
    pub fn finish(&self, attempt: u64, value: T) -> Result<(), NotInFlight> {
        let value = Arc::new(value);
        let mut inner = self.lock();
        let flight = self.take_attempt(&mut inner, attempt)?;
        let took = flight.started.elapsed();
        let old = self.value.swap(Some(value.clone()));
        self.state.store(State::Ready as u8, Ordering::Release);
        self.last_init_nanos
            .store(took.as_nanos() as u64, Ordering::Relaxed);
        self.init_count.fetch_add(1, Ordering::Relaxed);
        self.stamp();
        inner.consecutive_failures = 0;
        inner.retry_at = None;
        let unused = Self::hand_off(&mut inner, &flight, Outcome::Ready(value));
        drop(inner);
        self.done.notify_all();
        drop((old, unused));
        Ok(())
    }

    /// Fails `attempt` with `error`; the back-off starts.
    pub fn fail(&self, attempt: u64, error: E) -> Result<(), NotInFlight> {
        let error = Arc::new(error);
        let mut inner = self.lock();
        let flight = self.take_attempt(&mut inner, attempt)?;
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        inner.retry_at = Some(Instant::now() + self.backoff.delay(inner.consecutive_failures));
        let old = self.last_error.swap(Some(error.clone()));
        let unused = Self::hand_off(&mut inner, &flight, Outcome::Failed(error));
        self.failure_count.fetch_add(1, Ordering::Relaxed);
        self.state.store(State::Failed as u8, Ordering::Release);
        drop(inner);
        self.done.notify_all();
        drop((old, unused));
        Ok(())
    }

    /// Ends `attempt` with no outcome (its owner gave up before it could
    /// finish or fail it, e.g. a task cancelled before it ran): no failure is
    /// counted and no back-off starts; waiters look again (one may claim the
    /// next attempt).
    pub fn abandon(&self, attempt: u64) -> Result<(), NotInFlight> {
        let mut inner = self.lock();
        let flight = self.take_attempt(&mut inner, attempt)?;
        let _nothing_to_drop = Self::hand_off(&mut inner, &flight, Outcome::Abandoned);
        let state = if inner.consecutive_failures > 0 {
            State::Failed
        } else {
            State::Empty
        };
        self.state.store(state as u8, Ordering::Release);
        drop(inner);
        self.done.notify_all();
        Ok(())
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
    /// returned. Waiters of an attempt that already finished still get its
    /// value (they hold their own reference until they wake).
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

    /// The last failure's error (lock-free).
    pub fn last_error(&self) -> Option<Arc<E>> {
        self.last_error.load_full()
    }

    /// The attempt in flight, if any.
    pub fn attempt_in_flight(&self) -> Option<u64> {
        self.lock().in_flight.as_ref().map(|f| f.id)
    }

    /// The attempt in flight and the thread that owns it, if any.
    pub fn flight(&self) -> Option<(u64, Owner)> {
        self.lock().in_flight.as_ref().map(|f| (f.id, f.owner))
    }

    /// Waiters registered on the attempt in flight (tests, debugging).
    pub fn waiting(&self) -> usize {
        self.lock().in_flight.as_ref().map_or(0, |f| f.waiters)
    }

    /// Seconds since the value was last returned or set; 0.0 when not ready.
    ///
    /// A use is seen at the next call of this method (which then counts from
    /// that moment), so the answer is accurate to the interval between two
    /// calls: it may say "used just now" for a use up to one interval old,
    /// never "idle" for a value in use. Two pollers at once agree: the stamp is
    /// written *before* the flag is cleared, so whoever sees the flag clear
    /// also sees the new stamp.
    pub fn idle_seconds(&self) -> f64 {
        if self.state() != State::Ready {
            return 0.0;
        }
        if self.used.load(Ordering::Acquire) {
            self.last_use
                .store(monotonic_coarse_nanos(), Ordering::Relaxed);
            self.at("idle_seconds");
            self.used.store(false, Ordering::Release);
            return 0.0;
        }
        let last = self.last_use.load(Ordering::Relaxed);
        monotonic_coarse_nanos().saturating_sub(last) as f64 / 1e9
    }

    /// Calls `value` for the held value and `error` for the held error (for
    /// the garbage collector: each reference exactly once). Takes no lock, so
    /// a collection during any other call sees both. The outcomes kept for
    /// waiters are not reported: they live only until the waiters wake, and
    /// an unreported reference can only delay a collection, never free a
    /// live object.
    pub fn visit<X>(
        &self,
        mut value: impl FnMut(&T) -> Result<(), X>,
        mut error: impl FnMut(&E) -> Result<(), X>,
    ) -> Result<(), X> {
        if let Some(v) = self.value.load().as_ref() {
            value(v)?;
        }
        if let Some(e) = self.last_error.load().as_ref() {
            error(e)?;
        }
        Ok(())
    }

    /// Drops the value and the remembered error (garbage-collector clear);
    /// they are dropped after the lock is released.
    pub fn clear_refs(&self) {
        let (value, error) = {
            let inner = self.lock();
            if inner.in_flight.is_none() {
                self.state.store(State::Empty as u8, Ordering::Release);
            }
            (self.value.swap(None), self.last_error.swap(None))
        };
        drop(value);
        drop(error);
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
