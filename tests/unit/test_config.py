"""Settings: defaults < YAML file < REVENGE_* environment; bad values and unknown keys fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from revenge.config import DEFAULT_CONFIG_FILE, ConfigError, Settings, load_settings, parse_duration


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "revenge.yaml"
    path.write_text(text)
    return path


def test_packaged_file_matches_builtin_defaults() -> None:
    assert load_settings(env={}) == Settings()


def test_design_defaults() -> None:
    s = load_settings(env={})
    assert (s.database.min_conns, s.database.max_conns, s.database.idle_timeout) == (2, 50, 300.0)
    assert (s.cache.pool_size, s.cache.min_idle) == (10, 2)
    assert (s.memory.transcode_cache_percent, s.memory.session_cache_max_mb) == (25, 100)
    assert (s.health.interval, s.health.timeout) == (30.0, 5.0)
    assert (s.server.host, s.server.port, s.server.workers) == ("127.0.0.1", 8096, 1)
    assert s.lazy_init.transcoder and s.lazy_init.oidc


def test_file_overrides_defaults_and_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  min_conns: 4\n  max_conns: 8\nhealth:\n  interval: 1m\n")
    s = load_settings(env={"REVENGE_CONFIG": str(path)})
    assert (s.database.min_conns, s.database.max_conns, s.health.interval) == (4, 8, 60.0)
    assert s.database.idle_timeout == 300.0  # untouched keys keep their defaults

    s = load_settings(env={"REVENGE_CONFIG": str(path), "REVENGE_DATABASE__MIN_CONNS": "6"})
    assert (s.database.min_conns, s.database.max_conns) == (6, 8)


def test_env_key_with_underscores() -> None:
    s = load_settings(env={"REVENGE_MEMORY__TRANSCODE_CACHE_PERCENT": "10"})
    assert s.memory.transcode_cache_percent == 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("2d", 172800.0), (12, 12.0)],
)
def test_durations(text: str | int, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["5x", "", "-1s", "m", True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_bad_value_names_key_value_and_expectation() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={"REVENGE_DATABASE__MIN_CONNS": "abc"})
    message = str(err.value)
    assert "database.min_conns" in message and "'abc'" in message and "integer" in message


def test_unknown_file_key(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  min_conn: 3\n")
    with pytest.raises(ConfigError, match=r"database\.min_conn"):
        load_settings(env={"REVENGE_CONFIG": str(path)})


def test_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, "datbase:\n  min_conns: 3\n")
    with pytest.raises(ConfigError, match="datbase"):
        load_settings(env={"REVENGE_CONFIG": str(path)})


@pytest.mark.parametrize(
    "var", ["REVENGE_DATABASE__MIN_CONN", "REVENGE_NOPE__X", "REVENGE_DATABASE"]
)
def test_unknown_env_key(var: str) -> None:
    with pytest.raises(ConfigError, match=var):
        load_settings(env={var: "1"})


def test_unrelated_env_is_ignored() -> None:
    load_settings(env={"HOME": "/root", "REVENGE_CONFIG": str(DEFAULT_CONFIG_FILE)})


def test_the_test_suites_and_benches_variables_are_not_settings() -> None:
    """REVENGE_TEST_REDIS_URL (tests/conftest.py) must not stop ``import revenge.app``."""
    load_settings(
        env={"REVENGE_TEST_REDIS_URL": "redis://x/13", "REVENGE_BENCH_PG_ADMIN_URL": "postgresql:"}
    )


def test_cross_field_check() -> None:
    with pytest.raises(ConfigError, match="min_conns"):
        load_settings(env={"REVENGE_DATABASE__MIN_CONNS": "60"})


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(env={"REVENGE_CONFIG": str(tmp_path / "absent.yaml")})
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(env={"REVENGE_CONFIG": str(write(tmp_path, "a: [1"))})


def test_secrets_are_redacted() -> None:
    s = load_settings(env={"REVENGE_DATABASE__URL": "postgresql://u:hunter2@db/revenge"})
    assert s.database.url.get_secret_value().endswith("/revenge")
    assert "hunter2" not in str(s.redacted())
    with pytest.raises(ConfigError) as err:
        load_settings(
            env={
                "REVENGE_DATABASE__URL": "postgresql://u:hunter2@db/r",
                "REVENGE_DATABASE__MAX_CONNS": "x",
            }
        )
    assert "hunter2" not in str(err.value)
