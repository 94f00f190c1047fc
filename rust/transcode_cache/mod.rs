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

mod core;
pub mod py;

pub use self::core::*;
