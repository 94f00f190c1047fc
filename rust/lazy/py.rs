//! The Python face: `revenge._core.LazyCell` and `LazyInitBackoff`.
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::PyTraverseError;

use super::{current_owner, Backoff, Begin, Join, LazyCore, Outcome, Waiter};
use crate::args::seconds;

pyo3::create_exception!(
    revenge._core,
    LazyInitBackoff,
    PyRuntimeError,
    "The last initialisation failed and its back-off has not elapsed.\n\n\
     ``args == (message, retry_after_seconds)``; ``__cause__`` is the last error."
);

/// How long a waiter sleeps (GIL released) between checks for signals.
const WAIT_SLICE: Duration = Duration::from_millis(50);

type Core = LazyCore<Py<PyAny>, Py<PyAny>>;

/// Atomic state machine ``empty -> initialising -> ready | failed``, reset for offload.
#[pyclass(frozen, generic, module = "revenge._core")]
pub struct LazyCell {
    core: Core,
}

fn backoff_error(py: Python<'_>, retry_after: Duration, error: Option<Arc<Py<PyAny>>>) -> PyErr {
    let secs = retry_after.as_secs_f64();
    let err = LazyInitBackoff::new_err((
        format!("initialisation failed; retrying after the back-off ({secs:.3}s left)"),
        secs,
    ));
    if let Some(e) = error {
        err.set_cause(py, Some(PyErr::from_value(e.bind(py).clone())));
    }
    err
}

/// Waits (GIL released, in slices so signals are seen) for the attempt
/// `waiter` is registered on; `Ok(None)` on timeout. An error (a signal)
/// drops the waiter, which unregisters it.
fn wait_for(
    py: Python<'_>,
    waiter: &mut Waiter<'_, Py<PyAny>, Py<PyAny>>,
    timeout: Duration,
) -> PyResult<Option<Outcome<Py<PyAny>, Py<PyAny>>>> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let slice = left.min(WAIT_SLICE);
        if let Some(outcome) = py.detach(|| waiter.wait(slice)) {
            return Ok(Some(outcome));
        }
        py.check_signals()?;
        if left <= slice {
            return Ok(None);
        }
    }
}

fn self_deadlock(what: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "LazyCell.{what} called by the thread that is initialising this cell (recursive \
         initialisation, or a blocking wait on the event-loop thread running its async \
         initialiser): it would deadlock"
    ))
}

#[pymethods]
impl LazyCell {
    #[new]
    #[pyo3(signature = (*, backoff_initial = 0.1, backoff_max = 30.0))]
    fn new(backoff_initial: f64, backoff_max: f64) -> PyResult<Self> {
        let backoff = Backoff::new(backoff_initial, backoff_max).map_err(PyValueError::new_err)?;
        Ok(LazyCell {
            core: LazyCore::new(backoff),
        })
    }

