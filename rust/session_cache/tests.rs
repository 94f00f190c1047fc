use super::*;
use std::thread;

fn data(user_id: i64) -> SessionData {
    SessionData {
        user_id,
        role: Role::new("user"),
        flags: 0,
        expires_at: unix_coarse_seconds() + 3600.0,
    }
}

fn tok(i: u64) -> String {
    format!("{i:0>43}")
}

/// Test shorthands that hash the token themselves.
trait Ez {
    fn ins(&self, t: &str, d: SessionData) -> Result<bool, BadInsert>;
    fn g(&self, t: &str) -> Option<SessionData>;
    fn rv(&self, t: &str) -> bool;
}

impl Ez for SessionCore {
    fn ins(&self, t: &str, d: SessionData) -> Result<bool, BadInsert> {
        self.insert(hash_token(t), t, d)
    }
    fn g(&self, t: &str) -> Option<SessionData> {
        self.get(hash_token(t), t)
    }
    fn rv(&self, t: &str) -> bool {
        self.revoke(hash_token(t), t)
    }
}

fn cache(entries: u64, bytes: u64) -> SessionCore {
    SessionCore::new(Limits::new(entries, bytes, 600.0, 300.0).unwrap())
}

#[test]
fn insert_get_revoke() {
    let c = cache(1000, 1 << 20);
    assert!(c.ins(&tok(1), data(7)).unwrap());
    assert_eq!(c.g(&tok(1)).unwrap().user_id, 7);
    assert!(c.g(&tok(2)).is_none());
    assert!(c.rv(&tok(1)));
    assert!(!c.rv(&tok(1)));
    assert!(c.g(&tok(1)).is_none());
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.inserts, s.revoked), (1, 2, 1, 1));
    assert_eq!(s.bytes, 0);
    assert_eq!(c.indexed_users(), 0);
}

#[test]
fn long_tokens_live_on_the_heap_and_still_match() {
    let c = cache(1000, 1 << 20);
    let long = "y".repeat(300);
    c.ins(&long, data(3)).unwrap();
    assert_eq!(c.g(&long).unwrap().user_id, 3);
    assert!(c.g(&long[..299]).is_none());
    assert!(c.stats().bytes > 300);
    assert!(c.rv(&long));
    assert_eq!(c.stats().bytes, 0);
}

#[test]
fn revoke_user_drops_every_session_of_that_user_only() {
    let c = cache(1000, 1 << 20);
    for i in 0..10 {
        c.ins(&tok(i), data((i % 3) as i64)).unwrap();
    }
    assert_eq!(c.revoke_user(1), 3);
    assert_eq!(c.revoke_user(1), 0);
    for i in 0..10 {
        assert_eq!(c.g(&tok(i)).is_some(), i % 3 != 1, "token {i}");
    }
    assert_eq!(c.indexed_users(), 2);
    assert_eq!(c.indexed_sessions(), c.len());
}

#[test]
fn one_user_with_many_sessions() {
    let c = cache(10_000, 64 << 20);
    for i in 0..5_000 {
        c.ins(&tok(i), data(1)).unwrap();
    }
    for i in 0..100 {
        assert!(c.rv(&tok(i)));
    }
    assert_eq!(c.indexed_sessions(), 4_900);
    assert_eq!(c.revoke_user(1), 4_900);
    assert_eq!(c.len(), 0);
    assert_eq!(c.indexed_users(), 0);
}

#[test]
fn replaced_token_belongs_to_its_new_user() {
    let c = cache(1000, 1 << 20);
    c.ins(&tok(1), data(1)).unwrap();
    let one = c.stats().bytes;
    c.ins(&tok(1), data(2)).unwrap();
    assert_eq!(c.stats().bytes, one);
    assert_eq!(c.revoke_user(1), 0);
    assert_eq!(c.g(&tok(1)).unwrap().user_id, 2);
    assert_eq!(c.revoke_user(2), 1);
    assert_eq!(c.indexed_users(), 0);
    assert_eq!(c.stats().bytes, 0);
}

