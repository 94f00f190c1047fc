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
//!   does not flap.
//!
//! "Used" in a cgroup is `memory.current - inactive_file` (the working set, as
//! the kubelet counts it): clean page cache the kernel can drop is not pressure.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::transcode_cache::Level;

/// Thresholds, validated.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub moderate: f64,
    pub critical: f64,
    pub hysteresis: f64,
    pub psi_moderate: f64,
    pub psi_critical: f64,
}

impl Thresholds {
    pub fn new(
        moderate: f64,
        critical: f64,
        hysteresis: f64,
        psi_moderate: f64,
        psi_critical: f64,
    ) -> Result<Thresholds, String> {
        let all = [
            ("moderate", moderate),
            ("critical", critical),
            ("hysteresis", hysteresis),
            ("psi_moderate", psi_moderate),
            ("psi_critical", psi_critical),
        ];
        for (name, v) in all {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        if !(moderate > 0.0 && moderate < critical && critical <= 1.0) {
            return Err(format!(
                "need 0 < moderate < critical <= 1.0 (fractions of the limit), got \
                 moderate={moderate}, critical={critical}"
            ));
        }
        if hysteresis >= moderate {
            return Err(format!(
                "hysteresis ({hysteresis}) must be smaller than moderate ({moderate})"
            ));
        }
        if !(psi_moderate < psi_critical && psi_critical <= 100.0) {
            return Err(format!(
                "need 0 <= psi_moderate < psi_critical <= 100 (percent), got \
                 psi_moderate={psi_moderate}, psi_critical={psi_critical}"
            ));
        }
        Ok(Thresholds {
            moderate,
            critical,
            hysteresis,
            psi_moderate,
            psi_critical,
        })
    }
}

/// Where the numbers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cgroup,
    Meminfo,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cgroup => "cgroup",
            Source::Meminfo => "meminfo",
        }
    }
}

/// `memory.events` counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    pub high: u64,
    pub max: u64,
    pub oom_kill: u64,
}

/// One raw sample of the files.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub used: u64,
    pub limit: u64,
    pub available: u64,
    pub psi_some_avg10: Option<f64>,
    pub psi_full_avg10: Option<f64>,
    pub source: Source,
    /// Cumulative counters (cgroup only).
    pub events: Option<Events>,
}

impl Sample {
    pub fn ratio(&self) -> f64 {
        if self.limit == 0 {
            return 0.0;
        }
        self.used as f64 / self.limit as f64
    }
}

/// A sample with its level and the event counts since the previous reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub sample: Sample,
    pub level: Level,
    pub new_events: Events,
}

fn read_trimmed(path: &Path) -> io::Result<String> {
    Ok(fs::read_to_string(path)?.trim().to_string())
}

fn parse_u64(path: &Path) -> Option<u64> {
    read_trimmed(path).ok()?.parse().ok()
}

/// `key value` lines (memory.stat, memory.events) -> the value of `key`.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut it = line.split_whitespace();
        (it.next()? == key).then(|| it.next()?.parse().ok())?
    })
}

/// `/proc/meminfo` -> (MemTotal, MemAvailable) in bytes.
pub fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some(kb.saturating_mul(1024))
        })
    };
    Some((field("MemTotal")?, field("MemAvailable")?))
}

/// PSI text -> (some avg10, full avg10).
pub fn parse_psi(text: &str) -> (Option<f64>, Option<f64>) {
    let avg10 = |kind: &str| {
        text.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            if it.next()? != kind {
                return None;
            }
            it.find_map(|kv| kv.strip_prefix("avg10=")?.parse::<f64>().ok())
        })
    };
    (avg10("some"), avg10("full"))
}

/// `/proc/self/cgroup` -> the v2 path (`0::/path`).
pub fn parse_proc_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
}

