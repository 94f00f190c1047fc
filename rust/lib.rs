//! `revenge._core`: registration only; the logic lives in the sibling modules.
//!
//! Each data structure is a folder of one shape: `mod.rs` (its design notes),
//! `core.rs` (plain Rust, tested without an interpreter), `py.rs` (the thin
//! PyO3 face) and `tests.rs` (the core's tests). `args.rs` holds the argument
//! helpers every face shares; `pressure` owns the `Level` the others react to.
use pyo3::prelude::*;

pub(crate) mod args;
pub mod clock;
pub mod counters;
pub mod lazy;
pub mod pressure;
pub mod session_cache;
pub mod transcode_cache;

// The module does not declare it runs without the GIL: the abi3 build (3.11+)
// cannot load on a free-threaded interpreter, and none is available to build
// and test a 3.13t wheel against.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<lazy::py::LazyCell>()?;
    m.add(
        "LazyInitBackoff",
        py.get_type::<lazy::py::LazyInitBackoff>(),
    )?;
    m.add_class::<session_cache::py::Session>()?;
    m.add_class::<session_cache::py::SessionCache>()?;
    m.add_class::<transcode_cache::py::TranscodeCache>()?;
    m.add_class::<pressure::py::PressureReading>()?;
    m.add_class::<pressure::py::MemoryPressure>()?;
    m.add_function(wrap_pyfunction!(pressure::py::memory_limit_bytes, m)?)?;
    Ok(())
}
