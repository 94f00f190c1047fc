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

/// A value sized so that `key`'s entry is charged exactly `bytes` (value,
/// key and overhead), which keeps the budget arithmetic of the tests plain.
fn sized(key: &str, bytes: u64) -> u64 {
    bytes - key.len() as u64 - ENTRY_OVERHEAD_BYTES
}

/// Test shorthands: an entry charged exactly `bytes`.
trait Put {
    fn put(&self, key: &str, bytes: u64) -> Result<(), Refused>;
    fn put_pinned(&self, key: &str, bytes: u64) -> Result<PinToken, Refused>;
}

impl Put for TranscodeCore<Arc<Vec<u8>>> {
    fn put(&self, key: &str, bytes: u64) -> Result<(), Refused> {
        self.insert(key, seg(0), sized(key, bytes))
    }
    fn put_pinned(&self, key: &str, bytes: u64) -> Result<PinToken, Refused> {
        self.insert_pinned(key, seg(0), sized(key, bytes))
    }
}

#[test]
fn insert_get_and_lru_eviction() {
    let c = cache(4 * MB);
    for i in 0..4 {
        c.put(&format!("s{i}"), MB).unwrap();
    }
    assert!(c.get("s0").is_some()); // s0 becomes most recent
    c.put("s4", MB).unwrap();
    assert!(c.get("s1").is_none(), "s1 was least recently used");
    assert!(c.get("s0").is_some());
    let s = c.stats();
    assert_eq!(s.bytes, 4 * MB);
    assert_eq!(s.evictions, 1);
}

#[test]
fn pinned_entries_are_never_evicted() {
    let c = cache(4 * MB);
    let first = c.put_pinned("p", MB).unwrap();
    for i in 0..20 {
        c.put(&format!("s{i}"), MB).unwrap();
        assert!(c.get("p").is_some());
    }
    assert_eq!(c.pinned_keys(), vec!["p".to_string()]);
    // Fill with pins: the next insert cannot fit and is refused.
    for i in 0..3 {
        c.put_pinned(&format!("q{i}"), MB).unwrap();
    }
    assert_eq!(c.put("x", MB), Err(Refused::NoRoom));
    assert_eq!(c.stats().bytes, 4 * MB);
    // One pin per holder: each releases its own.
    let second = c.pin("p").unwrap();
    assert_ne!(first, second);
    assert!(c.unpin("p", second));
    assert!(!c.unpin("p", second), "released already");
    assert_eq!(c.stats().pinned_entries, 4);
    assert!(c.unpin("p", first));
    assert_eq!(c.stats().pinned_entries, 3);
    assert!(!c.unpin("p", first));
    assert!(c.pin("missing").is_none());
}

#[test]
fn refused_insert_evicts_nothing() {
    let c = cache(3 * MB);
    c.put("a", MB).unwrap();
    c.put_pinned("p", 2 * MB).unwrap();
    assert_eq!(c.put("b", 2 * MB), Err(Refused::NoRoom));
    assert!(c.get("a").is_some());
}

#[test]
fn refused_replacement_keeps_the_old_entry() {
    let c = cache(3 * MB);
    c.put_pinned("p", 2 * MB).unwrap();
    c.put_pinned("k", MB).unwrap();
    assert_eq!(c.put("k", 2 * MB), Err(Refused::NoRoom));
    assert!(c.get("k").is_some());
    assert_eq!(c.stats().pinned_entries, 2);
}

#[test]
fn replacing_a_key_keeps_its_pins_and_accounts_bytes() {
    let c = cache(4 * MB);
    let pin = c.put_pinned("k", MB).unwrap();
    c.put("k", 2 * MB).unwrap();
    let s = c.stats();
    assert_eq!((s.entries, s.bytes, s.pinned_bytes), (1, 2 * MB, 2 * MB));
    assert!(c.unpin("k", pin));
    assert_eq!(c.stats().pinned_bytes, 0);
}

#[test]
fn moderate_halves_and_admits_only_pinned() {
    let c = cache(8 * MB);
    for i in 0..8 {
        c.put(&format!("s{i}"), MB).unwrap();
    }
    let evicted = c.set_pressure(Level::Moderate);
    assert_eq!(evicted, 4 * MB);
    let s = c.stats();
    assert_eq!(s.bytes, 4 * MB);
    assert_eq!(s.effective_budget_bytes, 4 * MB);
    assert_eq!(c.put("u", MB), Err(Refused::Pressure));
    assert!(c.put_pinned("p", MB).is_ok());
    assert!(c.stats().bytes <= 4 * MB);
}

