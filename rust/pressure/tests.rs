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

// ---------------------------------------------------------------- issue 18

#[test]
fn psi_thresholds_that_would_latch_moderate_are_refused() {
    // Leaving moderate needs PSI below psi_moderate - 100 * hysteresis: with
    // 2.0 - 5.0 < 0 no reading could ever leave it.
    assert!(Thresholds::new(0.8, 0.95, 0.05, 2.0, 40.0).is_err());
    assert!(Thresholds::new(0.8, 0.95, 0.05, 5.0, 40.0).is_err());
    assert!(Thresholds::new(0.8, 0.95, 0.05, 5.5, 40.0).is_ok());
}

#[test]
fn missing_psi_is_no_signal() {
    let mut t = Tracker::new(Thresholds::new(0.8, 0.95, 0.05, 10.0, 40.0).unwrap());
    assert_eq!(t.observe(sample(0.96, None, None)).level, Level::Critical);
    assert_eq!(t.observe(sample(0.10, None, None)).level, Level::Normal);
}

#[test]
fn a_zero_memory_max_is_critical() {
    let r = Root::new();
    r.meminfo(8 * 1024 * 1024, 6 * 1024 * 1024);
    r.write("sys/fs/cgroup/memory.max", "0\n");
    r.write("sys/fs/cgroup/memory.current", "4096\n");
    let s = r.paths().sample().unwrap();
    assert_eq!((s.source, s.limit), (Source::Cgroup, 0));
    let mut t = Tracker::new(thresholds());
    assert_eq!(t.observe(s).level, Level::Critical);
}