    #[getter]
    fn state(&self) -> &'static str {
        self.core.state().as_str()
    }

    #[getter]
    fn is_ready(&self) -> bool {
        self.core.state() == super::State::Ready
    }

    /// The value if ready, else ``None``. Lock-free; records the last-use time.
    fn get(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.core.with_value(|v| v.clone_ref(py))
    }

    /// Synchronous single flight for threads (waits with the GIL released).
    #[pyo3(signature = (init, *, timeout = None))]
    fn get_or_init(
        &self,
        py: Python<'_>,
        init: Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        if let Some(v) = self.core.with_value(|v| v.clone_ref(py)) {
            return Ok(v);
        }
        if !init.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "init must be a callable taking no arguments, got {}",
                init.get_type().name()?
            )));
        }
        let timeout = seconds("timeout", timeout)?;
        let deadline = std::time::Instant::now() + timeout;
        let me = current_owner();
        loop {
            match self.core.join(me) {
                Join::Ready(v) => return Ok(v.clone_ref(py)),
                Join::Backoff { retry_after, error } => {
                    return Err(backoff_error(py, retry_after, error))
                }
                Join::Claimed(id) => {
                    // Whatever happens in `init` (an exception, a Rust panic
                    // unwinding through us), the attempt must end, or every
                    // waiter would hang: the guard fails it on unwind.
                    struct Abandon<'a>(&'a Core, u64, bool);
                    impl Drop for Abandon<'_> {
                        fn drop(&mut self) {
                            if self.2 {
                                let e = Python::attach(|py| {
                                    PyRuntimeError::new_err("initialiser panicked")
                                        .into_value(py)
                                        .into_any()
                                });
                                let _ = self.0.fail(self.1, e);
                            }
                        }
                    }
                    let mut guard = Abandon(&self.core, id, true);
                    let result = init.call0();
                    guard.2 = false;
                    return match result {
                        Ok(v) => {
                            let out = v.clone().unbind();
                            self.core
                                .finish(id, v.unbind())
                                .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
                            Ok(out)
                        }
                        Err(err) => {
                            let value = err.value(py).clone().into_any().unbind();
                            let _ = self.core.fail(id, value);
                            Err(err)
                        }
                    };
                }
                Join::Wait(mut waiter) => {
                    if waiter.owner() == me {
                        return Err(self_deadlock("get_or_init"));
                    }
                    // Registered on the attempt before it could end: its
                    // outcome is kept for us, whatever the cell does next.
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    match wait_for(py, &mut waiter, left)? {
                        Some(Outcome::Ready(v)) => return Ok(v.clone_ref(py)),
                        Some(Outcome::Failed(e)) => {
                            return Err(PyErr::from_value(e.bind(py).clone()))
                        }
                        Some(Outcome::Abandoned) => continue,
                        None => {
                            return Err(pyo3::exceptions::PyTimeoutError::new_err(format!(
                                "LazyCell initialisation still in flight after {:.3}s",
                                timeout.as_secs_f64()
                            )))
                        }
                    }
                }
            }
        }
    }

    /// Claim an attempt for an asynchronous initialiser (id), or ``None``.
    fn try_begin(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        match self.core.try_begin(current_owner()) {
            Begin::Claimed(id) => Ok(Some(id)),
            Begin::Ready(_) | Begin::InFlight { .. } => Ok(None),
            Begin::Backoff { retry_after, error } => Err(backoff_error(py, retry_after, error)),
        }
    }

    fn finish(&self, attempt: u64, value: Py<PyAny>) -> PyResult<()> {
        self.core
            .finish(attempt, value)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    fn fail(
        &self,
        attempt: u64,
        error: Bound<'_, pyo3::exceptions::PyBaseException>,
    ) -> PyResult<()> {
        self.core
            .fail(attempt, error.into_any().unbind())
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// End an attempt without an outcome (its initialiser never ran or gave up).
    fn abandon(&self, attempt: u64) -> PyResult<()> {
        self.core
            .abandon(attempt)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Wait (GIL released) until no attempt is in flight; returns the state.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<&'static str> {
        let timeout = seconds("timeout", timeout)?;
        if self
            .core
            .flight()
            .is_some_and(|(_, owner)| owner == current_owner())
        {
            return Err(self_deadlock("wait"));
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let slice = left.min(WAIT_SLICE);
            let state = py.detach(|| self.core.wait_idle(slice));
            if state != super::State::Initialising || left <= slice {
                return Ok(state.as_str());
            }
            py.check_signals()?;
        }
    }

    fn reset(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.core.reset().map(|v| v.clone_ref(py))
    }

    #[getter]
    fn attempt(&self) -> Option<u64> {
        self.core.attempt_in_flight()
    }

    #[getter]
    fn init_count(&self) -> u64 {
        self.core.init_count()
    }

    #[getter]
    fn failure_count(&self) -> u64 {
        self.core.failure_count()
    }

    #[getter]
    fn last_init_seconds(&self) -> f64 {
        self.core.last_init_seconds()
    }

    #[getter]
    fn last_error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.core.last_error().map(|e| e.clone_ref(py))
    }

    fn retry_after(&self) -> f64 {
        self.core.retry_after().as_secs_f64()
    }

    fn idle_seconds(&self) -> f64 {
        self.core.idle_seconds()
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.core.visit(|v| visit.call(v), |e| visit.call(e))
    }

    fn __clear__(&self) {
        self.core.clear_refs();
    }

    fn __repr__(&self) -> String {
        format!(
            "<LazyCell state={} init_count={} failure_count={}>",
            self.core.state().as_str(),
            self.core.init_count(),
            self.core.failure_count()
        )
    }
}
