//! The interpreter-free core of `transcode_cache` (see the module doc in `mod.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::monotonic_coarse_nanos;
use crate::pressure::Level;

/// Largest budget accepted (1 PiB): anything above is a unit mix-up.
pub const MAX_BUDGET_BYTES: u64 = 1 << 50;

/// What one entry costs besides its value and key bytes, charged against the
/// budget: the hash-map slot and its `Arc<str>` key header, the LRU node, the
/// pin list, and the header of the Python `bytes` object held (33 bytes).
/// Without it empty values and keys were free: 200,000 of them under a 1 KiB
/// budget took 220 MiB.
pub const ENTRY_OVERHEAD_BYTES: u64 = 160;

/// Longest key accepted (bytes of UTF-8).
pub const MAX_KEY_BYTES: usize = 1024;

/// Proof of one pin, handed out by `pin` / `insert_pinned` and presented to
/// `unpin`. Tokens are unique for the life of the cache, so a holder whose
/// entry was removed (and the key inserted again) cannot release someone
/// else's pin.
pub type PinToken = u64;

/// What `key` with a value of `size` bytes is charged.
pub fn charge(key: &str, size: u64) -> u64 {
    size.saturating_add(key.len() as u64)
        .saturating_add(ENTRY_OVERHEAD_BYTES)
}

/// Validated construction parameters.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub budget: u64,
    /// Seconds without pressure before each growth step.
    pub quiet_seconds: f64,
    /// Fraction of the budget regained per step, in (0, 1].
    pub grow_step: f64,
}

impl Config {
    pub fn new(budget: u64, quiet_seconds: f64, grow_step: f64) -> Result<Config, String> {
        if budget == 0 || budget > MAX_BUDGET_BYTES {
            return Err(format!(
                "budget_bytes must be between 1 and {MAX_BUDGET_BYTES}, got {budget}"
            ));
        }
        if !(quiet_seconds.is_finite() && (0.0..=86_400.0).contains(&quiet_seconds)) {
            return Err(format!(
                "quiet_seconds must be a finite number in [0, 86400], got {quiet_seconds}"
            ));
        }
        if !(grow_step.is_finite() && grow_step > 0.0 && grow_step <= 1.0) {
            return Err(format!("grow_step must be in (0, 1], got {grow_step}"));
        }
        Ok(Config {
            budget,
            quiet_seconds,
            grow_step,
        })
    }
}

/// Why `insert` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Under pressure only pinned entries are admitted.
    Pressure,
    /// Pinned bytes leave no room for it within the effective budget.
    NoRoom,
}

/// A snapshot of the statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub entries: u64,
    pub bytes: u64,
    pub pinned_bytes: u64,
    pub pinned_entries: u64,
    pub evictions: u64,
    pub evicted_bytes: u64,
    pub rejected: u64,
    pub budget_bytes: u64,
    pub effective_budget_bytes: u64,
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    /// Bytes charged: value + key + [`ENTRY_OVERHEAD_BYTES`].
    size: u64,
    /// One token per holder (usually one or two: a short list, scanned).
    pins: Vec<PinToken>,
    /// Position in the LRU order (meaningful while unpinned).
    tick: u64,
}

#[derive(Debug)]
struct State<V> {
    entries: HashMap<Arc<str>, Slot<V>>,
    /// Unpinned entries by last use, oldest first.
    lru: BTreeMap<u64, Arc<str>>,
    next_tick: u64,
    next_token: PinToken,
    bytes: u64,
    pinned_bytes: u64,
    pinned_entries: u64,
    level: Level,
    /// Effective budget (<= budget).
    cap: u64,
    /// Clock (nanos) of the last level change or growth step.
    since: u64,
    hits: u64,
    misses: u64,
    evictions: u64,
    evicted_bytes: u64,
    rejected: u64,
}

/// The interpreter-free transcode cache.
#[derive(Debug)]
pub struct TranscodeCore<V> {
    config: Config,
    state: Mutex<State<V>>,
    skew_nanos: AtomicU64,
}

