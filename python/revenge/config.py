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
from typing import Annotated, Any, Literal

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
    # A docstring under a field is its description: docs/configuration.md is built from them.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ServerSettings(_Section):
    """The HTTP server (Granian) and where Revenge keeps its state."""

    host: str = "127.0.0.1"
    """Address to listen on; `0.0.0.0` or `::` for every interface (behind a proxy keep loopback)."""
    port: int = Field(8096, ge=0, le=65535)
    """TCP port to listen on."""
    workers: int = Field(1, ge=1, le=256)
    """Granian worker processes; each has its own caches and database pool."""
    data_dir: Path = Path("~/.local/share/revenge")
    """The data folder: the embedded PostgreSQL (`postgres/`), metrics files, backups."""
    max_body_bytes: int = Field(1 << 20, ge=1024)
    """Largest request body accepted; a longer one is refused with 413."""
    body_timeout: Duration = Field(30.0, gt=0)
    """The whole request body must arrive within this (Granian times the headers only)."""
    backpressure: int = Field(1024, ge=16)
    """Requests one worker runs at once; past it Granian stops accepting (the backlog waits)."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Networks (CIDR) of reverse proxies whose `X-Forwarded-For`/`-Proto` are believed."""

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser()


class DatabaseSettings(_Section):
    """PostgreSQL (warm tier): the connection pool of each process."""

    url: SecretStr = SecretStr("")
    """`postgresql://` URL; empty: `revenge serve` runs an embedded PostgreSQL in `server.data_dir`."""
    min_conns: int = Field(2, ge=1)
    """Connections each pool keeps open, also when idle."""
    max_conns: int = Field(50, ge=1)
    """Most connections one pool opens under load."""
    idle_timeout: Duration = 300.0
    """A connection above `min_conns` idle this long is closed."""
    max_wait: Duration = 2.0
    """Longest wait for a pooled connection; past it the request gets 503 with `Retry-After`."""
    health_check: Duration = 30.0
    """How often the pool checks that the server still answers."""
    scale_up_threshold: float = Field(0.8, gt=0, le=1)
    """Share of the pool in use above which the pool grows."""
    scale_down_threshold: float = Field(0.2, ge=0, lt=1)
    """Share of the pool in use below which the pool shrinks towards `min_conns`."""
    scale_check_interval: Duration = 5.0
    """How often the pool's use is measured for scaling."""


class CacheSettings(_Section):
    """Redis (warm, optional): the shared second-level cache and cross-process messages."""

    url: SecretStr = SecretStr("")
    """`redis://` URL; empty: in-process caches only. Configured but down: degraded, never fatal."""
    pool_size: int = Field(10, ge=1)
    """Most Redis connections per process."""
    min_idle: int = Field(2, ge=0)
    """Redis connections kept open when idle."""


class LazyInitSettings(_Section):
    """``true``: the service is cold (built on first use); ``false``: built at start-up."""

    transcoder: bool = True
    """The transcoder client (ffmpeg/ffprobe)."""
    metadata_providers: bool = True
    """Remote metadata providers."""
    search: bool = True
    """The search indexer (Typesense or PostgreSQL full-text search)."""
    email: bool = True
    """The e-mail sender (SMTP)."""
    oidc: bool = True
    """OpenID Connect single sign-on."""
    scanner: bool = True
    """The library scanner."""


class OffloadSettings(_Section):
    """When idle cold services are closed and their memory given back."""

    idle_ttl: Duration = 600.0
    """A cold service unused this long is offloaded; the next caller builds it again."""
    sweep_interval: Duration = 30.0
    """How often idle cold services are looked for."""


class MemorySettings(_Section):
    """Memory budgets and the pressure levels at which caches shrink."""

    transcode_cache_percent: float = Field(25, gt=0, le=90)
    """Share of the memory limit the transcode segment cache may hold (split over workers)."""
    session_cache_max_mb: int = Field(100, ge=1)
    """Byte budget of each worker's session cache."""
    http_api_mb: int = Field(50, ge=1)
    """Budget of the HTTP layer, in the memory accounting."""
    database_pool_mb: int = Field(50, ge=1)
    """Budget of the database pool, in the memory accounting."""
    workers_mb: int = Field(100, ge=1)
    """Budget of background job workers, in the memory accounting."""
    misc_mb: int = Field(200, ge=1)
    """Budget of everything else, in the memory accounting."""
    pressure_moderate: float = Field(0.80, gt=0, lt=1)
    """Share of the memory limit in use at which caches start shedding (moderate pressure)."""
    pressure_critical: float = Field(0.95, gt=0, le=1)
    """Share of the memory limit in use at which caches drop all they can (critical pressure)."""
    pressure_interval: Duration = 5.0
    """How often memory use (cgroup, PSI) is read."""
    pressure_root: Path = Path("/")
    """Where ``proc/`` and ``sys/fs/cgroup/`` are read from: a host view mounted elsewhere,
    or a folder of test files that drives the monitor through its levels."""


