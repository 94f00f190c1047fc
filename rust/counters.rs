//! A striped event counter: each thread bumps its own cache line, so hot-path
//! statistics (cache hits) do not make every core fight over one atomic.

use std::sync::atomic::{AtomicU64, Ordering};

const STRIPES: usize = 16;

#[repr(align(64))]
#[derive(Debug, Default)]
struct Slot(AtomicU64);

#[derive(Debug, Default)]
pub struct Counter {
    slots: [Slot; STRIPES],
}

/// The calling thread's stripe, from its stack address: thread stacks are
/// megabytes apart, and unlike a thread-local this needs no TLS lookup call
/// from inside a shared library. Any stripe is correct; this only spreads load.
#[inline]
fn stripe() -> usize {
    let marker = 0u8;
    let addr = std::ptr::addr_of!(marker) as usize;
    ((((addr as u64) >> 16).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize) % STRIPES
}

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.slots[stripe()].0.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    pub fn reset(&self) {
        for s in &self.slots {
            s.0.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sums_across_threads() {
        let c = Arc::new(Counter::default());
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        c.inc();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(c.get(), 80_000);
        c.reset();
        assert_eq!(c.get(), 0);
    }
}
