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
        match cell.join(current_owner()) {
            Join::Ready(v) => return Ok(*v),
            Join::Backoff { .. } => return Err("backoff".into()),
            Join::Claimed(id) => {
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
            Join::Wait(mut waiter) => match waiter.wait(Duration::from_secs(10)) {
                Some(Outcome::Ready(v)) => return Ok(*v),
                Some(Outcome::Failed(e)) => return Err((*e).clone()),
                Some(Outcome::Abandoned) => continue,
                None => panic!("waited too long"),
            },
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
    let cell: Arc<LazyCore<u64, String>> = Arc::new(LazyCore::new(Backoff::new(5.0, 5.0).unwrap()));
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
    assert_eq!(seen, (0, 1));
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

// ---------------------------------------------------------------- issue 18

/// Runs `f` on a thread and fails the test if it has not returned within
/// `secs` (a deadlock or a livelock); the stuck thread is left behind.
fn within<R: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what}: still running after {secs}s (deadlock or livelock)"))
}

/// An error whose drop reads the cell it was stored in, as a Python
/// exception's `__del__` (or a finaliser its traceback keeps alive) may.
#[derive(Debug)]
struct Touchy {
    cell: std::sync::Weak<LazyCore<u64, Touchy>>,
    drops: Arc<AtomicUsize>,
}

impl Drop for Touchy {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.upgrade() {
            // Each of these takes the cell's lock (before the fix).
            let _ = cell.last_error();
            let _ = cell.retry_after();
            let _ = cell.attempt_in_flight();
        }
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn replacing_an_error_drops_the_old_one_outside_the_lock() {
    let drops = Arc::new(AtomicUsize::new(0));
    let cell: Arc<LazyCore<u64, Touchy>> = Arc::new(LazyCore::new(Backoff::new(0.0, 0.0).unwrap()));
    let (c, d) = (cell.clone(), drops.clone());
    within(10, "fail, fail, finish with a touchy error", move || {
        for _ in 0..3 {
            let Begin::Claimed(id) = c.try_begin(current_owner()) else {
                panic!("should claim")
            };
            let e = Touchy {
                cell: Arc::downgrade(&c),
                drops: d.clone(),
            };
            c.fail(id, e).unwrap();
        }
        let Begin::Claimed(id) = c.try_begin(current_owner()) else {
            panic!("should claim")
        };
        c.finish(id, 1).unwrap();
        c.clear_refs();
    });
    assert_eq!(
        drops.load(Ordering::SeqCst),
        3,
        "every error was dropped once"
    );
}

#[test]
fn a_waiter_gets_the_value_of_its_attempt_even_after_a_reset() {
    // The waiter wakes after the owner has finished, reset and claimed again:
    // it must still be handed the value of the attempt it waited for, not
    // loop back and wait for (or run) the next one.
    for round in 0..10u64 {
        let cell: Arc<LazyCore<u64, String>> = Arc::new(LazyCore::new(quick()));
        let Begin::Claimed(first) = cell.try_begin(current_owner()) else {
            panic!("should claim")
        };
        let c = cell.clone();
        let waiter = thread::spawn(move || get_or_init(&c, || Ok(1000)));
        // Let the waiter reach its wait (it cannot claim: `first` is in flight).
        while cell.waiting() == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        cell.finish(first, round).unwrap();
        cell.reset();
        let Begin::Claimed(second) = cell.try_begin(current_owner()) else {
            panic!("should claim again after the reset")
        };
        thread::sleep(Duration::from_millis(20));
        cell.finish(second, 2000 + round).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(round), "round {round}");
    }
}

#[test]
fn the_idle_clock_never_reports_a_value_in_use_as_idle() {
    // Two pollers at once: the first is paused inside `idle_seconds`; the
    // second must still see the use that the first is turning into a stamp.
    let cell: Arc<LazyCore<u64, String>> = Arc::new(LazyCore::new(quick()));
    get_or_init(&cell, || Ok(1)).unwrap();
    thread::sleep(Duration::from_millis(60));
    cell.with_value(|_| ()); // used just now
    let (at_hook, release) = (
        Arc::new(std::sync::Barrier::new(2)),
        Arc::new(std::sync::Barrier::new(2)),
    );
    let (a, r) = (at_hook.clone(), release.clone());
    let hook_owner = Arc::new(std::sync::Mutex::new(None));
    let h = hook_owner.clone();
    cell.set_test_hook(move |point| {
        if point == "idle_seconds" && *h.lock().unwrap() == Some(thread::current().id()) {
            a.wait();
            r.wait();
        }
    });
    let c = cell.clone();
    let first = thread::spawn(move || {
        *hook_owner.lock().unwrap() = Some(thread::current().id());
        c.idle_seconds()
    });
    at_hook.wait();
    let second = cell.idle_seconds();
    release.wait();
    let first = first.join().unwrap();
    assert!(
        second < 0.03,
        "the second poller called a value used just now idle: {second}"
    );
    assert!(first < 0.03, "{first}");
}

#[test]
fn garbage_collection_sees_the_error_while_the_lock_is_held() {
    // A collection may run while a waiter holds the cell's lock: traversal
    // must still report the error the cell holds (else a cycle through it leaks).
    let cell: LazyCore<u64, String> = LazyCore::new(Backoff::new(10.0, 10.0).unwrap());
    let _ = get_or_init(&cell, || Err("boom".into()));
    let _held = cell.lock();
    let mut errors = 0;
    cell.visit::<()>(
        |_| Ok(()),
        |_| {
            errors += 1;
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(errors, 1);
}

#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_handed_off_value_lives_only_until_its_waiters_took_it() {
    let drops = Arc::new(AtomicUsize::new(0));
    let cell: LazyCore<Counted, String> = LazyCore::new(quick());
    let Begin::Claimed(id) = cell.try_begin(1) else {
        panic!("should claim")
    };
    let (Join::Wait(mut first), Join::Wait(second)) = (cell.join(2), cell.join(3)) else {
        panic!("both should wait")
    };
    assert_eq!(cell.waiting(), 2);
    cell.finish(id, Counted(drops.clone())).unwrap();
    drop(cell.reset()); // offloaded before the waiters woke
    assert_eq!(drops.load(Ordering::SeqCst), 0, "kept for the waiters");
    assert!(matches!(
        first.wait(Duration::ZERO),
        Some(Outcome::Ready(_))
    ));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "the second waiter has not taken it"
    );
    drop(second); // gives up (a timeout, a signal) after the end
    assert_eq!(drops.load(Ordering::SeqCst), 1, "nothing holds it any more");
    assert!(cell.lock().handoffs.is_empty());
}

#[test]
fn a_waiter_that_gives_up_in_flight_is_not_waited_for() {
    let cell: LazyCore<u64, String> = LazyCore::new(quick());
    let Begin::Claimed(id) = cell.try_begin(1) else {
        panic!("should claim")
    };
    let Join::Wait(mut w) = cell.join(2) else {
        panic!("should wait")
    };
    assert!(w.wait(Duration::from_millis(1)).is_none());
    drop(w);
    assert_eq!(cell.waiting(), 0);
    cell.finish(id, 5).unwrap();
    assert!(
        cell.lock().handoffs.is_empty(),
        "no outcome kept for nobody"
    );
}
