"""docs/configuration.md is the settings model, rendered: every key, and no drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from revenge.config import Settings
from revenge.config_docs import REGENERATE, render, undocumented

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_reference_matches_the_settings_model() -> None:
    assert DOC.read_text() == render(), (
        f"docs/configuration.md is out of date with python/revenge/config.py; "
        f"regenerate it with `{REGENERATE}` (or `python -m revenge.config_docs > "
        f"docs/configuration.md`) and commit it"
    )


def test_every_setting_has_a_description() -> None:
    assert undocumented() == [], (
        "settings without a description: add a docstring under each field in "
        f"python/revenge/config.py, then run `{REGENERATE}`"
    )


def test_every_key_and_environment_name_is_listed() -> None:
    text = render()
    for section, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type)
        assert f"## `{section}`" in text
        for key in model.model_fields:  # type: ignore[attr-defined]
            assert f"| `{key}` |" in text
            assert f"`REVENGE_{section.upper()}__{key.upper()}`" in text


def test_defaults_types_and_bounds_are_shown() -> None:
    rows = {
        line.split("|")[4].strip(): line
        for line in render().splitlines()
        if "REVENGE_" in line and line.startswith("| `")
    }
    assert "| duration | `5m` |" in rows["`REVENGE_DATABASE__IDLE_TIMEOUT`"]
    assert "| int (>= 0, <= 65535) | `8096` |" in rows["`REVENGE_SERVER__PORT`"]
    assert '| secret string | `""` |' in rows["`REVENGE_DATABASE__URL`"]
    assert "| list of str | `[]` |" in rows["`REVENGE_SERVER__TRUSTED_PROXIES`"]
    assert "| bool | `false` |" in rows["`REVENGE_METRICS__PUBLIC`"]


def test_the_command_prints_the_reference_without_a_valid_environment(tmp_path: Path) -> None:
    """`revenge config docs` needs no configuration: a bad REVENGE_ variable does not stop it."""
    env = {"REVENGE_NOT__A_KEY": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", "from revenge.cli import main; raise SystemExit(main())",
         "config", "docs"],
        capture_output=True, text=True, env={**env, "PYTHONPATH": ":".join(sys.path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == render()