#[test]
fn heavier_replacement_goes_through_eviction() {
    let c = cache(1000, 1 << 20);
    c.ins(&tok(1), data(1)).unwrap();
    let mut d = data(1);
    d.role = Role::Shared("r".repeat(200).into());
    c.ins(&tok(1), d).unwrap();
    assert_eq!(c.g(&tok(1)).unwrap().role.as_str().len(), 200);
    assert_eq!(c.len(), 1);
    assert_eq!(c.indexed_sessions(), 1);
}

#[test]
fn a_fill_that_raced_a_revocation_is_not_cached() {
    let c = cache(1000, 1 << 20);
    let e = c.epoch();
    c.revoke_user(9); // between the fill's database read and its insert
    assert_eq!(
        c.insert_fetched(hash_token(&tok(1)), &tok(1), data(9), Some(e)),
        Ok(false)
    );
    assert!(c.g(&tok(1)).is_none());
    assert_eq!(c.indexed_sessions(), 0);
    assert_eq!(c.stats().bytes, 0);
    let e = c.epoch();
    assert_eq!(
        c.insert_fetched(hash_token(&tok(1)), &tok(1), data(9), Some(e)),
        Ok(true)
    );
    assert!(c.g(&tok(1)).is_some());
}

#[test]
fn racing_fills_and_revokes_never_leave_a_revoked_session() {
    // Each round: a fill (epoch read, insert) races a revoke_user of the
    // same user; afterwards the session may be cached only if the fill's
    // epoch is still current, i.e. the revoke came before the fill read it.
    for round in 0..300u64 {
        let c = Arc::new(cache(1000, 1 << 20));
        let e = c.epoch();
        let filler = {
            let c = c.clone();
            thread::spawn(move || {
                c.insert_fetched(hash_token(&tok(round)), &tok(round), data(1), Some(e))
                    .unwrap()
            })
        };
        let revoker = {
            let c = c.clone();
            thread::spawn(move || c.revoke_user(1))
        };
        filler.join().unwrap();
        revoker.join().unwrap();
        assert!(
            c.g(&tok(round)).is_none(),
            "round {round}: revoked session cached"
        );
        assert_eq!(c.indexed_sessions(), c.len());
    }
}

#[test]
fn ttl_expires_entries() {
    let c = SessionCore::new(Limits::new(100, 1 << 20, 10.0, 1000.0).unwrap());
    c.ins(&tok(1), data(1)).unwrap();
    c.advance_clock(9.0);
    assert!(c.g(&tok(1)).is_some());
    c.advance_clock(1.5);
    assert!(c.g(&tok(1)).is_none());
    assert_eq!(c.stats().evicted_expired, 1);
    assert_eq!(c.len(), 0);
    assert_eq!(c.indexed_sessions(), 0);
}

#[test]
fn absolute_expiry_caps_the_ttl() {
    let c = SessionCore::new(Limits::new(100, 1 << 20, 1000.0, 1000.0).unwrap());
    let mut d = data(1);
    d.expires_at = unix_coarse_seconds() + 5.0;
    assert!(c.ins(&tok(1), d).unwrap());
    c.advance_clock(4.0);
    assert!(c.g(&tok(1)).is_some());
    c.advance_clock(2.0);
    assert!(c.g(&tok(1)).is_none());
    let mut past = data(1);
    past.expires_at = unix_coarse_seconds() - 1.0;
    assert!(!c.ins(&tok(2), past).unwrap());
    assert!(c.g(&tok(2)).is_none());
}

#[test]
fn idle_timeout_expires_unused_entries_and_use_refreshes() {
    let c = SessionCore::new(Limits::new(100, 1 << 20, 1000.0, 10.0).unwrap());
    c.ins(&tok(1), data(1)).unwrap();
    c.ins(&tok(2), data(1)).unwrap();
    for _ in 0..10 {
        c.advance_clock(6.0);
        assert!(c.g(&tok(1)).is_some());
    }
    assert!(c.g(&tok(2)).is_none());
    assert_eq!(c.stats().evicted_idle, 1);
    // Unused for 7/8 of the timeout at most: still there at 8.5 s? The
    // promise is "between 7/8 and 8/8": at 10.5 s it must be gone.
    c.advance_clock(10.5);
    assert!(c.g(&tok(1)).is_none());
}

