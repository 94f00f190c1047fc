//! The argument helpers every Python face shares: they turn a Python object
//! into a checked Rust value, with a `TypeError` for the wrong type and a
//! `ValueError` naming the argument for a value out of range.
use pyo3::exceptions::{PyTypeError, PyValueError};
use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt};

use crate::pressure::Level;

/// An int argument in `[min, max]`, with a ValueError naming it otherwise
/// (PyO3 alone would raise OverflowError) and a TypeError for non-ints.
pub(crate) fn int_in(obj: &Bound<'_, PyAny>, name: &str, min: i128, max: i128) -> PyResult<i128> {
    if !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, got {}",
            obj.get_type().name()?
        )));
    }
    // i64 covers every real argument and converts without a temporary.
    let v: i128 = match obj.extract::<i64>() {
        Ok(v) => i128::from(v),
        Err(_) => obj.extract().map_err(|_| {
            PyValueError::new_err(format!("{name} must be between {min} and {max}, got {obj}"))
        })?,
    };
    if v < min || v > max {
        return Err(PyValueError::new_err(format!(
            "{name} must be between {min} and {max}, got {v}"
        )));
    }
    Ok(v)
}

/// A real-number argument (int or float), TypeError otherwise.
pub(crate) fn real(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        return obj.extract::<f64>().map_err(|_| {
            PyValueError::new_err(format!("{name} is out of range for a float, got {obj}"))
        });
    }
    Err(PyTypeError::new_err(format!(
        "{name} must be a number (int or float), got {}",
        obj.get_type().name()?
    )))
}

/// A pressure level argument: `'normal'`, `'moderate'` or `'critical'`.
pub(crate) fn level_arg(level: &Bound<'_, PyAny>) -> PyResult<Level> {
    let s: &str = level.extract().map_err(|_| {
        PyTypeError::new_err("level must be a str: 'normal', 'moderate' or 'critical'")
    })?;
    Level::parse(s).ok_or_else(|| {
        PyValueError::new_err(format!(
            "level must be 'normal', 'moderate' or 'critical', got {s:?}"
        ))
    })
}

/// A timeout in seconds: `None` means a year ("as long as it takes"), else `[0, one year]`.
pub(crate) fn seconds(name: &str, v: Option<f64>) -> PyResult<Duration> {
    match v {
        None => Ok(Duration::from_secs(86_400 * 365)),
        Some(s) if (0.0..=86_400.0 * 365.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(PyValueError::new_err(format!(
            "{name} must be None or a finite number of seconds >= 0, got {s}"
        ))),
    }
}

/// A directory argument (`str` or `os.PathLike`).
pub(crate) fn root_arg(root: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    let path: PathBuf = root.extract().map_err(|_| {
        PyTypeError::new_err("root must be a str or os.PathLike naming a directory")
    })?;
    if !path.is_dir() {
        return Err(PyValueError::new_err(format!(
            "root {} is not a directory",
            path.display()
        )));
    }
    Ok(path)
}