#[test]
fn critical_keeps_only_pinned() {
    let c = cache(8 * MB);
    let pin = c.put_pinned("p", MB).unwrap();
    for i in 0..5 {
        c.put(&format!("s{i}"), MB).unwrap();
    }
    assert_eq!(c.set_pressure(Level::Critical), 5 * MB);
    assert_eq!(c.len(), 1);
    assert!(c.get("p").is_some());
    // Unpinned on critical: it goes at once.
    assert!(c.unpin("p", pin));
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
                let mut held: Vec<(String, PinToken)> = Vec::new();
                for i in 0..2_000u64 {
                    let k = format!("s{}", (i * 31 + t * 7) % 97);
                    let size = (i % 7 + 1) * MB / 2;
                    match i % 11 {
                        0 => {
                            held.extend(c.pin(&k).map(|t| (k.clone(), t)));
                        }
                        1 => {
                            if let Some((k, t)) = held.pop() {
                                c.unpin(&k, t);
                            }
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
                            if i % 13 == 0 {
                                if let Ok(t) = c.insert_pinned(&k, seg(0), size) {
                                    held.push((k.clone(), t));
                                }
                            } else {
                                let _ = c.insert(&k, seg(0), size);
                            }
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
    let c = cache(10 + ENTRY_OVERHEAD_BYTES + 1);
    assert!(c.check("k", 11).is_err());
    assert!(c.check("k", 10).is_ok());
    assert!(c.check("kk", 10).is_err(), "key bytes are charged");
    let c = cache(1 << 30);
    assert!(c.check(&"k".repeat(MAX_KEY_BYTES), 0).is_ok());
    assert!(c.check(&"k".repeat(MAX_KEY_BYTES + 1), 0).is_err());
}

// ---------------------------------------------------------------- issue 18

fn within<R: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what}: still running after {secs}s"))
}

#[test]
fn an_old_holders_unpin_does_not_release_a_new_holders_pin() {
    let c = cache(4 * MB);
    let a = c.put_pinned("k", MB).unwrap(); // holder A
    assert!(c.remove("k"));
    c.put("k", MB).unwrap();
    let b = c.pin("k").unwrap(); // holder B
    assert!(!c.unpin("k", a), "A's pin went with the removed entry");
    for i in 0..8 {
        c.put(&format!("s{i}"), MB).unwrap();
    }
    assert!(c.get("k").is_some(), "B's segment was evicted while pinned");
    assert!(c.unpin("k", b));
    // The same after clear().
    let a = c.put_pinned("k", MB).unwrap();
    c.clear();
    c.put("k", MB).unwrap();
    let b = c.pin("k").unwrap();
    assert!(!c.unpin("k", a));
    assert_eq!(c.stats().pinned_entries, 1);
    assert!(c.unpin("k", b));
}

#[test]
fn growth_after_a_long_quiet_time_is_one_step_not_a_loop() {
    // A budget of 1 TiB regained one byte per microsecond: a loop per quiet
    // period under the lock would run for minutes.
    let c = Arc::new(TranscodeCore::<Arc<Vec<u8>>>::new(
        Config::new(1 << 40, 1e-6, 1e-13).unwrap(),
    ));
    c.set_pressure(Level::Moderate);
    c.set_pressure(Level::Normal);
    c.advance_clock(86_400.0 * 365.0);
    let budget = within(10, "effective_budget", move || c.effective_budget());
    assert_eq!(budget, 1 << 40);
}

#[test]
fn empty_entries_and_keys_are_charged_against_the_budget() {
    let c = cache(1024);
    let mut admitted = 0;
    for i in 0..10_000 {
        if c.insert(&format!("key-{i:08}"), seg(0), 0).is_ok() {
            admitted += 1;
        }
    }
    let s = c.stats();
    assert!(s.bytes <= 1024, "{}", s.bytes);
    assert!(
        s.entries <= 1024 / 64,
        "{} empty entries held under a 1 KiB budget",
        s.entries
    );
    assert!(admitted > 0);
}
