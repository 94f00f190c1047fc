//! TranscodeCache: key -> segment, weighted by size, under a byte budget that
//! is never exceeded, with pinning and memory-pressure levels.
//!
//! Every change (admission, eviction, pin, pressure) happens under one mutex,
//! so the check "does it fit" and the evictions that make it fit are one step:
//! no interleaving can push the total over the budget, not even briefly.
//! Segments are megabytes and a request handles one at a time, so a short
//! mutex section costs nothing next to sending the bytes.
//!
//! Eviction is LRU among unpinned entries (segments are streamed in order and
//! rarely re-read out of order). Pinned entries (being streamed) are never
//! evicted; pins are counted, so two streams of one segment need two unpins.
//!
//! Pressure: on `moderate` the effective budget halves and only pinned
//! entries are admitted; on `critical` every unpinned entry goes and only
//! pinned entries are admitted (within half the budget). Back on `normal`,
//! the effective budget grows back by `grow_step` of the budget after each
//! `quiet` period without pressure.
//!
//! The core is generic over the stored value (the Python face stores the
//! caller's `bytes` object itself, so neither insert nor get copies it).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::monotonic_coarse_nanos;

/// Largest budget accepted (1 PiB): anything above is a unit mix-up.
pub const MAX_BUDGET_BYTES: u64 = 1 << 50;

/// Memory-pressure level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Normal,
    Moderate,
    Critical,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "normal" => Some(Level::Normal),
            "moderate" => Some(Level::Moderate),
            "critical" => Some(Level::Critical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Moderate => "moderate",
            Level::Critical => "critical",
        }
    }
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
    size: u64,
    pins: u32,
    /// Position in the LRU order (meaningful while unpinned).
    tick: u64,
}

#[derive(Debug)]
struct State<V> {
    entries: HashMap<Arc<str>, Slot<V>>,
    /// Unpinned entries by last use, oldest first.
    lru: BTreeMap<u64, Arc<str>>,
    next_tick: u64,
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
        while st.cap < self.config.budget && now.saturating_sub(st.since) >= quiet {
            st.cap = st.cap.saturating_add(step).min(self.config.budget);
            st.since = if quiet == 0 { now } else { st.since + quiet };
            if quiet == 0 {
                break; // one step per call when there is no quiet period
            }
        }
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

