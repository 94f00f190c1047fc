//! The Python face: `MemoryPressure`, `PressureReading`, `memory_limit_bytes`.
use std::sync::Mutex;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use super::{Paths, Reading, Thresholds, Tracker};
use crate::args::root_arg;

fn os_error(e: std::io::Error) -> PyErr {
    PyOSError::new_err(format!("reading memory information: {e}"))
}

/// One reading of the memory files.
#[pyclass(frozen, module = "revenge._core")]
pub struct PressureReading {
    r: Reading,
}

#[pymethods]
impl PressureReading {
    #[getter]
    fn level(&self) -> &'static str {
        self.r.level.as_str()
    }
    #[getter]
    fn used_bytes(&self) -> u64 {
        self.r.sample.used
    }
    #[getter]
    fn limit_bytes(&self) -> u64 {
        self.r.sample.limit
    }
    #[getter]
    fn available_bytes(&self) -> u64 {
        self.r.sample.available
    }
    #[getter]
    fn ratio(&self) -> f64 {
        self.r.sample.ratio()
    }
    #[getter]
    fn psi_some_avg10(&self) -> Option<f64> {
        self.r.sample.psi_some_avg10
    }
    #[getter]
    fn psi_full_avg10(&self) -> Option<f64> {
        self.r.sample.psi_full_avg10
    }
    #[getter]
    fn source(&self) -> &'static str {
        self.r.sample.source.as_str()
    }
    #[getter]
    fn high_events(&self) -> u64 {
        self.r.new_events.high
    }
    #[getter]
    fn max_events(&self) -> u64 {
        self.r.new_events.max
    }
    #[getter]
    fn oom_kill_events(&self) -> u64 {
        self.r.new_events.oom_kill
    }
    fn __repr__(&self) -> String {
        format!(
            "PressureReading(level={:?}, used_bytes={}, limit_bytes={}, ratio={:.3}, psi_some_avg10={:?}, source={:?})",
            self.r.level.as_str(),
            self.r.sample.used,
            self.r.sample.limit,
            self.r.sample.ratio(),
            self.r.sample.psi_some_avg10,
            self.r.sample.source.as_str()
        )
    }
}

/// Reads cgroup v2, PSI and /proc/meminfo below ``root``; levels with hysteresis.
#[pyclass(frozen, module = "revenge._core")]
pub struct MemoryPressure {
    paths: Paths,
    tracker: Mutex<Tracker>,
}

#[pymethods]
impl MemoryPressure {
    #[new]
    #[pyo3(signature = (*, root = None, moderate = 0.80, critical = 0.95, hysteresis = 0.05, psi_moderate = 10.0, psi_critical = 40.0))]
    fn new(
        root: Option<&Bound<'_, PyAny>>,
        moderate: f64,
        critical: f64,
        hysteresis: f64,
        psi_moderate: f64,
        psi_critical: f64,
    ) -> PyResult<Self> {
        let root = match root {
            Some(r) => root_arg(r)?,
            None => "/".into(),
        };
        let t = Thresholds::new(moderate, critical, hysteresis, psi_moderate, psi_critical)
            .map_err(PyValueError::new_err)?;
        Ok(MemoryPressure {
            paths: Paths::new(root),
            tracker: Mutex::new(Tracker::new(t)),
        })
    }

    /// Reads the files (GIL released) and updates the level.
    fn read(&self, py: Python<'_>) -> PyResult<PressureReading> {
        let sample = py.detach(|| self.paths.sample()).map_err(os_error)?;
        let mut tracker = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
        Ok(PressureReading {
            r: tracker.observe(sample),
        })
    }

    #[getter]
    fn level(&self) -> &'static str {
        self.tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .level()
            .as_str()
    }
}

/// Memory this process may use: cgroup v2 ``memory.max`` when set, else MemTotal.
#[pyfunction]
#[pyo3(signature = (root = None))]
pub fn memory_limit_bytes(py: Python<'_>, root: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
    let root = match root {
        Some(r) => root_arg(r)?,
        None => "/".into(),
    };
    let paths = Paths::new(root);
    py.detach(|| paths.memory_limit()).map_err(os_error)
}
