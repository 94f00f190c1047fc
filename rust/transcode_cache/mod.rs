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
//! evicted. Pins belong to holders: `pin` hands out a token that is unique
//! for the life of the cache and `unpin` must present it, so after a `remove`
//! (or `clear`) and a re-insert of the same key an old holder cannot release
//! a new holder's pin, and no holder can release one twice.
//!
//! An entry is charged its value's bytes, its key's bytes and a fixed
//! per-entry overhead, and keys are capped, so empty values and long keys
//! cannot hold memory the budget does not see.
//!
//! Pressure: on `moderate` the effective budget halves and only pinned
//! entries are admitted; on `critical` every unpinned entry goes and only
//! pinned entries are admitted (within half the budget). Back on `normal`,
//! the effective budget grows back by `grow_step` of the budget after each
//! `quiet` period without pressure (computed at once for all the periods that
//! passed, not looped over under the lock).
//!
//! No value is dropped under the lock (for Python, a last reference may run
//! code): evicted, replaced and refused values are dropped after unlocking.
//!
//! The core is generic over the stored value (the Python face stores the
//! caller's `bytes` object itself, so neither insert nor get copies it).

mod core;
pub mod py;

pub use self::core::*;
