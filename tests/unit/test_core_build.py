"""The extension promises only what every interpreter that can load it keeps."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_an_abi3_build_does_not_declare_it_runs_without_the_gil() -> None:
    # A stable-ABI (abi3) build cannot load on a free-threaded interpreter
    # (3.13t), so "gil_used = false" would be a promise no test ever checks.
    features = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["maturin"]["features"]
    lib = (ROOT / "rust" / "lib.rs").read_text()
    assert any(f.startswith("pyo3/abi3") for f in features)
    assert not re.search(r"#\[pymodule\([^)]*gil_used\s*=\s*false", lib)
