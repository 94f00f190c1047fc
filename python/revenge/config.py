"""Settings: built-in defaults < YAML file < ``REVENGE_<SECTION>__<KEY>`` environment.

The YAML file is ``$REVENGE_CONFIG`` when set, else the packaged
``offloading.yaml`` (also reachable as ``configs/offloading.yaml`` in a
checkout). Every key is read by something; unknown keys and bad values fail
with a :class:`ConfigError` that names the key, the value and what was expected.

>>> s = load_settings(env={"REVENGE_DATABASE__MIN_CONNS": "3"})
>>> s.database.min_conns, s.database.idle_timeout
(3, 300.0)
>>> parse_duration("500ms"), parse_duration("1h")
(0.5, 3600.0)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

ENV_PREFIX = "REVENGE_"
CONFIG_ENV = "REVENGE_CONFIG"
# The test suite's and the benches' own variables (REVENGE_TEST_REDIS_URL, ...), not settings.
_NOT_SETTINGS = ("REVENGE_TEST_", "REVENGE_BENCH_")
DEFAULT_CONFIG_FILE = Path(__file__).with_name("offloading.yaml")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why."""


def parse_duration(value: object) -> float:
    """``"500ms" | "30s" | "5m" | "1h" | "2d" | 12 | 1.5`` -> seconds (bare numbers are seconds)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 30s, 5m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    else:
        raise ValueError("expected a duration such as 500ms, 30s, 5m or 1h")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8096, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=256)
    data_dir: Path = Path("~/.local/share/revenge")
    max_body_bytes: int = Field(1 << 20, ge=1024)
    body_timeout: Duration = Field(30.0, gt=0)
    """The whole request body must arrive within this (Granian times the headers only)."""
    backpressure: int = Field(1024, ge=16)
    """Requests one worker runs at once; past it Granian stops accepting (the backlog waits)."""
    trusted_proxies: list[str] = Field(default_factory=list)

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser()


class DatabaseSettings(_Section):
    url: SecretStr = SecretStr("")
    min_conns: int = Field(2, ge=1)
    max_conns: int = Field(50, ge=1)
    idle_timeout: Duration = 300.0
    max_wait: Duration = 2.0
    health_check: Duration = 30.0
    scale_up_threshold: float = Field(0.8, gt=0, le=1)
    scale_down_threshold: float = Field(0.2, ge=0, lt=1)
    scale_check_interval: Duration = 5.0


class CacheSettings(_Section):
    url: SecretStr = SecretStr("")
    pool_size: int = Field(10, ge=1)
    min_idle: int = Field(2, ge=0)


class LazyInitSettings(_Section):
    """``true``: the service is cold (built on first use); ``false``: built at start-up."""

    transcoder: bool = True
    metadata_providers: bool = True
    search: bool = True
    email: bool = True
    oidc: bool = True
    scanner: bool = True


class OffloadSettings(_Section):
    idle_ttl: Duration = 600.0
    sweep_interval: Duration = 30.0


class MemorySettings(_Section):
    transcode_cache_percent: float = Field(25, gt=0, le=90)
    session_cache_max_mb: int = Field(100, ge=1)
    http_api_mb: int = Field(50, ge=1)
    database_pool_mb: int = Field(50, ge=1)
    workers_mb: int = Field(100, ge=1)
    misc_mb: int = Field(200, ge=1)
    pressure_moderate: float = Field(0.80, gt=0, lt=1)
    pressure_critical: float = Field(0.95, gt=0, le=1)
    pressure_interval: Duration = 5.0


class HealthSettings(_Section):
    interval: Duration = 30.0
    timeout: Duration = 5.0
    public: bool = False
    """``true``: the detailed ``/health`` answers anyone (``/health/live`` and ``/ready`` always do)."""


class MetricsSettings(_Section):
    public: bool = False
    """``true``: ``/metrics`` answers anyone; else an administrator or ``scrape_token``."""
    scrape_token: SecretStr = SecretStr("")
    """Sent by a scraper as ``Authorization: Bearer <token>``; empty: no token is accepted."""


class AuthSettings(_Section):
    session_ttl: Duration = 30 * 86400.0
    session_cache_ttl: Duration = 60.0
    session_idle_timeout: Duration = 7 * 86400.0
    bootstrap_admin_password: SecretStr = SecretStr("")
    cookie_name: str = "revenge_session"
    api_key_header: str = "X-Api-Key"
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_kib: int = Field(65536, ge=8)
    argon2_parallelism: int = Field(4, ge=1)
    max_concurrent_hashes: int = Field(4, ge=1)
    login_delay: Duration = Field(1.0, gt=0)
    """First wait once an address (or account) has used its free login attempts; doubles per failure."""
    login_window: Duration = Field(900.0, gt=0)
    """Login counters forget after this long without an attempt."""


class JobsSettings(_Section):
    in_process_worker: bool = True
    concurrency: int = Field(10, ge=1)
    cleanup_schedule: str = "17 3 * * *"
    keep_finished: Duration = 7 * 86400.0
    stalled_after: Duration = 300.0


class SearchSettings(_Section):
    typesense_url: str = ""
    typesense_api_key: SecretStr = SecretStr("")


class ModulesSettings(_Section):
    """``extra``: import paths of modules installed after the built-in list (third-party features)."""

    extra: list[str] = Field(default_factory=list)


class Settings(BaseSettings):
    """The whole configuration; sections mirror ``configs/offloading.yaml``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    cache: CacheSettings = CacheSettings()
    lazy_init: LazyInitSettings = LazyInitSettings()
    offload: OffloadSettings = OffloadSettings()
    memory: MemorySettings = MemorySettings()
    health: HealthSettings = HealthSettings()
    metrics: MetricsSettings = MetricsSettings()
    auth: AuthSettings = AuthSettings()
    jobs: JobsSettings = JobsSettings()
    search: SearchSettings = SearchSettings()
    modules: ModulesSettings = ModulesSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Sources earlier in the tuple win: explicit arguments, then env, then the file.
        return (init_settings, env_settings)

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as JSON-ready data, secrets shown as ``**********``."""
        return self.model_dump(mode="json")


def _field_names(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    names: dict[str, type[BaseModel] | None] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        names[name] = annotation if is_model else None  # type: ignore[assignment]
    return names


def _check_env_keys(env: Mapping[str, str]) -> None:
    """Pydantic ignores unknown variables; a typo in a REVENGE_ variable must not pass silently."""
    sections = _field_names(Settings)
    for var in env:
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV or var.startswith(_NOT_SETTINGS):
            continue
        parts = var[len(ENV_PREFIX) :].lower().split("__")
        section = sections.get(parts[0], ...)
        if section is ... or (
            section is not None and (len(parts) != 2 or parts[1] not in section.model_fields)
        ):
            raise ConfigError(
                f"{var}: unknown setting {'.'.join(parts)!r}; "
                "expected REVENGE_<SECTION>__<KEY> naming a key of configs/offloading.yaml"
            )


def _format_errors(error: ValidationError, origin: str) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        value = item.get("input")
        shown = (
            "**********" if any(s in key for s in ("url", "password", "key", "token")) else value
        )
        lines.append(f"{key} = {shown!r}: {item['msg']}")
    return f"invalid configuration ({origin}):\n  " + "\n  ".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


class _EnvSource(EnvSettingsSource):
    """The environment source, reading from a given mapping (tests pass their own)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = self._load_env_vars_from(env)

    def _load_env_vars_from(self, env: Mapping[str, str]) -> Mapping[str, str | None]:
        if self.case_sensitive:
            return dict(env)
        return {key.lower(): value for key, value in env.items()}