/// The files below a root.
#[derive(Debug, Clone)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    pub fn new(root: impl Into<PathBuf>) -> Paths {
        Paths { root: root.into() }
    }

    fn under(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    fn cgroup_root(&self) -> PathBuf {
        self.under("sys/fs/cgroup")
    }

    /// The process's cgroup directory: from `/proc/self/cgroup` when it exists
    /// below the mount (host view), else the mount itself (a container's
    /// namespaced view shows its own cgroup as the root).
    fn cgroup_dir(&self) -> Option<PathBuf> {
        let mount = self.cgroup_root();
        if let Ok(text) = fs::read_to_string(self.under("proc/self/cgroup")) {
            if let Some(rel) = parse_proc_cgroup(&text) {
                let dir = mount.join(rel.trim_start_matches('/'));
                if dir.join("memory.current").exists() {
                    return Some(dir);
                }
            }
        }
        mount.join("memory.current").exists().then_some(mount)
    }

    /// The tightest numeric `memory.max` from the cgroup up to the mount.
    fn cgroup_limit(&self, dir: &Path) -> Option<u64> {
        let mount = self.cgroup_root();
        let mut best: Option<u64> = None;
        let mut cur = Some(dir);
        while let Some(d) = cur {
            if let Some(v) = parse_u64(&d.join("memory.max")) {
                best = Some(best.map_or(v, |b| b.min(v)));
            }
            if d == mount {
                break;
            }
            cur = d.parent().filter(|p| p.starts_with(&mount));
        }
        best
    }

    /// cgroup v1 fallback (hybrid hosts): the memory controller's directory.
    fn cgroup_v1_dir(&self) -> Option<PathBuf> {
        let mount = self.under("sys/fs/cgroup/memory");
        if let Ok(text) = fs::read_to_string(self.under("proc/self/cgroup")) {
            let rel = text.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                controllers
                    .split(',')
                    .any(|c| c == "memory")
                    .then(|| path.trim().to_string())
            });
            if let Some(rel) = rel {
                let dir = mount.join(rel.trim_start_matches('/'));
                if dir.join("memory.usage_in_bytes").exists() {
                    return Some(dir);
                }
            }
        }
        mount
            .join("memory.usage_in_bytes")
            .exists()
            .then_some(mount)
    }

    /// cgroup v1: (limit, used) where a limit >= 2^62 means none.
    fn cgroup_v1(&self) -> Option<(Option<u64>, u64)> {
        const UNLIMITED: u64 = 1 << 62;
        let dir = self.cgroup_v1_dir()?;
        let usage = parse_u64(&dir.join("memory.usage_in_bytes"))?;
        let stat = fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
        let limit = [
            parse_u64(&dir.join("memory.limit_in_bytes")),
            keyed(&stat, "hierarchical_memory_limit"),
        ]
        .into_iter()
        .flatten()
        .filter(|v| *v < UNLIMITED)
        .min();
        let inactive = keyed(&stat, "total_inactive_file").unwrap_or(0);
        Some((limit, usage.saturating_sub(inactive)))
    }

    pub fn meminfo(&self) -> io::Result<(u64, u64)> {
        let path = self.under("proc/meminfo");
        let text = fs::read_to_string(&path)?;
        parse_meminfo(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: no MemTotal/MemAvailable", path.display()),
            )
        })
    }

    /// Memory this process may use: cgroup `memory.max` when set (and below
    /// MemTotal), else MemTotal.
    pub fn memory_limit(&self) -> io::Result<u64> {
        let (total, _) = self.meminfo()?;
        let limit = match self.cgroup_dir() {
            Some(d) => self.cgroup_limit(&d),
            None => self.cgroup_v1().and_then(|(limit, _)| limit),
        };
        Ok(limit.map_or(total, |l| l.min(total)))
    }

    pub fn sample(&self) -> io::Result<Sample> {
        let (total, mem_available) = self.meminfo()?;
        let dir = self.cgroup_dir();
        let psi_text = dir
            .as_ref()
            .and_then(|d| fs::read_to_string(d.join("memory.pressure")).ok())
            .or_else(|| fs::read_to_string(self.under("proc/pressure/memory")).ok());
        let (psi_some, psi_full) = psi_text.as_deref().map_or((None, None), parse_psi);
        if let Some(dir) = dir {
            let events = fs::read_to_string(dir.join("memory.events"))
                .ok()
                .map(|t| Events {
                    high: keyed(&t, "high").unwrap_or(0),
                    max: keyed(&t, "max").unwrap_or(0),
                    oom_kill: keyed(&t, "oom_kill").unwrap_or(0),
                });
            if let (Some(limit), Some(current)) = (
                self.cgroup_limit(&dir),
                parse_u64(&dir.join("memory.current")),
            ) {
                let limit = limit.min(total);
                let inactive = fs::read_to_string(dir.join("memory.stat"))
                    .ok()
                    .and_then(|t| keyed(&t, "inactive_file"))
                    .unwrap_or(0);
                let used = current.saturating_sub(inactive);
                return Ok(Sample {
                    used,
                    limit,
                    available: limit.saturating_sub(used).min(mem_available),
                    psi_some_avg10: psi_some,
                    psi_full_avg10: psi_full,
                    source: Source::Cgroup,
                    events,
                });
            }
            return Ok(Sample {
                used: total.saturating_sub(mem_available),
                limit: total,
                available: mem_available,
                psi_some_avg10: psi_some,
                psi_full_avg10: psi_full,
                source: Source::Meminfo,
                events,
            });
        }
        if let Some((Some(limit), used)) = self.cgroup_v1() {
            let limit = limit.min(total);
            return Ok(Sample {
                used,
                limit,
                available: limit.saturating_sub(used).min(mem_available),
                psi_some_avg10: psi_some,
                psi_full_avg10: psi_full,
                source: Source::Cgroup,
                events: None,
            });
        }
        Ok(Sample {
            used: total.saturating_sub(mem_available),
            limit: total,
            available: mem_available,
            psi_some_avg10: psi_some,
            psi_full_avg10: psi_full,
            source: Source::Meminfo,
            events: None,
        })
    }
}

