"""revenge._core.MemoryPressure / memory_limit_bytes against fake /proc and /sys trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from revenge._core import MemoryPressure, TranscodeCache, memory_limit_bytes

GB = 1 << 30
CG = "sys/fs/cgroup"


class FakeRoot:
    """A folder imitating the files MemoryPressure reads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.meminfo(total_gb=16, available_gb=12)

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def meminfo(self, *, total_gb: float, available_gb: float) -> None:
        total_kb, avail_kb = int(total_gb * GB / 1024), int(available_gb * GB / 1024)
        self.write(
            "proc/meminfo",
            f"MemTotal:       {total_kb} kB\nMemFree:  1 kB\nMemAvailable:   {avail_kb} kB\n",
        )

    def cgroup(self, *, limit: int | None, current: int, inactive_file: int = 0) -> None:
        self.write("proc/self/cgroup", "0::/revenge.slice\n")
        self.write(f"{CG}/memory.max", "max\n")
        group = f"{CG}/revenge.slice"
        self.write(f"{group}/memory.max", f"{limit}\n" if limit is not None else "max\n")
        self.write(f"{group}/memory.current", f"{current}\n")
        self.write(f"{group}/memory.stat", f"anon 0\ninactive_file {inactive_file}\n")

    def events(self, *, high: int = 0, max_: int = 0, oom_kill: int = 0) -> None:
        self.write(
            f"{CG}/revenge.slice/memory.events",
            f"low 0\nhigh {high}\nmax {max_}\noom {oom_kill}\noom_kill {oom_kill}\n",
        )

    def psi(self, some: float, full: float = 0.0) -> None:
        self.write(
            "proc/pressure/memory",
            f"some avg10={some:.2f} avg60=0.00 avg300=0.00 total=1\n"
            f"full avg10={full:.2f} avg60=0.00 avg300=0.00 total=1\n",
        )


@pytest.fixture
def fake(tmp_path: Path) -> FakeRoot:
    return FakeRoot(tmp_path)


def test_meminfo_only(fake: FakeRoot) -> None:
    reading = MemoryPressure(root=str(fake.root)).read()
    assert reading.source == "meminfo"
    assert reading.limit_bytes == 16 * GB
    assert reading.used_bytes == 4 * GB
    assert reading.available_bytes == 12 * GB
    assert reading.ratio == pytest.approx(0.25)
    assert reading.level == "normal"
    assert reading.psi_some_avg10 is None
    assert memory_limit_bytes(str(fake.root)) == 16 * GB


def test_cgroup_limit_and_working_set(fake: FakeRoot) -> None:
    fake.cgroup(limit=4 * GB, current=3 * GB, inactive_file=GB)
    fake.psi(1.5, 0.5)
    reading = MemoryPressure(root=str(fake.root)).read()
    assert reading.source == "cgroup"
    assert (reading.limit_bytes, reading.used_bytes) == (4 * GB, 2 * GB)
    assert reading.psi_some_avg10 == pytest.approx(1.5)
    assert reading.psi_full_avg10 == pytest.approx(0.5)
    assert memory_limit_bytes(str(fake.root)) == 4 * GB


def test_levels_follow_usage_with_hysteresis(fake: FakeRoot) -> None:
    pressure = MemoryPressure(root=str(fake.root), moderate=0.8, critical=0.95, hysteresis=0.05)
    assert pressure.level == "normal"
    steps = [
        (0.50, "normal"),
        (0.82, "moderate"),
        (0.77, "moderate"),  # inside the band: no flapping
        (0.74, "normal"),
        (0.96, "critical"),
        (0.91, "critical"),
        (0.86, "moderate"),
        (0.10, "normal"),
    ]
    for ratio, expected in steps:
        fake.cgroup(limit=10 * GB, current=int(ratio * 10 * GB))
        assert pressure.read().level == expected, ratio
        assert pressure.level == expected


def test_psi_raises_the_level(fake: FakeRoot) -> None:
    pressure = MemoryPressure(root=str(fake.root), psi_moderate=10.0, psi_critical=40.0)
    fake.psi(15.0)
    assert pressure.read().level == "moderate"
    fake.psi(50.0)
    assert pressure.read().level == "critical"
    fake.psi(0.0)
    assert pressure.read().level == "normal"


def test_memory_events_since_the_last_reading(fake: FakeRoot) -> None:
    fake.cgroup(limit=10 * GB, current=GB)
    fake.events(high=4, max_=1)
    pressure = MemoryPressure(root=str(fake.root))
    first = pressure.read()
    assert (first.level, first.high_events, first.max_events) == ("normal", 0, 0)
    fake.events(high=5, max_=1)
    second = pressure.read()
    assert (second.level, second.high_events) == ("moderate", 1)
    fake.events(high=5, max_=1, oom_kill=1)
    third = pressure.read()
    assert (third.level, third.oom_kill_events) == ("critical", 1)
    assert pressure.read().level == "normal"


def test_a_pressure_reading_drives_the_transcode_cache(fake: FakeRoot) -> None:
    cache = TranscodeCache(budget_bytes=1 << 20)
    for i in range(8):
        cache.insert(f"s{i}", bytes(100_000))
    pressure = MemoryPressure(root=str(fake.root))
    fake.cgroup(limit=10 * GB, current=9 * GB)
    evicted = cache.set_pressure(pressure.read().level)
    assert evicted > 0
    assert cache.stats()["bytes"] <= cache.effective_budget_bytes == 1 << 19


def test_this_machine_parses() -> None:
    reading = MemoryPressure().read()
    assert reading.limit_bytes > 0
    assert reading.level in ("normal", "moderate", "critical")
    assert memory_limit_bytes() > 0


def test_missing_meminfo_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        MemoryPressure(root=str(tmp_path)).read()
    with pytest.raises(OSError):
        memory_limit_bytes(str(tmp_path))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"root": "/definitely/not/here"}, ValueError),
        ({"root": 5}, TypeError),
        ({"moderate": 0.9, "critical": 0.8}, ValueError),
        ({"moderate": 0.0}, ValueError),
        ({"critical": 1.5}, ValueError),
        ({"hysteresis": 0.9}, ValueError),
        ({"hysteresis": -0.1}, ValueError),
        ({"psi_moderate": 50.0, "psi_critical": 40.0}, ValueError),
        ({"psi_critical": 400.0}, ValueError),
        ({"moderate": float("nan")}, ValueError),
        ({"moderate": "high"}, TypeError),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        MemoryPressure(**kwargs)  # type: ignore[arg-type]
