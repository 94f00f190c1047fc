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
            Begin::InFlight { id, .. } => match cell.wait_attempt(id, Duration::from_secs(10)) {
                Some(Outcome::Failed(e)) => return Err((*e).clone()),
                Some(_) => continue,
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