#[test]
fn purge_removes_dead_entries() {
    let c = SessionCore::new(Limits::new(100, 1 << 20, 10.0, 1000.0).unwrap());
    for i in 0..20 {
        c.ins(&tok(i), data(i as i64)).unwrap();
    }
    c.advance_clock(11.0);
    assert_eq!(c.purge_expired(), 20);
    assert_eq!(c.len(), 0);
    assert_eq!(c.indexed_users(), 0);
    assert_eq!(c.stats().bytes, 0);
    assert_eq!(c.stats().evicted_expired, 20);
}

#[test]
fn clear_empties_everything() {
    let c = cache(100, 1 << 20);
    for i in 0..20 {
        c.ins(&tok(i), data(i as i64)).unwrap();
    }
    c.clear();
    assert_eq!(c.len(), 0);
    assert_eq!(c.indexed_sessions(), 0);
    assert_eq!(c.stats().bytes, 0);
}

#[test]
fn smallest_caches_keep_the_newest_entry() {
    for (entries, bytes) in [
        (MIN_ENTRIES, MIN_BUDGET_BYTES),
        (MIN_ENTRIES, 1 << 20),
        (MIN_ENTRIES, 1 << 30),
        (40, MIN_BUDGET_BYTES),
        (1000, MIN_BUDGET_BYTES),
    ] {
        let c = cache(entries, bytes);
        for i in 0..500 {
            let t = "z".repeat((i % 3) as usize * 60) + &tok(i);
            c.ins(&t, data(i as i64)).unwrap();
            assert!(
                c.g(&t).is_some(),
                "{entries} entries, {bytes} bytes, insert {i}"
            );
        }
    }
}

#[test]
fn bounded_by_entries() {
    let c = cache(64, 1 << 30);
    for i in 0..10_000 {
        c.ins(&tok(i), data(i as i64)).unwrap();
        assert!(c.len() <= 64, "len {} after {i}", c.len());
    }
    assert!(c.stats().evicted_size > 0);
    assert_eq!(c.indexed_sessions(), c.len());
}

#[test]
fn bounded_by_bytes() {
    let budget = 64 * 1024;
    let c = cache(1_000_000, budget);
    for i in 0..20_000 {
        let mut d = data(i as i64);
        d.role = Role::Shared("r".repeat((i % 200) as usize).into());
        let t = if i % 3 == 0 {
            "z".repeat(100) + &tok(i)
        } else {
            tok(i)
        };
        c.ins(&t, d).unwrap();
        let s = c.stats();
        assert!(s.bytes <= budget, "bytes {} > {budget}", s.bytes);
        assert!(c.weight() <= budget);
    }
    assert_eq!(c.indexed_sessions(), c.len());
}

#[test]
fn limits_are_validated() {
    assert!(Limits::new(0, 1 << 20, 1.0, 1.0).is_err());
    assert!(Limits::new(MIN_ENTRIES - 1, 1 << 20, 1.0, 1.0).is_err());
    assert!(Limits::new(MIN_ENTRIES, MIN_BUDGET_BYTES - 1, 1.0, 1.0).is_err());
    assert!(Limits::new(MIN_ENTRIES, MIN_BUDGET_BYTES, 1.0, 1.0).is_ok());
    assert!(Limits::new(100, 10, 1.0, 1.0).is_err());
    assert!(Limits::new(100, 1 << 50, 1.0, 1.0).is_err());
    assert!(Limits::new(100, 1 << 20, 0.0, 1.0).is_err());
    assert!(Limits::new(100, 1 << 20, 1.0, f64::NAN).is_err());
    assert!(Limits::new(100, 1 << 20, 1e12, 1.0).is_err());
    let c = cache(100, 1 << 20);
    assert!(c.ins("", data(1)).is_err());
    assert!(c.ins(&"x".repeat(MAX_TOKEN_BYTES + 1), data(1)).is_err());
    let mut d = data(1);
    d.role = Role::Shared("r".repeat(MAX_ROLE_BYTES + 1).into());
    assert!(c.ins("t", d).is_err());
    let mut d = data(1);
    d.expires_at = f64::INFINITY;
    assert!(c.ins("t", d).is_err());
}

