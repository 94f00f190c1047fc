//! MemoryPressure: reads cgroup v2 (`memory.current`, `memory.max`,
//! `memory.stat`, `memory.events`, `memory.pressure`; cgroup v1's
//! `memory.usage_in_bytes` / `memory.limit_in_bytes` on hybrid hosts), PSI
//! (`/proc/pressure/memory`) and `/proc/meminfo` below a root directory, and
//! turns them into a level `normal | moderate | critical` with hysteresis.
//!
//! The root is a parameter so tests point it at a folder that imitates those
//! files. Nothing here caches file handles: a reading is a handful of small
//! reads of kernel pseudo-files (~tens of microseconds), done every few seconds.
//!
//! Level rules (thresholds configurable):
//! - `critical` when used/limit >= `critical`, PSI `some avg10` >= `psi_critical`,
//!   or the cgroup hit `memory.max` / killed for OOM since the last reading;
//! - `moderate` when used/limit >= `moderate`, PSI `some avg10` >= `psi_moderate`,
//!   or the cgroup went over `memory.high` since the last reading;
//! - going *down* needs the ratio below `threshold - hysteresis` (and PSI below
//!   `psi_threshold - 100 * hysteresis`), so a reading hovering at a threshold
//!   does not flap. `psi_moderate` must exceed `100 * hysteresis`, or that
//!   PSI bound would be negative and `moderate` could never be left;
//! - no PSI (an old kernel, PSI disabled) is no signal, not a reading of 0;
//! - a cgroup `memory.max` of 0 (nothing may be used) reads as a full ratio: critical.
//!
//! "Used" in a cgroup is `memory.current - inactive_file` (the working set, as
//! the kubelet counts it): clean page cache the kernel can drop is not pressure.

mod core;
pub mod py;

pub use self::core::*;
