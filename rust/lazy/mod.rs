//! LazyCell: an atomic state machine `empty -> initialising -> ready | failed`,
//! with single-flight initialisation, a back-off after failures and `reset` for
//! offloading.
//!
//! [`LazyCore`] is plain Rust (generic over the value and the error) so it is
//! tested without an interpreter; [`py::LazyCell`] is the thin Python face.
//!
//! Design:
//! - The value lives in an [`ArcSwapOption`]: a ready `get` is one atomic load
//!   plus a borrowed guard, no lock, so many threads (GIL or free-threaded) read
//!   it without contending on a mutex.
//! - Everything that changes the state (claiming an attempt, finishing it,
//!   failing it, resetting) goes through one small mutex, and waiters block on a
//!   condvar tied to it. The Python face waits with the GIL released, in short
//!   slices so Ctrl-C is still seen, which is what keeps an initialiser that
//!   releases and re-takes the GIL from deadlocking.
//! - Attempts are numbered, so the asynchronous path (`try_begin` -> `finish` /
//!   `fail` / `abandon`) needs no callback into asyncio and a stale completion
//!   is refused. Every attempt ends: an owner that can neither finish nor fail
//!   it (a task cancelled before it ran) abandons it, and its waiters look again.
//! - A waiter registers on the attempt in the same locked step that finds it in
//!   flight (`join`), and the attempt's outcome (its value or error) is kept
//!   for the registered waiters until each has taken it: a reset or a new
//!   attempt right after the end cannot make a waiter miss it and starve.
//! - No `T` or `E` is dropped while the lock is held (for Python, a last
//!   reference can run `__del__`, which may re-enter the cell or release the
//!   GIL while another thread waits for the lock with the GIL held): whatever
//!   a section replaces is moved out and dropped after the guard. The last
//!   error lives outside the lock, so garbage collection reads it without one.
//! - A read marks the cell used with a relaxed flag (stored only when it was
//!   clear, so concurrent readers do not bounce a cache line); `idle_seconds`
//!   turns the flag into a time stamp, keeping the clock off the hot path.

mod core;
pub mod py;

pub use self::core::*;