class HealthSettings(_Section):
    """The periodic health checks behind `/health` and `/health/ready`."""

    interval: Duration = 30.0
    """How often every service's health check runs."""
    timeout: Duration = 5.0
    """A health check (and `revenge health`) slower than this counts as failed."""
    public: bool = False
    """``true``: the detailed ``/health`` answers anyone (``/health/live`` and ``/ready`` always do)."""


class MetricsSettings(_Section):
    """The Prometheus endpoint `GET /metrics`."""

    public: bool = False
    """``true``: ``/metrics`` answers anyone; else an administrator or ``scrape_token``."""
    scrape_token: SecretStr = SecretStr("")
    """Sent by a scraper as ``Authorization: Bearer <token>``; empty: no token is accepted."""


class AuthSettings(_Section):
    """Sessions, API keys and password hashing."""

    session_ttl: Duration = 30 * 86400.0
    """A session ends this long after login at the latest."""
    session_cache_ttl: Duration = 60.0
    """How long a worker answers a session from memory; bounds how long a lost revocation matters."""
    session_idle_timeout: Duration = 7 * 86400.0
    """A session unused this long is refused."""
    bootstrap_admin_password: SecretStr = SecretStr("")
    """Used once: on first start with no users, an `admin` with this password is created."""
    cookie_name: str = "revenge_session"
    """Name of the HttpOnly session cookie set at login."""
    api_key_header: str = "X-Api-Key"
    """Request header that carries an API key."""
    argon2_time_cost: int = Field(3, ge=1)
    """argon2id passes over memory per password hash."""
    argon2_memory_kib: int = Field(65536, ge=8)
    """argon2id memory per password hash, in KiB."""
    argon2_parallelism: int = Field(4, ge=1)
    """argon2id lanes per password hash."""
    max_concurrent_hashes: int = Field(4, ge=1)
    """Password hashes one process runs at once; a login flood waits instead of exhausting memory."""
    login_delay: Duration = Field(1.0, gt=0)
    """First wait once an address (or account) has used its free login attempts; doubles per failure."""
    login_window: Duration = Field(900.0, gt=0)
    """Login counters forget after this long without an attempt."""


class JobsSettings(_Section):
    """The background job queue (jobs in PostgreSQL)."""

    in_process_worker: bool = True
    """Run a job worker inside each serving process (single-machine setups); else `revenge worker`."""
    concurrency: int = Field(10, ge=1)
    """Jobs one worker runs at once."""
    cleanup_schedule: str = "17 3 * * *"
    """Cron expression of the cleanup job (trims finished jobs and expired rows)."""
    keep_finished: Duration = 7 * 86400.0
    """Finished jobs older than this are deleted by the cleanup job."""
    stalled_after: Duration = 300.0
    """A running job without a heartbeat this long is taken to be dead and run again."""


class SearchSettings(_Section):
    """Search: Typesense when configured, else PostgreSQL full-text search (also the fallback)."""

    typesense_url: str = ""
    """Typesense server URL; empty: PostgreSQL full-text search."""
    typesense_api_key: SecretStr = SecretStr("")
    """Typesense API key."""


class ModulesSettings(_Section):
    """Which feature modules the application installs besides the built-in list."""

    extra: list[str] = Field(default_factory=list)
    """Import paths of modules installed after the built-in list (third-party features)."""


class BackupSettings(_Section):
    """Scheduled backups of the database (the ``backup`` job; see docs/operating/backups.md)."""

    schedule: str = "30 4 * * *"
    """Cron expression at which a backup is taken (5 fields, or 6 with seconds last); empty: never."""
    keep: int = Field(7, ge=1)
    """How many scheduled backups to keep; older ones in the folder are deleted after a new one."""
    folder: str = ""
    """Where scheduled backups go; empty: `<server.data_dir>/backups`."""


