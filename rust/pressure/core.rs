//! The interpreter-free core of `pressure` (see the module doc in `mod.rs`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Memory-pressure level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Normal,
    Moderate,
    Critical,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "normal" => Some(Level::Normal),
            "moderate" => Some(Level::Moderate),
            "critical" => Some(Level::Critical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Moderate => "moderate",
            Level::Critical => "critical",
        }
    }
}

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
        // Leaving `moderate` needs PSI below psi_moderate - 100 * hysteresis:
        // at or below zero no reading could ever leave it.
        if psi_moderate <= 100.0 * hysteresis {
            return Err(format!(
                "psi_moderate ({psi_moderate}) must exceed 100 * hysteresis ({}), or the \
                 moderate level could never be left",
                100.0 * hysteresis
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
    /// `used / limit`. A limit of zero (`memory.max` = 0: nothing may be
    /// used) reads as full, 1.0, which is critical whatever the thresholds.
    pub fn ratio(&self) -> f64 {
        if self.limit == 0 {
            return 1.0;
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
    let psi_margin = margin * 100.0;
    // No PSI (an old kernel, PSI disabled) is no signal, not a reading of 0.
    let psi_at = |threshold: f64| {
        s.psi_some_avg10
            .is_some_and(|p| p >= threshold - psi_margin)
    };
    if ratio >= t.critical - margin || psi_at(t.psi_critical) || new.max > 0 || new.oom_kill > 0 {
        Level::Critical
    } else if ratio >= t.moderate - margin || psi_at(t.psi_moderate) || new.high > 0 {
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

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