/// Classifies a sample with every threshold lowered by `margin`.
fn classify(t: &Thresholds, s: &Sample, new: &Events, margin: f64) -> Level {
    let ratio = s.ratio();
    let psi = s.psi_some_avg10.unwrap_or(0.0);
    let psi_margin = margin * 100.0;
    if ratio >= t.critical - margin
        || psi >= t.psi_critical - psi_margin
        || new.max > 0
        || new.oom_kill > 0
    {
        Level::Critical
    } else if ratio >= t.moderate - margin || psi >= t.psi_moderate - psi_margin || new.high > 0 {
        Level::Moderate
    } else {
        Level::Normal
    }
}

/// The level state machine: remembers the last level and event counters.
#[derive(Debug, Clone)]
pub struct Tracker {
    thresholds: Thresholds,
    level: Level,
    last_events: Option<Events>,
}

impl Tracker {
    pub fn new(thresholds: Thresholds) -> Tracker {
        Tracker {
            thresholds,
            level: Level::Normal,
            last_events: None,
        }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    /// Feeds a sample; returns the reading with the new level.
    pub fn observe(&mut self, sample: Sample) -> Reading {
        let new_events = match (sample.events, self.last_events) {
            (Some(now), Some(before)) => Events {
                high: now.high.saturating_sub(before.high),
                max: now.max.saturating_sub(before.max),
                oom_kill: now.oom_kill.saturating_sub(before.oom_kill),
            },
            // The first reading has no baseline: old events are not news.
            _ => Events::default(),
        };
        if sample.events.is_some() {
            self.last_events = sample.events;
        }
        let up = classify(&self.thresholds, &sample, &new_events, 0.0);
        self.level = if up > self.level {
            up
        } else {
            let held = classify(
                &self.thresholds,
                &sample,
                &new_events,
                self.thresholds.hysteresis,
            );
            held.min(self.level)
        };
        Reading {
            sample,
            level: self.level,
            new_events,
        }
    }
}

pub mod py {
    //! The Python face: `MemoryPressure`, `PressureReading`, `memory_limit_bytes`.
    use std::sync::Mutex;

    use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
    use pyo3::prelude::*;

    use super::{Paths, Reading, Thresholds, Tracker};