#[test]
fn roles_are_interned() {
    let a = Role::new("admin");
    let b = Role::new("admin");
    match (a, b) {
        (Role::Interned(x), Role::Interned(y)) => assert!(std::ptr::eq(x, y)),
        other => panic!("not interned: {other:?}"),
    }
}

#[test]
fn concurrent_readers_writers_and_revokers_keep_invariants() {
    let c = Arc::new(cache(2_000, 1 << 20));
    let handles: Vec<_> = (0..6)
        .map(|t| {
            let c = c.clone();
            thread::spawn(move || {
                for i in 0..20_000u64 {
                    let k = (i * 7 + t * 13) % 5_000;
                    match i % 10 {
                        0..=2 => {
                            c.ins(&tok(k), data((k % 50) as i64)).unwrap();
                        }
                        3 => {
                            c.revoke_user((k % 50) as i64);
                        }
                        4 => {
                            c.rv(&tok(k));
                        }
                        _ => {
                            if let Some(s) = c.g(&tok(k)) {
                                assert_eq!(s.user_id, (k % 50) as i64);
                            }
                        }
                    }
                    assert!(c.len() <= 2_000);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let s = c.stats();
    assert!(s.bytes <= 1 << 20);
    assert!(c.indexed_users() <= 50);
    assert_eq!(c.indexed_sessions(), c.len());
    // Every cached session is findable through the index.
    let mut via_index = 0;
    for u in 0..50 {
        via_index += c.revoke_user(u);
    }
    assert_eq!(c.len(), 0);
    assert_eq!(via_index, s.entries);
    assert_eq!(c.stats().bytes, 0);
}

mod timing {
    //! `cargo test --release -- --ignored --nocapture core_get_cost`: the cost of
    //! the Rust side of a lookup, without the Python call (not run by default).
    use super::*;

    #[test]
    #[ignore]
    fn core_get_cost() {
        let c = SessionCore::new(Limits::new(200_000, 512 << 20, 3600.0, 3600.0).unwrap());
        let toks: Vec<String> = (0..100_000u64).map(|i| format!("{i:0>43}")).collect();
        let hashes: Vec<u64> = toks.iter().map(|t| hash_token(t)).collect();
        for (t, h) in toks.iter().zip(&hashes) {
            let d = SessionData {
                user_id: 1,
                role: Role::new("user"),
                flags: 0,
                expires_at: unix_coarse_seconds() + 3600.0,
            };
            c.insert(*h, t, d).unwrap();
        }
        let sample: Vec<usize> = (0..1000).map(|i| (i * 7919) % toks.len()).collect();
        let fresh: Vec<String> = (0..200_000u64)
            .map(|i| format!("{:0>43}", i + 1_000_000))
            .collect();
        let start = std::time::Instant::now();
        for t in &fresh {
            let d = SessionData {
                user_id: 1,
                role: Role::new("user"),
                flags: 0,
                expires_at: unix_coarse_seconds() + 3600.0,
            };
            c.insert(hash_token(t), t, d).unwrap();
        }
        println!(
            "insert (evicting): {:.1} ns",
            start.elapsed().as_nanos() as f64 / fresh.len() as f64
        );
        for round in 0..3 {
            let start = std::time::Instant::now();
            let mut n = 0;
            for _ in 0..1000 {
                for &i in &sample {
                    n += c.get(hashes[i], &toks[i]).is_some() as u64;
                }
            }
            let hit = start.elapsed().as_nanos() as f64 / 1e6;
            let start = std::time::Instant::now();
            for _ in 0..1000 {
                for &i in &sample {
                    n += c.get(hashes[i] ^ 1, &toks[i]).is_some() as u64;
                }
            }
            let miss = start.elapsed().as_nanos() as f64 / 1e6;
            println!("round {round}: hit {hit:.1} ns, miss {miss:.1} ns ({n})");
        }
    }
}
