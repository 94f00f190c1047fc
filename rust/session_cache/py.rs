//! The Python face: `revenge._core.Session` and `revenge._core.SessionCache`.
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::{Limits, Role, SessionCore, SessionData};
use crate::args::{int_in, real};

/// An immutable session record owned by Rust (no Python objects inside).
#[pyclass(frozen, module = "revenge._core")]
pub struct Session {
    data: SessionData,
}

#[pymethods]
impl Session {
    #[getter]
    fn user_id(&self) -> i64 {
        self.data.user_id
    }
    #[getter]
    fn role(&self) -> &str {
        self.data.role.as_str()
    }
    #[getter]
    fn flags(&self) -> u64 {
        self.data.flags
    }
    #[getter]
    fn expires_at(&self) -> f64 {
        self.data.expires_at
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<Session>() {
            Ok(o) => o.get().data == self.data,
            Err(_) => false,
        }
    }
    fn __repr__(&self) -> String {
        format!(
            "Session(user_id={}, role={:?}, flags={}, expires_at={})",
            self.data.user_id,
            self.data.role.as_str(),
            self.data.flags,
            self.data.expires_at
        )
    }
}

/// The token's text and hash. An exact `str` has its hash cached by
/// CPython; a `str` subclass might override `__hash__`, so it is hashed
/// as a plain `str` copy instead.
#[inline]
fn token_parts<'a>(token: &'a Bound<'_, PyString>) -> PyResult<(u64, &'a str)> {
    let text = token.to_str()?;
    let hash = if token.is_exact_instance_of::<PyString>() {
        token.hash()?
    } else {
        PyString::new(token.py(), text).hash()?
    };
    Ok((hash as u64, text))
}

/// Bounded (entries and bytes) token -> Session cache with TTL, idle timeout and revocation.
#[pyclass(frozen, module = "revenge._core")]
pub struct SessionCache {
    core: SessionCore,
}

#[pymethods]
impl SessionCache {
    #[new]
    #[pyo3(signature = (*, max_entries, max_bytes, ttl, idle_timeout))]
    fn new(
        max_entries: &Bound<'_, PyAny>,
        max_bytes: &Bound<'_, PyAny>,
        ttl: &Bound<'_, PyAny>,
        idle_timeout: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let max_entries = int_in(max_entries, "max_entries", 2, super::MAX_ENTRIES as i128)?;
        let max_bytes = int_in(max_bytes, "max_bytes", 0, i64::MAX as i128)?;
        let limits = Limits::new(
            max_entries as u64,
            max_bytes as u64,
            real(ttl, "ttl")?,
            real(idle_timeout, "idle_timeout")?,
        )
        .map_err(PyValueError::new_err)?;
        Ok(SessionCache {
            core: SessionCore::new(limits),
        })
    }

    /// The live session for ``token``; ``None`` if absent, expired or idle too long.
    fn get(&self, token: &Bound<'_, PyString>) -> PyResult<Option<Session>> {
        let (hash, text) = token_parts(token)?;
        Ok(self.core.get(hash, text).map(|data| Session { data }))
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (token, *, user_id, role, flags, expires_at, epoch = None))]
    fn insert(
        &self,
        token: &Bound<'_, PyString>,
        user_id: &Bound<'_, PyAny>,
        role: &str,
        flags: &Bound<'_, PyAny>,
        expires_at: &Bound<'_, PyAny>,
        epoch: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let (hash, text) = token_parts(token)?;
        if role.len() > super::MAX_ROLE_BYTES {
            return Err(PyValueError::new_err(format!(
                "role must be at most {} bytes of UTF-8, got {}",
                super::MAX_ROLE_BYTES,
                role.len()
            )));
        }
        let data = SessionData {
            user_id: int_in(user_id, "user_id", i64::MIN as i128, i64::MAX as i128)? as i64,
            role: Role::new(role),
            flags: int_in(flags, "flags", 0, u64::MAX as i128)? as u64,
            expires_at: real(expires_at, "expires_at")?,
        };
        let epoch = match epoch {
            Some(e) if !e.is_none() => Some(int_in(e, "epoch", 0, u64::MAX as i128)? as u64),
            _ => None,
        };
        self.core
            .insert_fetched(hash, text, data, epoch)
            .map_err(|e| PyValueError::new_err(e.0))
    }

    /// The revocation epoch, to read before a database fetch.
    fn epoch(&self) -> u64 {
        self.core.epoch()
    }

    fn revoke(&self, token: &Bound<'_, PyString>) -> PyResult<bool> {
        let (hash, text) = token_parts(token)?;
        Ok(self.core.revoke(hash, text))
    }

    fn revoke_user(&self, user_id: &Bound<'_, PyAny>) -> PyResult<u64> {
        let uid = int_in(user_id, "user_id", i64::MIN as i128, i64::MAX as i128)? as i64;
        Ok(self.core.revoke_user(uid))
    }

    fn purge_expired(&self) -> u64 {
        self.core.purge_expired()
    }

    fn clear(&self) {
        self.core.clear()
    }

    fn __len__(&self) -> usize {
        self.core.len()
    }

    fn advance_clock(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let s = real(seconds, "seconds")?;
        if !(s.is_finite() && (0.0..=super::MAX_SECONDS).contains(&s)) {
            return Err(PyValueError::new_err(format!(
                "seconds must be finite and in [0, {}], got {s}",
                super::MAX_SECONDS
            )));
        }
        self.core.advance_clock(s);
        Ok(())
    }

    #[getter]
    fn max_entries(&self) -> u64 {
        self.core.limits().max_entries
    }

    #[getter]
    fn max_bytes(&self) -> u64 {
        self.core.limits().max_bytes
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.core.stats();
        let d = PyDict::new(py);
        d.set_item("hits", s.hits)?;
        d.set_item("misses", s.misses)?;
        d.set_item("inserts", s.inserts)?;
        d.set_item("entries", s.entries)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("evicted_size", s.evicted_size)?;
        d.set_item("evicted_expired", s.evicted_expired)?;
        d.set_item("evicted_idle", s.evicted_idle)?;
        d.set_item("revoked", s.revoked)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let l = self.core.limits();
        format!(
            "<SessionCache entries={} max_entries={} max_bytes={} ttl={} idle_timeout={}>",
            self.core.len(),
            l.max_entries,
            l.max_bytes,
            l.ttl,
            l.idle_timeout
        )
    }
}