    fn root_arg(root: &Bound<'_, PyAny>) -> PyResult<std::path::PathBuf> {
        let path: std::path::PathBuf = root.extract().map_err(|_| {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    const GB: u64 = 1 << 30;

    /// A throwaway fake root.
    struct Root(PathBuf);

    impl Root {
        fn new() -> Root {
            static N: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "revenge-pressure-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).unwrap();
            Root(dir)
        }
        fn write(&self, rel: &str, text: &str) {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        fn meminfo(&self, total_kb: u64, avail_kb: u64) {
            self.write(
                "proc/meminfo",
                &format!(
                    "MemTotal:       {total_kb} kB\nMemFree:        1 kB\nMemAvailable:   {avail_kb} kB\n"
                ),
            );
        }
        fn paths(&self) -> Paths {
            Paths::new(&self.0)
        }
    }

    impl Drop for Root {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn thresholds() -> Thresholds {
        Thresholds::new(0.80, 0.95, 0.05, 10.0, 40.0).unwrap()
    }

    #[test]
    fn parsers() {
        assert_eq!(
            parse_meminfo("MemTotal: 100 kB\nMemAvailable: 40 kB\n"),
            Some((102_400, 40_960))
        );
        assert_eq!(parse_meminfo("MemTotal: 100 kB\n"), None);
        let psi = "some avg10=12.50 avg60=1.00 avg300=0.00 total=1\nfull avg10=3.25 avg60=0 avg300=0 total=1\n";
        assert_eq!(parse_psi(psi), (Some(12.5), Some(3.25)));
        assert_eq!(parse_psi(""), (None, None));
        assert_eq!(
            parse_proc_cgroup("0::/user.slice/app.scope\n"),
            Some("/user.slice/app.scope".into())
        );
        assert_eq!(keyed("low 0\nhigh 3\nmax 1\n", "high"), Some(3));
    }

    #[test]
    fn meminfo_only() {
        let r = Root::new();
        r.meminfo(16 * 1024 * 1024, 4 * 1024 * 1024);
        let s = r.paths().sample().unwrap();
        assert_eq!(s.source, Source::Meminfo);
        assert_eq!(s.limit, 16 * GB);
        assert_eq!(s.used, 12 * GB);
        assert_eq!(s.available, 4 * GB);
        assert_eq!(r.paths().memory_limit().unwrap(), 16 * GB);
        assert!(s.psi_some_avg10.is_none());
    }

    #[test]
    fn cgroup_limit_and_working_set() {
        let r = Root::new();
        r.meminfo(16 * 1024 * 1024, 10 * 1024 * 1024);
        r.write("proc/self/cgroup", "0::/app.slice/svc\n");
        r.write("sys/fs/cgroup/memory.max", "max\n");
        r.write(
            "sys/fs/cgroup/app.slice/memory.max",
            &format!("{}\n", 4 * GB),
        );
        r.write("sys/fs/cgroup/app.slice/svc/memory.max", "max\n");
        r.write(
            "sys/fs/cgroup/app.slice/svc/memory.current",
            &format!("{}\n", 3 * GB),
        );
        r.write(
            "sys/fs/cgroup/app.slice/svc/memory.stat",
            &format!("anon 1\ninactive_file {}\nactive_file 5\n", GB),
        );
        r.write(
            "sys/fs/cgroup/app.slice/svc/memory.pressure",
            "some avg10=1.00 avg60=0 avg300=0 total=0\nfull avg10=0.50 avg60=0 avg300=0 total=0\n",
        );
        let s = r.paths().sample().unwrap();
        assert_eq!(s.source, Source::Cgroup);
        assert_eq!(s.limit, 4 * GB);
        assert_eq!(s.used, 2 * GB);
        assert_eq!(s.available, 2 * GB);
        assert_eq!(s.psi_some_avg10, Some(1.0));
        assert_eq!(r.paths().memory_limit().unwrap(), 4 * GB);
    }

    #[test]
    fn container_view_without_matching_path_uses_the_mount() {
        let r = Root::new();
        r.meminfo(8 * 1024 * 1024, 6 * 1024 * 1024);
        r.write("proc/self/cgroup", "0::/docker/abc\n");
        r.write("sys/fs/cgroup/memory.max", &format!("{}\n", GB));
        r.write("sys/fs/cgroup/memory.current", &format!("{}\n", GB / 2));
        assert_eq!(r.paths().memory_limit().unwrap(), GB);
        assert_eq!(r.paths().sample().unwrap().used, GB / 2);
    }

    #[test]
    fn unlimited_cgroup_falls_back_to_meminfo() {
        let r = Root::new();
        r.meminfo(8 * 1024 * 1024, 2 * 1024 * 1024);
        r.write("sys/fs/cgroup/memory.max", "max\n");
        r.write("sys/fs/cgroup/memory.current", "123\n");
        let s = r.paths().sample().unwrap();
        assert_eq!(s.source, Source::Meminfo);
        assert_eq!(s.used, 6 * GB);
    }

    #[test]
    fn cgroup_v1_fallback() {
        let r = Root::new();
        r.meminfo(8 * 1024 * 1024, 6 * 1024 * 1024);
        r.write("proc/self/cgroup", "4:memory:/svc\n0::/\n");
        r.write(
            "sys/fs/cgroup/memory/svc/memory.usage_in_bytes",
            &format!("{}\n", GB),
        );
        r.write(
            "sys/fs/cgroup/memory/svc/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        r.write(
            "sys/fs/cgroup/memory/svc/memory.stat",
            &format!(
                "hierarchical_memory_limit {}\ntotal_inactive_file {}\n",
                2 * GB,
                GB / 4
            ),
        );
        assert_eq!(r.paths().memory_limit().unwrap(), 2 * GB);
        let s = r.paths().sample().unwrap();
        assert_eq!(
            (s.source, s.limit, s.used),
            (Source::Cgroup, 2 * GB, GB - GB / 4)
        );
        // No limit anywhere: meminfo decides.
        r.write(
            "sys/fs/cgroup/memory/svc/memory.stat",
            "total_inactive_file 0\n",
        );
        assert_eq!(r.paths().sample().unwrap().source, Source::Meminfo);
    }

    #[test]
    fn missing_meminfo_is_an_error() {
        let r = Root::new();
        assert!(r.paths().sample().is_err());
        assert!(r.paths().memory_limit().is_err());
    }

    fn sample(ratio: f64, psi: Option<f64>, events: Option<Events>) -> Sample {
        Sample {
            used: (ratio * 1000.0) as u64,
            limit: 1000,
            available: 0,
            psi_some_avg10: psi,
            psi_full_avg10: None,
            source: Source::Cgroup,
            events,
        }
    }

    #[test]
    fn levels_with_hysteresis() {
        let mut t = Tracker::new(thresholds());
        assert_eq!(t.observe(sample(0.50, None, None)).level, Level::Normal);
        assert_eq!(t.observe(sample(0.81, None, None)).level, Level::Moderate);
        // Within the hysteresis band: stays moderate.
        assert_eq!(t.observe(sample(0.78, None, None)).level, Level::Moderate);
        assert_eq!(t.observe(sample(0.76, None, None)).level, Level::Moderate);
        assert_eq!(t.observe(sample(0.74, None, None)).level, Level::Normal);
        assert_eq!(t.observe(sample(0.96, None, None)).level, Level::Critical);
        assert_eq!(t.observe(sample(0.91, None, None)).level, Level::Critical);
        assert_eq!(t.observe(sample(0.85, None, None)).level, Level::Moderate);
        assert_eq!(t.observe(sample(0.10, None, None)).level, Level::Normal);
    }

    #[test]
    fn psi_and_events_raise_the_level() {
        let mut t = Tracker::new(thresholds());
        assert_eq!(
            t.observe(sample(0.1, Some(12.0), None)).level,
            Level::Moderate
        );
        assert_eq!(
            t.observe(sample(0.1, Some(6.0), None)).level,
            Level::Moderate
        );
        assert_eq!(t.observe(sample(0.1, Some(4.0), None)).level, Level::Normal);
        assert_eq!(
            t.observe(sample(0.1, Some(45.0), None)).level,
            Level::Critical
        );
        let mut t = Tracker::new(thresholds());
        let ev = |high, max| {
            Some(Events {
                high,
                max,
                oom_kill: 0,
            })
        };
        // First reading: a baseline, old counts are not news.
        assert_eq!(t.observe(sample(0.1, None, ev(5, 1))).level, Level::Normal);
        let r = t.observe(sample(0.1, None, ev(6, 1)));
        assert_eq!((r.level, r.new_events.high), (Level::Moderate, 1));
        assert_eq!(
            t.observe(sample(0.1, None, ev(6, 2))).level,
            Level::Critical
        );
        assert_eq!(t.observe(sample(0.1, None, ev(6, 2))).level, Level::Normal);
    }

    #[test]
    fn thresholds_are_validated() {
        assert!(Thresholds::new(0.9, 0.8, 0.05, 10.0, 40.0).is_err());
        assert!(Thresholds::new(0.0, 0.8, 0.0, 10.0, 40.0).is_err());
        assert!(Thresholds::new(0.8, 1.5, 0.05, 10.0, 40.0).is_err());
        assert!(Thresholds::new(0.8, 0.95, 0.9, 10.0, 40.0).is_err());
        assert!(Thresholds::new(0.8, 0.95, -0.1, 10.0, 40.0).is_err());
        assert!(Thresholds::new(0.8, 0.95, 0.05, 50.0, 40.0).is_err());
        assert!(Thresholds::new(0.8, 0.95, 0.05, 10.0, 400.0).is_err());
        assert!(Thresholds::new(0.8, f64::NAN, 0.05, 10.0, 40.0).is_err());
    }

    #[test]
    fn reads_this_machine() {
        // The real files: whatever they say, they must parse.
        if Path::new("/proc/meminfo").exists() {
            let p = Paths::new("/");
            let s = p.sample().unwrap();
            assert!(s.limit > 0 && s.used <= s.limit.max(s.used));
            assert!(p.memory_limit().unwrap() > 0);
        }
    }
}
