//! The Python face: `revenge._core.TranscodeCache`.
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::{Config, TranscodeCore};
use crate::args::{int_in, level_arg, real};

/// Byte-budgeted segment cache; pinned entries are never evicted.
#[pyclass(frozen, module = "revenge._core")]
pub struct TranscodeCache {
    // The caller's own bytes object: stored and returned as is (zero copy).
    core: TranscodeCore<Py<PyBytes>>,
}

impl TranscodeCache {
    /// The segment as stored (the caller's own `bytes` object) and its size,
    /// after the checks that make a bad argument an error, not a refusal.
    fn checked(&self, key: &str, data: &Bound<'_, PyAny>) -> PyResult<(Py<PyBytes>, u64)> {
        let data = data.cast_exact::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!(
                "data must be bytes, got {}",
                data.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let size = data.as_bytes().len() as u64;
        self.core.check(key, size).map_err(PyValueError::new_err)?;
        Ok((data.clone().unbind(), size))
    }
}

#[pymethods]
impl TranscodeCache {
    #[new]
    #[pyo3(signature = (*, budget_bytes, quiet_seconds = 30.0, grow_step = 0.25))]
    fn new(budget_bytes: &Bound<'_, PyAny>, quiet_seconds: f64, grow_step: f64) -> PyResult<Self> {
        let budget = int_in(
            budget_bytes,
            "budget_bytes",
            1,
            super::MAX_BUDGET_BYTES as i128,
        )?;
        let config =
            Config::new(budget as u64, quiet_seconds, grow_step).map_err(PyValueError::new_err)?;
        Ok(TranscodeCache {
            core: TranscodeCore::new(config),
        })
    }

    #[getter]
    fn budget_bytes(&self) -> u64 {
        self.core.config().budget
    }

    #[getter]
    fn effective_budget_bytes(&self) -> u64 {
        self.core.effective_budget()
    }

    #[getter]
    fn level(&self) -> &'static str {
        self.core.level().as_str()
    }

    /// Bytes charged per entry besides its value and key.
    #[classattr]
    const ENTRY_OVERHEAD_BYTES: u64 = super::ENTRY_OVERHEAD_BYTES;

    /// Longest key accepted (bytes of UTF-8).
    #[classattr]
    const MAX_KEY_BYTES: usize = super::MAX_KEY_BYTES;

    fn insert(&self, key: &str, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        let (data, size) = self.checked(key, data)?;
        Ok(self.core.insert(key, data, size).is_ok())
    }

    fn insert_pinned(&self, key: &str, data: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
        let (data, size) = self.checked(key, data)?;
        Ok(self.core.insert_pinned(key, data, size).ok())
    }

    /// The cached bytes object itself (a new reference, no copy).
    fn get(&self, py: Python<'_>, key: &str) -> Option<Py<PyBytes>> {
        self.core.get_with(key, |v| v.clone_ref(py))
    }

    fn pin(&self, key: &str) -> Option<u64> {
        self.core.pin(key)
    }

    fn unpin(&self, key: &str, token: &Bound<'_, PyAny>) -> PyResult<bool> {
        let token = int_in(token, "token", 0, u64::MAX as i128)? as u64;
        Ok(self.core.unpin(key, token))
    }

    fn remove(&self, key: &str) -> bool {
        self.core.remove(key)
    }

    fn set_pressure(&self, level: &Bound<'_, PyAny>) -> PyResult<u64> {
        Ok(self.core.set_pressure(level_arg(level)?))
    }

    fn advance_clock(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let s = real(seconds, "seconds")?;
        if !(s.is_finite() && (0.0..=86_400.0 * 365.0).contains(&s)) {
            return Err(PyValueError::new_err(format!(
                "seconds must be finite and in [0, one year], got {s}"
            )));
        }
        self.core.advance_clock(s);
        Ok(())
    }

    fn clear(&self) {
        self.core.clear()
    }

    fn __len__(&self) -> usize {
        self.core.len()
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.core.stats();
        let d = PyDict::new(py);
        d.set_item("hits", s.hits)?;
        d.set_item("misses", s.misses)?;
        d.set_item("entries", s.entries)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("pinned_bytes", s.pinned_bytes)?;
        d.set_item("pinned_entries", s.pinned_entries)?;
        d.set_item("evictions", s.evictions)?;
        d.set_item("evicted_bytes", s.evicted_bytes)?;
        d.set_item("rejected", s.rejected)?;
        d.set_item("budget_bytes", s.budget_bytes)?;
        d.set_item("effective_budget_bytes", s.effective_budget_bytes)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let s = self.core.stats();
        format!(
            "<TranscodeCache entries={} bytes={} budget_bytes={} effective_budget_bytes={} level={}>",
            s.entries,
            s.bytes,
            s.budget_bytes,
            s.effective_budget_bytes,
            self.core.level().as_str()
        )
    }
}