class PlaybackSettings(_Section):
    """Playback sessions, signed media URLs and the transcoder's working folder."""

    url_secret: SecretStr = SecretStr("")
    """HMAC key of signed media URLs (32+ characters); empty: one is made and kept in the database."""
    url_ttl: Duration = Field(6 * 3600.0, ge=60)
    """How long a signed media URL (playlist, segment, file, subtitle) stays valid."""
    transcode_dir: str = ""
    """Working folder of ffmpeg's segments; empty: `<server.data_dir>/transcode`. Emptied at start."""
    transcode_disk_max: int = Field(2 << 30, ge=16 << 20)
    """Most bytes of segments on disk at once (all sessions); ffmpeg is paused past it."""
    segment_length: float = Field(6.0, ge=2.0, le=30.0)
    """Seconds of a regular HLS segment (a transcode starts with shorter ones)."""
    max_ahead: int = Field(6, ge=2, le=100)
    """Segments ffmpeg may run ahead of the client before it is paused."""
    idle_timeout: Duration = Field(120.0, ge=5.0)
    """A session without requests or heartbeats this long loses its ffmpeg and cached segments."""
    session_ttl: Duration = Field(24 * 3600.0, ge=60.0)
    """A playback session (and its URLs) is forgotten this long after it was made."""
    max_transcodes: int = Field(4, ge=1)
    """ffmpeg runs at once in one process; past it new transcodes get 503 with Retry-After."""
    max_transcodes_per_user: int = Field(2, ge=1)
    """ffmpeg runs of one user at once; past it 429 with Retry-After."""
    max_sessions_per_user: int = Field(20, ge=1)
    """Open playback sessions of one user; past it 429 (the oldest idle ones end first)."""


class LibrarySettings(_Section):
    """The library folder watcher (``modules/library/watch.py``)."""

    watch: bool = False
    """Watch library roots (inotify) and scan a changed folder within about a second; one process of the cluster watches. Off: only scheduled and requested scans."""
    watch_debounce: Duration = Field(0.3, gt=0, le=60)
    """Quiet time after a change before its folder is scanned (a copy in progress settles first)."""
    watch_fallback_interval: Duration = Field(900.0, ge=1)
    """How often every library is rescanned while the kernel's inotify watch limit stops the watcher."""


