"""Print the revenge._core comparison table.

    python benches/bench_core_report.py            # run benches/bench_core.py, then print
    python benches/bench_core_report.py --json F   # print from an existing pytest-benchmark JSON
    python benches/bench_core_report.py -k lazy    # other arguments go to pytest

Per group: median time per operation (the benchmark's median divided by
``extra_info["ops"]``), the ratio to the group's baseline
(``extra_info["baseline"]``), and the hit ratio where measured.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _fmt_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:9.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:9.2f} us"
    return f"{seconds * 1e9:9.1f} ns"


def _name(bench: dict[str, Any]) -> str:
    params = bench.get("params") or {}
    if "name" in params:
        return str(params["name"])
    return str(bench["name"]).removeprefix("test_")


def render(data: dict[str, Any]) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for bench in data["benchmarks"]:
        groups[bench.get("group") or "(no group)"].append(bench)
    lines: list[str] = []
    machine = data.get("machine_info", {})
    lines.append(
        f"revenge._core benchmarks - {machine.get('python_implementation', '')} "
        f"{machine.get('python_version', '')}, {machine.get('cpu', {}).get('brand_raw', '')}"
    )
    for group, benches in groups.items():
        base = next((b for b in benches if b.get("extra_info", {}).get("baseline")), None)
        base_op = (
            base["stats"]["median"] / base["extra_info"].get("ops", 1) if base is not None else None
        )
        lines.append("")
        lines.append(f"## {group}")
        has_hit = any("hit_ratio" in b.get("extra_info", {}) for b in benches)
        header = f"{'contender':<34} {'median/op':>12} {'vs baseline':>12}"
        if has_hit:
            header += f" {'hit ratio':>10} {'vs baseline':>12}"
        lines.append(header)
        base_hit = base.get("extra_info", {}).get("hit_ratio") if base else None
        for b in sorted(benches, key=lambda b: b["stats"]["median"]):
            info = b.get("extra_info", {})
            per_op = b["stats"]["median"] / info.get("ops", 1)
            ratio = f"{per_op / base_op:11.2f}x" if base_op else f"{'-':>12}"
            mark = " (baseline)" if info.get("baseline") else ""
            row = f"{_name(b) + mark:<34} {_fmt_time(per_op):>12} {ratio}"
            if has_hit:
                hit = info.get("hit_ratio")
                if hit is None:
                    row += f" {'-':>10} {'-':>12}"
                else:
                    delta = f"{(hit - base_hit) * 100:+10.2f} pt" if base_hit is not None else "-"
                    row += f" {hit * 100:9.2f}% {delta:>12}"
            lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--json", type=Path, help="read this pytest-benchmark JSON instead of running"
    )
    args, pytest_args = parser.parse_known_args(argv)
    path: Path | None = args.json
    if path is None:
        path = Path(tempfile.mkdtemp(prefix="revenge-bench-")) / "bench_core.json"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            str(HERE / "bench_core.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--benchmark-only",
            "--benchmark-disable-gc",
            f"--benchmark-json={path}",
            *pytest_args,
        ]
        rc = subprocess.call(cmd)
        if rc != 0:
            return rc
    print(render(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