def load_settings(
    env: Mapping[str, str] | None = None, config_file: Path | None = None
) -> Settings:
    """Read the configuration, or raise :class:`ConfigError` saying what to fix."""
    environ: Mapping[str, str] = os.environ if env is None else env
    _check_env_keys(environ)
    path = config_file or Path(environ.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE)
    file_data = _read_yaml(path)

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (_EnvSource(settings_cls, environ), _YamlData(settings_cls, file_data))

    try:
        loaded = _Loaded()
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, f"{path} and REVENGE_* environment")) from None
    settings = Settings.model_construct(
        **{name: getattr(loaded, name) for name in Settings.model_fields}
    )
    _check_consistency(settings)
    return settings


class _YamlData(YamlConfigSettingsSource):
    """The YAML source over data already read, so read errors name the file once."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        self._data = data
        super().__init__(settings_cls, yaml_file=None)

    def _read_files(self, files: Any, deep_merge: bool = False) -> dict[str, Any]:
        return self._data


def _check_consistency(settings: Settings) -> None:
    db, mem = settings.database, settings.memory
    if db.min_conns > db.max_conns:
        raise ConfigError(
            f"database.min_conns = {db.min_conns} exceeds database.max_conns = {db.max_conns}"
        )
    if mem.pressure_moderate >= mem.pressure_critical:
        raise ConfigError(
            "memory.pressure_moderate must be below memory.pressure_critical "
            f"(got {mem.pressure_moderate} >= {mem.pressure_critical})"
        )
    if settings.cache.min_idle > settings.cache.pool_size:
        raise ConfigError(
            f"cache.min_idle = {settings.cache.min_idle} exceeds cache.pool_size = "
            f"{settings.cache.pool_size}"
        )