class MetadataSettings(_Section):
    """Remote metadata providers (``modules/metadata``): off until one is configured.

    They only fill fields that local sources (NFO, embedded tags, the file name) left
    empty and that nobody locked; they run as background jobs, never on a request.
    """

    providers: list[str] = Field(default_factory=lambda: ["tmdb"])
    """Remote providers asked, in this order; each one is on only once its own keys are set (TMDb: `tmdb_api_key`)."""
    language: str = Field("en-US", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    """Language asked of the providers (ISO 639-1, optionally `-` and an ISO 3166-1 region)."""
    refresh_after: Duration = Field(30 * 86400.0, ge=3600.0)
    """An item is asked about again this long after its last remote look-up."""
    batch: int = Field(200, ge=1, le=10000)
    """Items queued for a look-up by each run of the scheduled `metadata_due` job (each minute)."""
    tmdb_api_key: SecretStr = SecretStr("")
    """TMDb v3 API key; empty: TMDb is off."""
    tmdb_url: str = "https://api.themoviedb.org/3"
    """TMDb v3 API base URL (tests point it at a local server)."""
    tmdb_timeout: Duration = Field(10.0, gt=0, le=300)
    """Bound on each TMDb call (connect, each read, and the whole call with its retries)."""
    tmdb_rate_limit: float = Field(40.0, gt=0, le=50)
    """Requests per second to TMDb from one process (TMDb publishes about 50 per second per IP)."""
    tmdb_cache_ttl: Duration = Field(86400.0, ge=0)
    """How long a TMDb answer without a `Cache-Control: max-age` stays cached in PostgreSQL."""
    image_max_bytes: int = Field(20 << 20, ge=1 << 16, le=64 << 20)
    """Largest remote image downloaded by `images_process`; a bigger one is refused."""


class EmailSettings(_Section):
    """Outgoing e-mail (SMTP): password resets, invitations, notices. Off while `host` is empty."""

    host: str = ""
    """SMTP server; empty: Revenge sends no e-mail."""
    port: int = Field(587, ge=1, le=65535)
    """SMTP port: 587 with `starttls`, 465 with `tls`, 25 or a local relay's with `none`."""
    security: Literal["starttls", "tls", "none"] = "starttls"
    """`starttls`: upgrade the connection (required); `tls`: TLS from the first byte; `none`: plain (a local relay only)."""
    username: str = ""
    """SMTP login; empty: no authentication."""
    password: SecretStr = SecretStr("")
    """SMTP password."""
    sender: str = ""
    """The From header, e.g. `Revenge <revenge@example.org>`; empty: `revenge@localhost`."""
    timeout: Duration = Field(30.0, gt=0)
    """Bound on connecting and on each SMTP exchange; a server slower than this counts as down."""
    ca_file: str = ""
    """PEM file of the CA(s) that sign the SMTP server's certificate; empty: the system's CAs."""
    base_url: str = ""
    """The server's address as users reach it, e.g. `https://media.example.org`: the start of the links in password-reset and invitation e-mails; empty: the links are left out (the token is still given)."""
    alert_after: int = Field(3, ge=0, le=1000)
    """Failed jobs of one kind in a row (after their retries) before the administrators are e-mailed, once per streak; 0: never."""


class OidcProvider(_Section):
    """One OpenID provider users may sign in with (an item of ``oidc.providers``)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    """Short name in URLs (`/api/v1/oidc/<name>/login`): lower-case letters, digits, `-`, `_`."""
    display_name: str = ""
    """What the sign-in button says (`Sign in with <display_name>`); empty: the name."""
    issuer: str = Field(pattern=r"^https?://[^\s]+$", max_length=512)
    """The issuer URL; its `/.well-known/openid-configuration` is read on first use."""
    client_id: str = Field(min_length=1, max_length=512)
    """The client id this server is registered under at the provider."""
    client_secret: SecretStr = SecretStr("")
    """The client secret (sent with HTTP Basic to the token endpoint; never logged)."""
    scopes: list[str] = ["openid", "email", "profile"]
    """Scopes asked for; `openid` is always added."""
    redirect_uri: str = Field("", max_length=1024)
    """The callback registered at the provider; empty: `<oidc.public_url>/api/v1/oidc/<name>/callback`."""
    admin_claim: str = ""
    """Claim that makes an administrator (e.g. `groups`); empty: the provider never grants admin."""
    admin_value: str = "admin"
    """Value of `admin_claim` (equal, or one item of a list) that means administrator."""
    link_verified_email: bool = False
    """Allow signing in to an existing account whose e-mail the provider says is verified (`email_verified: true`); off: a new identity makes a new account."""


class OidcSettings(_Section):
    """Single sign-on with OpenID Connect providers (authorization code flow with PKCE). Off while `providers` is empty."""

    providers: list[OidcProvider] = []
    """The providers, e.g. `REVENGE_OIDC__PROVIDERS='[{"name": "corp", "issuer": "https://id.example.org", "client_id": "revenge", "client_secret": "..."}]'`."""
    public_url: str = Field("", pattern=r"^(https?://[^\s/]+(/[^\s]*)?)?$", max_length=512)
    """This server's public base URL (`https://media.example.org`), from which each callback is built; never taken from a request."""
    timeout: Duration = Field(10.0, gt=0)
    """Bound on each call to a provider (connect, and the whole answer); slower counts as down."""
    flow_ttl: Duration = Field(600.0, gt=0)
    """How long a started sign-in may take before its state expires."""
    max_document_bytes: int = Field(524288, ge=1024)
    """Largest discovery document, key set or token answer accepted from a provider."""
    cache_ttl: Duration = Field(3600.0, ge=0)
    """Lifetime of a discovery document or key set whose answer says none (`Cache-Control: max-age` wins, up to a day)."""


class LogSettings(_Section):
    """Log lines on stderr: one per request (at `info`), job and scan lines, warnings and errors."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level written; `warning` drops the per-request access lines."""
    format: Literal["auto", "json", "text"] = "auto"
    """`json`: one JSON object per line; `text`: readable `key=value` lines; `auto`: text on a terminal, else JSON."""


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
    backup: BackupSettings = BackupSettings()
    playback: PlaybackSettings = PlaybackSettings()
    library: LibrarySettings = LibrarySettings()
    metadata: MetadataSettings = MetadataSettings()
    log: LogSettings = LogSettings()
    email: EmailSettings = EmailSettings()
    oidc: OidcSettings = OidcSettings()

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
    names = [provider.name for provider in settings.oidc.providers]
    if len(set(names)) != len(names):
        raise ConfigError(f"oidc.providers: each name must be unique (got {names})")
    for provider in settings.oidc.providers:
        if not provider.redirect_uri and not settings.oidc.public_url:
            raise ConfigError(
                f"oidc.providers {provider.name!r}: set oidc.public_url (or the provider's "
                "redirect_uri): the callback URL is never taken from a request"
            )
