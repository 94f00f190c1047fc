//! Cheap clocks shared by the modules.
//!
//! The hot paths (a `LazyCell::get`, a session lookup) stamp a last-use time on
//! every call, so they read the kernel's *coarse* clocks: a vDSO read of the
//! tick-granular value (a few ns, resolution one scheduler tick, 1-4 ms), which
//! is plenty for idle timeouts measured in seconds.

#[cfg(target_os = "linux")]
fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock ids are constants the
    // kernel has supported since 2.6.32, and the call has no other effect.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Monotonic nanoseconds (arbitrary origin), tick resolution.
#[cfg(target_os = "linux")]
pub fn monotonic_coarse_nanos() -> u64 {
    read(libc::CLOCK_MONOTONIC_COARSE)
}

/// Unix time in seconds, tick resolution.
#[cfg(target_os = "linux")]
pub fn unix_coarse_seconds() -> f64 {
    read(libc::CLOCK_REALTIME_COARSE) as f64 / 1e9
}

#[cfg(not(target_os = "linux"))]
pub fn monotonic_coarse_nanos() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[cfg(not(target_os = "linux"))]
pub fn unix_coarse_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_move_forward() {
        let a = monotonic_coarse_nanos();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = monotonic_coarse_nanos();
        assert!(b > a, "{b} > {a}");
        let now = unix_coarse_seconds();
        assert!(now > 1.6e9, "{now}");
    }
}