    /// Inserts (or replaces) `key`. `size` must be <= the budget (checked by
    /// the caller's validation: see [`Self::check_size`]).
    pub fn insert(&self, key: &str, value: V, size: u64, pinned: bool) -> Result<(), Refused> {
        let mut dropped = Vec::new();
        let result = {
            let mut st = self.lock();
            let now = self.now();
            self.grow(&mut st, now);
            self.insert_locked(&mut st, key, value, size, pinned, &mut dropped)
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
    ) -> Result<(), Refused> {
        let existing_pins = st.entries.get(key).map_or(0, |s| s.pins);
        let will_pin = pinned || existing_pins > 0;
        if st.level != Level::Normal && !will_pin {
            st.rejected += 1;
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
            .map_or(0, |s| if s.pins > 0 { s.size } else { 0 });
        if st.pinned_bytes - old_pinned + size > limit {
            st.rejected += 1;
            return Err(Refused::NoRoom);
        }
        if let Some(old) = st.entries.remove(key) {
            st.bytes -= old.size;
            if old.pins > 0 {
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
        let pins = existing_pins + u32::from(pinned);
        let tick = Self::tick(st);
        if pins > 0 {
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
        Ok(())
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
                Some((f(&slot.value), slot.pins == 0, old_tick))
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

    pub fn pin(&self, key: &str) -> bool {
        let mut st = self.lock();
        let State {
            entries,
            lru,
            pinned_bytes,
            pinned_entries,
            ..
        } = &mut *st;
        match entries.get_mut(key) {
            Some(slot) => {
                if slot.pins == 0 {
                    lru.remove(&slot.tick);
                    *pinned_bytes += slot.size;
                    *pinned_entries += 1;
                }
                slot.pins = slot.pins.saturating_add(1);
                true
            }
            None => false,
        }
    }

    /// Releases one pin; when the last goes, the entry becomes evictable and
    /// the effective budget is enforced at once.
    pub fn unpin(&self, key: &str) -> bool {
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
            let ok = match entries.get_mut(key) {
                Some(slot) if slot.pins > 0 => {
                    slot.pins -= 1;
                    if slot.pins == 0 {
                        *pinned_bytes -= slot.size;
                        *pinned_entries -= 1;
                        slot.tick = tick;
                        lru.insert(
                            tick,
                            entries
                                .get_key_value(key)
                                .map(|(k, _)| k.clone())
                                .expect("present"),
                        );
                    }
                    true
                }
                _ => false,
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
                    if slot.pins > 0 {
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
            .filter(|(_, s)| s.pins > 0)
            .map(|(k, _)| k.to_string())
            .collect()
    }

    /// A segment larger than the whole budget can never be cached: that is a
    /// configuration error, not a cache decision.
    pub fn check_size(&self, size: u64) -> Result<(), String> {
        if size > self.config.budget {
            return Err(format!(
                "segment of {size} bytes is larger than the whole budget ({} bytes)",
                self.config.budget
            ));
        }
        Ok(())
    }
}

pub mod py {
    //! The Python face: `revenge._core.TranscodeCache`.
    use pyo3::exceptions::{PyTypeError, PyValueError};
    use pyo3::prelude::*;
    use pyo3::types::{PyBytes, PyDict};

    use super::{Config, Level, TranscodeCore};
    use crate::session_cache::py::{int_in, real};

    pub(crate) fn level_arg(level: &Bound<'_, PyAny>) -> PyResult<Level> {
        let s: &str = level.extract().map_err(|_| {
            PyTypeError::new_err("level must be a str: 'normal', 'moderate' or 'critical'")
        })?;
        Level::parse(s).ok_or_else(|| {
            PyValueError::new_err(format!(
                "level must be 'normal', 'moderate' or 'critical', got {s:?}"
            ))
        })
    }

    /// Byte-budgeted segment cache; pinned entries are never evicted.
    #[pyclass(frozen, module = "revenge._core")]
    pub struct TranscodeCache {
        // The caller's own bytes object: stored and returned as is (zero copy).
        core: TranscodeCore<Py<PyBytes>>,
    }

    #[pymethods]
    impl TranscodeCache {
        #[new]
        #[pyo3(signature = (*, budget_bytes, quiet_seconds = 30.0, grow_step = 0.25))]
        fn new(
            budget_bytes: &Bound<'_, PyAny>,
            quiet_seconds: f64,
            grow_step: f64,
        ) -> PyResult<Self> {
            let budget = int_in(
                budget_bytes,
                "budget_bytes",
                1,
                super::MAX_BUDGET_BYTES as i128,
            )?;
            let config = Config::new(budget as u64, quiet_seconds, grow_step)
                .map_err(PyValueError::new_err)?;
            Ok(TranscodeCache {
                core: TranscodeCore::new(config),
            })
        }

        #[getter]
        fn budget_bytes(&self) -> u64 {
            self.core.config().budget
        }

        #[getter]
        fn effective_budget_bytes(&self) -> u64 {
            self.core.effective_budget()
        }

        #[getter]
        fn level(&self) -> &'static str {
            self.core.level().as_str()
        }

        #[pyo3(signature = (key, data, *, pinned = false))]
        fn insert(&self, key: &str, data: &Bound<'_, PyAny>, pinned: bool) -> PyResult<bool> {
            let data = data.cast_exact::<PyBytes>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "data must be bytes, got {}",
                    data.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            let size = data.as_bytes().len() as u64;
            self.core.check_size(size).map_err(PyValueError::new_err)?;
            Ok(self
                .core
                .insert(key, data.clone().unbind(), size, pinned)
                .is_ok())
        }

        /// The cached bytes object itself (a new reference, no copy).
        fn get(&self, py: Python<'_>, key: &str) -> Option<Py<PyBytes>> {
            self.core.get_with(key, |v| v.clone_ref(py))
        }

        fn pin(&self, key: &str) -> bool {
            self.core.pin(key)
        }

        fn unpin(&self, key: &str) -> bool {
            self.core.unpin(key)
        }

        fn remove(&self, key: &str) -> bool {
            self.core.remove(key)
        }

        fn set_pressure(&self, level: &Bound<'_, PyAny>) -> PyResult<u64> {
            Ok(self.core.set_pressure(level_arg(level)?))
        }

        fn advance_clock(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
            let s = real(seconds, "seconds")?;
            if !(s.is_finite() && (0.0..=86_400.0 * 365.0).contains(&s)) {
                return Err(PyValueError::new_err(format!(
                    "seconds must be finite and in [0, one year], got {s}"
                )));
            }
            self.core.advance_clock(s);
            Ok(())
        }

        fn clear(&self) {
            self.core.clear()
        }

        fn __len__(&self) -> usize {
            self.core.len()
        }

        fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
            let s = self.core.stats();
            let d = PyDict::new(py);
            d.set_item("hits", s.hits)?;
            d.set_item("misses", s.misses)?;
            d.set_item("entries", s.entries)?;
            d.set_item("bytes", s.bytes)?;
            d.set_item("pinned_bytes", s.pinned_bytes)?;
            d.set_item("pinned_entries", s.pinned_entries)?;
            d.set_item("evictions", s.evictions)?;
            d.set_item("evicted_bytes", s.evicted_bytes)?;
            d.set_item("rejected", s.rejected)?;
            d.set_item("budget_bytes", s.budget_bytes)?;
            d.set_item("effective_budget_bytes", s.effective_budget_bytes)?;
            Ok(d)
        }

        fn __repr__(&self) -> String {
            let s = self.core.stats();
            format!(
                "<TranscodeCache entries={} bytes={} budget_bytes={} effective_budget_bytes={} level={}>",
                s.entries,
                s.bytes,
                s.budget_bytes,
                s.effective_budget_bytes,
                self.core.level().as_str()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    const MB: u64 = 1 << 20;

    fn cache(budget: u64) -> TranscodeCore<Arc<Vec<u8>>> {
        TranscodeCore::new(Config::new(budget, 30.0, 0.25).unwrap())
    }

    trait Get {
        fn get(&self, key: &str) -> Option<Arc<Vec<u8>>>;
    }

    impl Get for TranscodeCore<Arc<Vec<u8>>> {
        fn get(&self, key: &str) -> Option<Arc<Vec<u8>>> {
            self.get_with(key, Arc::clone)
        }
    }

    fn seg(n: u64) -> Arc<Vec<u8>> {
        Arc::new(vec![7u8; n as usize])
    }

    #[test]
    fn insert_get_and_lru_eviction() {
        let c = cache(4 * MB);
        for i in 0..4 {
            c.insert(&format!("s{i}"), seg(MB), MB, false).unwrap();
        }
        assert!(c.get("s0").is_some()); // s0 becomes most recent
        c.insert("s4", seg(MB), MB, false).unwrap();
        assert!(c.get("s1").is_none(), "s1 was least recently used");
        assert!(c.get("s0").is_some());
        let s = c.stats();
        assert_eq!(s.bytes, 4 * MB);
        assert_eq!(s.evictions, 1);
    }

    #[test]
    fn pinned_entries_are_never_evicted() {
        let c = cache(4 * MB);
        c.insert("p", seg(MB), MB, true).unwrap();
        for i in 0..20 {
            c.insert(&format!("s{i}"), seg(MB), MB, false).unwrap();
            assert!(c.get("p").is_some());
        }
        assert_eq!(c.pinned_keys(), vec!["p".to_string()]);
        // Fill with pins: the next insert cannot fit and is refused.
        for i in 0..3 {
            c.insert(&format!("q{i}"), seg(MB), MB, true).unwrap();
        }
        assert_eq!(c.insert("x", seg(MB), MB, false), Err(Refused::NoRoom));
        assert_eq!(c.stats().bytes, 4 * MB);
        // Pins are counted.
        assert!(c.pin("p"));
        assert!(c.unpin("p"));
        assert_eq!(c.stats().pinned_entries, 4);
        assert!(c.unpin("p"));
        assert_eq!(c.stats().pinned_entries, 3);
        assert!(!c.unpin("p"));
        assert!(!c.pin("missing"));
    }

    #[test]
    fn refused_insert_evicts_nothing() {
        let c = cache(3 * MB);
        c.insert("a", seg(MB), MB, false).unwrap();
        c.insert("p", seg(2 * MB), 2 * MB, true).unwrap();
        assert_eq!(
            c.insert("b", seg(2 * MB), 2 * MB, false),
            Err(Refused::NoRoom)
        );
        assert!(c.get("a").is_some());
    }

    #[test]
    fn refused_replacement_keeps_the_old_entry() {
        let c = cache(3 * MB);
        c.insert("p", seg(2 * MB), 2 * MB, true).unwrap();
        c.insert("k", seg(MB), MB, true).unwrap();
        assert_eq!(
            c.insert("k", seg(2 * MB), 2 * MB, false),
            Err(Refused::NoRoom)
        );
        assert!(c.get("k").is_some());
        assert_eq!(c.stats().pinned_entries, 2);
    }

    #[test]
    fn replacing_a_key_keeps_its_pins_and_accounts_bytes() {
        let c = cache(4 * MB);
        c.insert("k", seg(MB), MB, true).unwrap();
        c.insert("k", seg(2 * MB), 2 * MB, false).unwrap();
        let s = c.stats();
        assert_eq!((s.entries, s.bytes, s.pinned_bytes), (1, 2 * MB, 2 * MB));
        assert!(c.unpin("k"));
        assert_eq!(c.stats().pinned_bytes, 0);
    }

    #[test]
    fn moderate_halves_and_admits_only_pinned() {
        let c = cache(8 * MB);
        for i in 0..8 {
            c.insert(&format!("s{i}"), seg(MB), MB, false).unwrap();
        }
        let evicted = c.set_pressure(Level::Moderate);
        assert_eq!(evicted, 4 * MB);
        let s = c.stats();
        assert_eq!(s.bytes, 4 * MB);
        assert_eq!(s.effective_budget_bytes, 4 * MB);
        assert_eq!(c.insert("u", seg(MB), MB, false), Err(Refused::Pressure));
        assert!(c.insert("p", seg(MB), MB, true).is_ok());
        assert!(c.stats().bytes <= 4 * MB);
    }

    #[test]
    fn critical_keeps_only_pinned() {
        let c = cache(8 * MB);
        c.insert("p", seg(MB), MB, true).unwrap();
        for i in 0..5 {
            c.insert(&format!("s{i}"), seg(MB), MB, false).unwrap();
        }
        assert_eq!(c.set_pressure(Level::Critical), 5 * MB);
        assert_eq!(c.len(), 1);
        assert!(c.get("p").is_some());
        // Unpinned on critical: it goes at once.
        assert!(c.unpin("p"));
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn grows_back_in_steps_after_quiet_periods() {
        let c = cache(8 * MB);
        c.set_pressure(Level::Moderate);
        assert_eq!(c.effective_budget(), 4 * MB);
        c.set_pressure(Level::Normal);
        assert_eq!(c.effective_budget(), 4 * MB);
        c.advance_clock(29.0);
        assert_eq!(c.effective_budget(), 4 * MB);
        c.advance_clock(2.0);
        assert_eq!(c.effective_budget(), 6 * MB);
        c.advance_clock(60.0);
        assert_eq!(c.effective_budget(), 8 * MB);
        c.advance_clock(600.0);
        assert_eq!(c.effective_budget(), 8 * MB);
    }

    #[test]
    fn pressure_during_growth_resets_it() {
        let c = cache(8 * MB);
        c.set_pressure(Level::Critical);
        c.set_pressure(Level::Normal);
        c.advance_clock(31.0);
        assert_eq!(c.effective_budget(), 6 * MB);
        c.set_pressure(Level::Moderate);
        assert_eq!(c.effective_budget(), 4 * MB);
    }

    #[test]
    fn concurrent_inserts_never_exceed_the_budget() {
        let budget = 16 * MB;
        let c = Arc::new(cache(budget));
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let c = c.clone();
                thread::spawn(move || {
                    for i in 0..2_000u64 {
                        let k = format!("s{}", (i * 31 + t * 7) % 97);
                        let size = (i % 7 + 1) * MB / 2;
                        match i % 11 {
                            0 => {
                                c.pin(&k);
                            }
                            1 => {
                                c.unpin(&k);
                            }
                            2 => {
                                c.set_pressure(if i % 3 == 0 {
                                    Level::Moderate
                                } else {
                                    Level::Normal
                                });
                            }
                            3 => {
                                c.remove(&k);
                            }
                            _ => {
                                let _ = c.insert(&k, seg(0), size, i % 13 == 0);
                                c.get(&k);
                            }
                        }
                        let s = c.stats();
                        assert!(s.bytes <= budget, "{} > {budget}", s.bytes);
                        assert!(s.pinned_bytes <= s.bytes);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn config_is_validated() {
        assert!(Config::new(0, 1.0, 0.5).is_err());
        assert!(Config::new(1 << 60, 1.0, 0.5).is_err());
        assert!(Config::new(10, -1.0, 0.5).is_err());
        assert!(Config::new(10, f64::NAN, 0.5).is_err());
        assert!(Config::new(10, 1.0, 0.0).is_err());
        assert!(Config::new(10, 1.0, 1.5).is_err());
        let c = cache(10);
        assert!(c.check_size(11).is_err());
        assert!(c.check_size(10).is_ok());
    }
}