impl<V> TranscodeCore<V> {
    pub fn new(config: Config) -> Self {
        TranscodeCore {
            config,
            state: Mutex::new(State {
                entries: HashMap::new(),
                lru: BTreeMap::new(),
                next_tick: 0,
                next_token: 0,
                bytes: 0,
                pinned_bytes: 0,
                pinned_entries: 0,
                level: Level::Normal,
                cap: config.budget,
                since: monotonic_coarse_nanos(),
                hits: 0,
                misses: 0,
                evictions: 0,
                evicted_bytes: 0,
                rejected: 0,
            }),
            skew_nanos: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> Config {
        self.config
    }

    fn now(&self) -> u64 {
        monotonic_coarse_nanos().wrapping_add(self.skew_nanos.load(Ordering::Relaxed))
    }

    // Every update keeps the invariants before it can panic (there is nothing
    // in these sections that panics on valid state), so a poisoned lock still
    // guards consistent data.
    fn lock(&self) -> MutexGuard<'_, State<V>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn half(&self) -> u64 {
        self.config.budget / 2
    }

    /// Grows the effective budget back in steps after quiet periods.
    fn grow(&self, st: &mut State<V>, now: u64) {
        if st.level != Level::Normal || st.cap >= self.config.budget {
            return;
        }
        let quiet = (self.config.quiet_seconds * 1e9) as u64;
        let step = ((self.config.budget as f64 * self.config.grow_step) as u64).max(1);
        let elapsed = now.saturating_sub(st.since);
        if quiet == 0 {
            // No quiet period: one step per call.
            st.cap = st.cap.saturating_add(step).min(self.config.budget);
            st.since = now;
            return;
        }
        // All the periods that passed at once (a loop per period would run
        // under the lock for as long as the clock stood still times the budget).
        let periods = elapsed / quiet;
        let needed = (self.config.budget - st.cap).div_ceil(step);
        let n = periods.min(needed);
        if n == 0 {
            return;
        }
        st.cap = st
            .cap
            .saturating_add(n.saturating_mul(step))
            .min(self.config.budget);
        st.since = st.since.saturating_add(n * quiet);
    }

    /// Evicts LRU unpinned entries until `bytes + extra <= limit` (or none is
    /// left); returns the evicted values so the caller drops them unlocked.
    fn evict_to(&self, st: &mut State<V>, limit: u64, extra: u64, out: &mut Vec<V>) {
        while st.bytes + extra > limit {
            let Some((_, key)) = st.lru.pop_first() else {
                break;
            };
            if let Some(slot) = st.entries.remove(&key) {
                st.bytes -= slot.size;
                st.evictions += 1;
                st.evicted_bytes += slot.size;
                out.push(slot.value);
            }
        }
    }

    fn evict_all_unpinned(&self, st: &mut State<V>, out: &mut Vec<V>) {
        while let Some((_, key)) = st.lru.pop_first() {
            if let Some(slot) = st.entries.remove(&key) {
                st.bytes -= slot.size;
                st.evictions += 1;
                st.evicted_bytes += slot.size;
                out.push(slot.value);
            }
        }
    }

    fn tick(st: &mut State<V>) -> u64 {
        st.next_tick += 1;
        st.next_tick
    }

    fn token(st: &mut State<V>) -> PinToken {
        st.next_token += 1;
        st.next_token
    }

    /// Inserts (or replaces) `key`, unpinned (a replaced entry's pins stay).
    /// `key` and `size` must pass [`Self::check`] (the caller's validation).
    pub fn insert(&self, key: &str, value: V, size: u64) -> Result<(), Refused> {
        self.insert_with(key, value, size, false).map(|_| ())
    }

    /// Inserts (or replaces) `key` with a new pin; returns its token.
    pub fn insert_pinned(&self, key: &str, value: V, size: u64) -> Result<PinToken, Refused> {
        self.insert_with(key, value, size, true)
            .map(|t| t.expect("a pinned insert makes a token"))
    }

    fn insert_with(
        &self,
        key: &str,
        value: V,
        size: u64,
        pinned: bool,
    ) -> Result<Option<PinToken>, Refused> {
        let mut dropped = Vec::new();
        let result = {
            let mut st = self.lock();
            let now = self.now();
            self.grow(&mut st, now);
            self.insert_locked(&mut st, key, value, charge(key, size), pinned, &mut dropped)
        };
        drop(dropped);
        result
    }

    fn insert_locked(
        &self,
        st: &mut State<V>,
        key: &str,
        value: V,
        size: u64,
        pinned: bool,
        dropped: &mut Vec<V>,
    ) -> Result<Option<PinToken>, Refused> {
        let already_pinned = st.entries.get(key).is_some_and(|s| !s.pins.is_empty());
        let will_pin = pinned || already_pinned;
        if st.level != Level::Normal && !will_pin {
            st.rejected += 1;
            dropped.push(value); // a value may not be dropped under the lock
            return Err(Refused::Pressure);
        }
        let limit = match st.level {
            Level::Normal => st.cap,
            Level::Moderate | Level::Critical => st.cap.min(self.half()),
        };
        // Feasible only if the other pinned bytes plus the new entry fit:
        // checked before touching anything, so a refused insert costs no one
        // their entry (not even the one it would have replaced).
        let old_pinned = st
            .entries
            .get(key)
            .map_or(0, |s| if s.pins.is_empty() { 0 } else { s.size });
        if st.pinned_bytes - old_pinned + size > limit {
            st.rejected += 1;
            dropped.push(value);
            return Err(Refused::NoRoom);
        }
        let mut pins = Vec::new();
        if let Some(mut old) = st.entries.remove(key) {
            st.bytes -= old.size;
            pins = std::mem::take(&mut old.pins);
            if !pins.is_empty() {
                st.pinned_bytes -= old.size;
                st.pinned_entries -= 1;
            } else {
                st.lru.remove(&old.tick);
            }
            dropped.push(old.value);
        }
        self.evict_to(st, limit, size, dropped);
        debug_assert!(st.bytes + size <= limit);
        let key: Arc<str> = Arc::from(key);
        let token = pinned.then(|| Self::token(st));
        pins.extend(token);
        let tick = Self::tick(st);
        if !pins.is_empty() {
            st.pinned_bytes += size;
            st.pinned_entries += 1;
        } else {
            st.lru.insert(tick, key.clone());
        }
        st.bytes += size;
        st.entries.insert(
            key,
            Slot {
                value,
                size,
                pins,
                tick,
            },
        );
        Ok(token)
    }

    /// Looks `key` up and hands its value to `f` (under the lock: `f` should
    /// only take a new reference).
    pub fn get_with<R>(&self, key: &str, f: impl FnOnce(&V) -> R) -> Option<R> {
        let mut st = self.lock();
        let next = st.next_tick + 1;
        let found = match st.entries.get_mut(key) {
            Some(slot) => {
                let old_tick = slot.tick;
                slot.tick = next;
                Some((f(&slot.value), slot.pins.is_empty(), old_tick))
            }
            None => None,
        };
        match found {
            Some((value, unpinned, old_tick)) => {
                st.next_tick = next;
                if unpinned {
                    if let Some(k) = st.lru.remove(&old_tick) {
                        st.lru.insert(next, k);
                    }
                }
                st.hits += 1;
                Some(value)
            }
            None => {
                st.misses += 1;
                None
            }
        }
    }

    /// Adds a pin to `key`'s entry and returns its token (`None` if absent).
    pub fn pin(&self, key: &str) -> Option<PinToken> {
        let mut st = self.lock();
        let token = Self::token(&mut st);
        let State {
            entries,
            lru,
            pinned_bytes,
            pinned_entries,
            ..
        } = &mut *st;
        let slot = entries.get_mut(key)?;
        if slot.pins.is_empty() {
            lru.remove(&slot.tick);
            *pinned_bytes += slot.size;
            *pinned_entries += 1;
        }
        slot.pins.push(token);
        Some(token)
    }

    /// Releases the pin `token` on `key`'s entry (`false` if the entry is gone
    /// or the token is not one of its pins: released already, or a pin of an
    /// entry that was removed before this one was inserted). When the last pin
    /// goes the entry becomes evictable and the effective budget is enforced
    /// at once.
    pub fn unpin(&self, key: &str, token: PinToken) -> bool {
        let mut dropped = Vec::new();
        let ok = {
            let mut st = self.lock();
            let tick = Self::tick(&mut st);
            let State {
                entries,
                lru,
                pinned_bytes,
                pinned_entries,
                ..
            } = &mut *st;
            let ok = match entries.get_key_value(key) {
                Some((k, _)) => {
                    let k = k.clone();
                    let slot = entries.get_mut(key).expect("present");
                    match slot.pins.iter().position(|&p| p == token) {
                        Some(pos) => {
                            slot.pins.swap_remove(pos);
                            if slot.pins.is_empty() {
                                *pinned_bytes -= slot.size;
                                *pinned_entries -= 1;
                                slot.tick = tick;
                                lru.insert(tick, k);
                            }
                            true
                        }
                        None => false,
                    }
                }
                None => false,
            };
            if ok {
                self.enforce(&mut st, &mut dropped);
            }
            ok
        };
        drop(dropped);
        ok
    }

    fn enforce(&self, st: &mut State<V>, dropped: &mut Vec<V>) {
        match st.level {
            Level::Normal => self.evict_to(st, st.cap, 0, dropped),
            Level::Moderate => self.evict_to(st, st.cap.min(self.half()), 0, dropped),
            Level::Critical => self.evict_all_unpinned(st, dropped),
        }
    }

    pub fn remove(&self, key: &str) -> bool {
        let removed = {
            let mut st = self.lock();
            match st.entries.remove(key) {
                Some(slot) => {
                    st.bytes -= slot.size;
                    if !slot.pins.is_empty() {
                        st.pinned_bytes -= slot.size;
                        st.pinned_entries -= 1;
                    } else {
                        st.lru.remove(&slot.tick);
                    }
                    Some(slot.value)
                }
                None => None,
            }
        };
        removed.is_some()
    }

    /// Applies a pressure level; returns the bytes evicted to meet it.
    pub fn set_pressure(&self, level: Level) -> u64 {
        let mut dropped = Vec::new();
        let evicted = {
            let mut st = self.lock();
            let now = self.now();
            let before = st.evicted_bytes;
            if level != st.level {
                st.since = now;
                match level {
                    Level::Normal => {}
                    Level::Moderate | Level::Critical => st.cap = st.cap.min(self.half()),
                }
                st.level = level;
            }
            self.grow(&mut st, now);
            self.enforce(&mut st, &mut dropped);
            st.evicted_bytes - before
        };
        drop(dropped);
        evicted
    }

    pub fn level(&self) -> Level {
        self.lock().level
    }

    /// The effective budget now (after any growth step that is due).
    pub fn effective_budget(&self) -> u64 {
        let mut st = self.lock();
        let now = self.now();
        self.grow(&mut st, now);
        match st.level {
            Level::Normal => st.cap,
            Level::Moderate | Level::Critical => st.cap.min(self.half()),
        }
    }

    pub fn clear(&self) {
        let dropped: Vec<Slot<V>> = {
            let mut st = self.lock();
            st.lru.clear();
            st.bytes = 0;
            st.pinned_bytes = 0;
            st.pinned_entries = 0;
            st.entries.drain().map(|(_, s)| s).collect()
        };
        drop(dropped);
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tests: moves this cache's clock forward.
    pub fn advance_clock(&self, seconds: f64) {
        self.skew_nanos
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }

    pub fn stats(&self) -> Stats {
        let effective = self.effective_budget();
        let st = self.lock();
        Stats {
            hits: st.hits,
            misses: st.misses,
            entries: st.entries.len() as u64,
            bytes: st.bytes,
            pinned_bytes: st.pinned_bytes,
            pinned_entries: st.pinned_entries,
            evictions: st.evictions,
            evicted_bytes: st.evicted_bytes,
            rejected: st.rejected,
            budget_bytes: self.config.budget,
            effective_budget_bytes: effective,
        }
    }

    /// Keys of the pinned entries (tests and debugging).
    pub fn pinned_keys(&self) -> Vec<String> {
        let st = self.lock();
        st.entries
            .iter()
            .filter(|(_, s)| !s.pins.is_empty())
            .map(|(k, _)| k.to_string())
            .collect()
    }

    /// Checks an entry before it is offered: a key longer than
    /// [`MAX_KEY_BYTES`], or an entry whose charge (value, key and overhead)
    /// is larger than the whole budget, can never be cached: a caller's error,
    /// not a cache decision.
    pub fn check(&self, key: &str, size: u64) -> Result<(), String> {
        if key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "key must be at most {MAX_KEY_BYTES} bytes of UTF-8, got {}",
                key.len()
            ));
        }
        let charged = charge(key, size);
        if charged > self.config.budget {
            return Err(format!(
                "segment of {size} bytes (charged {charged} with its key and the \
                 {ENTRY_OVERHEAD_BYTES}-byte entry overhead) is larger than the whole budget \
                 ({} bytes)",
                self.config.budget
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
