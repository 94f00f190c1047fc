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
