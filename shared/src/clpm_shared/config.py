"""Settings of every CLPM service, read from the environment (and an optional ``.env``).

This is the only module that reads environment variables. Each concern has its own
``BaseSettings`` class with flat variable names as the seed documents spell them
(``POSTGRES_HOST``, ``INFLUXDB_URL``, ...); :class:`Settings` groups them. Services call
:func:`load_settings` once at start-up and pass the object (or a part of it) down.

An invalid value stops the service with one line per variable naming it and what is
allowed (:class:`SettingsError`); secrets are ``SecretStr`` and never appear in reprs or logs.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_ENV = SettingsConfigDict(
    env_file=".env",
    env_file_encoding="utf-8",
    extra="ignore",
    case_sensitive=False,
    validate_default=True,
)

_CRON_FIELD = r"(\*|\d{1,2}(-\d{1,2})?)(/\d{1,2})?(,(\*|\d{1,2}(-\d{1,2})?)(/\d{1,2})?)*"
_CRON_RE = re.compile(rf"^{_CRON_FIELD}( +({_CRON_FIELD}|[A-Za-z,*/-]+)){{4}}$")


class TimeSeriesBackend(StrEnum):
    """Where raw PV/SP/OP samples live."""

    INFLUXQL = "influxql"  # InfluxDB 1.x, or 2.x/3.x through the v1-compatible API
    FLUX = "flux"  # InfluxDB 2.x native API via influxdb-client
    EMBEDDED = "embedded"  # SQLite file, for the one-command local run


class CacheBackend(StrEnum):
    """Where the API gateway caches responses."""

    REDIS = "redis"
    MEMORY = "memory"


class AuthMode(StrEnum):
    """How the API gateway obtains the keys that sign bearer tokens."""

    OIDC = "oidc"  # Keycloak (or any OIDC provider): JWKS from OIDC_JWKS_URI or discovery
    LOCAL = "local"  # built-in issuer of the embedded run, loopback only


class Environment(StrEnum):
    """Deployment environment (NODE_ENV in the seed documents)."""

    PRODUCTION = "production"
    DEVELOPMENT = "development"
    TEST = "test"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


Port = Annotated[int, Field(ge=1, le=65535)]


class DatabaseSettings(BaseSettings):
    """Relational store: PostgreSQL in production, SQLite in the embedded run."""

    model_config = _ENV

    postgres_host: str = "localhost"
    postgres_port: Port = 5432
    postgres_db: str = "clpm"
    postgres_user: str = "clpm"
    postgres_password: SecretStr = SecretStr("clpm_pwd")
    database_url: SecretStr | None = Field(
        default=None,
        description="Full SQLAlchemy/libpq URL; when unset it is built from POSTGRES_*. "
        "postgresql:// is used with asyncpg; sqlite:///path with aiosqlite.",
    )
    db_pool_size: Annotated[int, Field(ge=1, le=200)] = 10
    db_statement_timeout_s: Annotated[float, Field(ge=0, le=86400)] = Field(
        default=60.0,
        description="PostgreSQL statement_timeout of every session (0: none): a statement "
        "running longer is cancelled (the request answers 503).",
    )
    db_lock_timeout_s: Annotated[float, Field(ge=0, le=86400)] = Field(
        default=10.0,
        description="PostgreSQL lock_timeout of every session (0: none): a statement waiting "
        "longer for a row or table lock fails instead of stalling behind a frozen holder.",
    )
    db_idle_in_transaction_timeout_s: Annotated[float, Field(ge=0, le=86400)] = Field(
        default=60.0,
        description="PostgreSQL idle_in_transaction_session_timeout (0: none): the server ends "
        "a session that keeps a transaction open without a statement this long, releasing its "
        "locks (a frozen or hung process). Keep it below AGG_LEASE_S and KPI_LEASE_S.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        scheme = value.get_secret_value().split(":", 1)[0]
        allowed = ("postgresql", "postgres", "postgresql+asyncpg", "sqlite", "sqlite+aiosqlite")
        if scheme not in allowed:
            raise ValueError(f"scheme must be one of {', '.join(allowed)}; got {scheme!r}")
        return value

    @property
    def async_url(self) -> str:
        """URL for SQLAlchemy's async engine (asyncpg or aiosqlite driver)."""
        if self.database_url is None:
            password = quote(self.postgres_password.get_secret_value(), safe="")
            user = quote(self.postgres_user, safe="")
            return (
                f"postgresql+asyncpg://{user}:{password}@{self.postgres_host}:"
                f"{self.postgres_port}/{self.postgres_db}"
            )
        url = self.database_url.get_secret_value()
        scheme, rest = url.split(":", 1)
        driver = {
            "postgresql": "postgresql+asyncpg",
            "postgres": "postgresql+asyncpg",
            "sqlite": "sqlite+aiosqlite",
        }.get(scheme, scheme)
        return f"{driver}:{rest}"

    @property
    def is_sqlite(self) -> bool:
        return self.async_url.startswith("sqlite")


class InfluxSettings(BaseSettings):
    """Time-series store of raw samples (seed: measurement control_loops, tags loop_id, Mode)."""

    model_config = _ENV

    timeseries_backend: TimeSeriesBackend = TimeSeriesBackend.INFLUXQL
    influxdb_url: str = "http://localhost:8086"
    influxdb_token: SecretStr = SecretStr("clpm-admin-token")
    influxdb_org: str = "clpm"
    influxdb_bucket: str = "clpm"
    influxdb_measurement: str = "control_loops"
    influxdb_username: str | None = None
    influxdb_password: SecretStr | None = SecretStr("adminpassword")
    influxdb_database: str | None = Field(
        default=None, description="InfluxQL database; defaults to INFLUXDB_BUCKET (DBRP mapping)."
    )
    influxdb_retention_policy: str | None = None
    influxdb_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    influxdb_max_retries: Annotated[int, Field(ge=0, le=20)] = 4
    influxdb_breaker_failures: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=5,
        description="Failed InfluxDB attempts in a row (all requests of a process together) "
        "after which requests fail at once (503 with Retry-After) instead of retrying.",
    )
    influxdb_breaker_open_s: Annotated[float, Field(gt=0, le=600)] = Field(
        default=5.0,
        description="Seconds requests fail at once once the breaker opened; then one request "
        "probes InfluxDB and closes it again if it answers.",
    )
    influxdb_http_client: Literal["aiohttp", "httpcore"] = Field(
        default="aiohttp",
        description="HTTP transport of the InfluxQL store's httpx client: 'aiohttp' parses "
        "responses in C (influxd sends MessagePack answers in 2 KB HTTP chunks, each a Python "
        "event for 'httpcore': a 10,000-loop poll's reads cost the client about a quarter "
        "less CPU); 'httpcore' is httpx's own.",
    )
    influxdb_answer_format: Literal["msgpack", "json"] = Field(
        default="msgpack",
        description="Format the InfluxQL store asks /query answers in: MessagePack costs "
        "influxd about a fifth less CPU than JSON to encode; an answer the server sends as JSON "
        "anyway is read as JSON.",
    )
    embedded_tsdb_path: Path = Path(".clpm/timeseries.db")
    embedded_retention_days: Annotated[float, Field(ge=0, le=36500)] = Field(
        default=30.0,
        description="Days of raw samples the embedded store keeps (0: all); the process that "
        "writes deletes older ones once an hour.",
    )

    @field_validator("influxdb_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("influxdb_measurement")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}", value):
            raise ValueError(
                "must be letters, digits, '_', '.', '-' (max 128), starting with a letter"
            )
        return value

    @property
    def database(self) -> str:
        return self.influxdb_database or self.influxdb_bucket


class CacheSettings(BaseSettings):
    model_config = _ENV

    cache_backend: CacheBackend = CacheBackend.REDIS
    redis_url: SecretStr = SecretStr("redis://localhost:6379/0")
    cache_ttl_realtime_s: Annotated[float, Field(gt=0, le=3600)] = 2.0
    cache_ttl_recent_s: Annotated[float, Field(gt=0, le=86400)] = 30.0
    cache_ttl_historical_s: Annotated[float, Field(gt=0, le=604800)] = 3600.0
    cache_near_ttl_s: Annotated[float, Field(ge=0, le=60)] = Field(
        default=1.0,
        description="Seconds a gateway process keeps a Redis answer in its own memory as well "
        "(0: off); changes made through another process show after at most this long.",
    )
    cache_stale_grace_s: Annotated[float, Field(ge=0, le=600)] = Field(
        default=6.0,
        description="Seconds past its TTL an answer is still served while one request per key "
        "recomputes it in the background (0: off); invalidation drops it at once.",
    )

    latest_values_cache: bool = Field(
        default=True,
        description="With CACHE_BACKEND=redis and the InfluxDB backends over InfluxQL, every "
        "write also keeps each loop's newest PV, SP, OP and Mode in Redis, and latest-value "
        "reads (/data/realtime) answer from there; loops not in Redis are read from InfluxDB.",
    )
    latest_values_ttl_s: Annotated[float, Field(ge=1, le=86400)] = Field(
        default=300.0,
        description="Seconds a loop's latest values stay in Redis after its last write; a "
        "loop written no longer is read from InfluxDB again.",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class AuthSettings(BaseSettings):
    """Bearer-token validation (Keycloak realm clpm, client clpm-api)."""

    model_config = _ENV

    auth_mode: AuthMode = AuthMode.OIDC
    oidc_issuer: str = "http://localhost:8081/realms/clpm"
    oidc_audience: str = "clpm-api"
    oidc_jwks_uri: str | None = "http://localhost:8081/realms/clpm/protocol/openid-connect/certs"
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    oidc_leeway_s: Annotated[int, Field(ge=0, le=300)] = 30
    oidc_jwks_cache_s: Annotated[int, Field(ge=1, le=86400)] = 600
    oidc_jwks_min_refresh_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=10.0,
        description="Least time between two JWKS fetches triggered by an unknown key id "
        "or after a failed fetch (rate limit against forged kid values).",
    )
    oidc_frontend_client_id: str = "clpm-frontend"
    local_issuer_key_path: Path = Path(".clpm/local-issuer-key.pem")
    local_realm_file: Path = Field(
        default=Path("deploy/keycloak/clpm-realm.json"),
        description="Realm export (users, passwords, roles, clients) that the local issuer "
        "serves in AUTH_MODE=local; the same file Keycloak imports.",
    )
    allow_non_loopback_local_auth: bool = False

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        allowed = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"}
        bad = [alg for alg in value if alg not in allowed]
        if bad or not value:
            raise ValueError(f"only asymmetric algorithms {sorted(allowed)} are allowed; got {bad}")
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        if not re.match(r"^https?://", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


class ApiSettings(BaseSettings):
    model_config = _ENV

    api_host: str = "127.0.0.1"
    api_port: Port = 8080
    api_prefix: str = "/api/v1"
    api_cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:5173"])
    api_max_raw_range_h: Annotated[float, Field(gt=0, le=24 * 366)] = 24.0
    api_max_limit: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000
    api_max_raw_buckets: Annotated[int, Field(ge=10, le=1_000_000)] = Field(
        default=20_000,
        description="Most buckets of one /data/aggregated answer computed from raw samples "
        "(intervals under a minute, or no aggregates stored); its range is also at most "
        "API_MAX_RAW_RANGE_H.",
    )
    api_max_minute_range_d: Annotated[float, Field(gt=0, le=3660)] = Field(
        default=62.0,
        description="Longest range (days) of /data/aggregated at minute intervals (agg_1m).",
    )
    api_max_hour_range_d: Annotated[float, Field(gt=0, le=36600)] = Field(
        default=3660.0,
        description="Longest range (days) of /data/aggregated at hourly intervals (agg_1h).",
    )
    api_rate_limit_per_min: Annotated[float, Field(ge=0, le=1_000_000)] = Field(
        default=600.0,
        description="Expensive requests (raw and aggregated data, CSV, clusters, diagnosis "
        "runs) per user and minute, per gateway process (0: no limit); more answer 429.",
    )
    api_rate_limit_burst: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=120,
        description="Expensive requests a user may make at once before the rate applies.",
    )
    api_default_limit: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000
    frontend_dist: Path | None = None
    diag_service_url: str = "http://localhost:8050"
    diag_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    api_max_body_bytes: Annotated[int, Field(ge=1024, le=1024**3)] = Field(
        default=1024 * 1024,
        description="Largest request body the gateway accepts (bytes); a larger one is "
        "refused with 413 before it is read, on every route and the local issuer (whose "
        "forms are capped at 16 KiB).",
    )
    api_max_upload_bytes: Annotated[int, Field(ge=1024, le=64 * 1024**3)] = Field(
        default=256 * 1024 * 1024,
        description="Largest request body of POST /loops/import (historian exports and their "
        "tag map, multipart); a larger one is refused with 413 before it is read.",
    )
    api_fast_cached_hits: bool = Field(
        default=True,
        description="Answer fresh in-process cache hits of /data/realtime and /data/aggregated "
        "without FastAPI's routing (same checks, same answer); false routes every request",
    )


class DiagnosticsSettings(BaseSettings):
    model_config = _ENV

    diag_host: str = "127.0.0.1"
    diag_port: Port = 8050
    diag_service_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the gateway and the workers present to the diagnostics "
        "service (which accepts nothing else); unset: CLPM_DATA_DIR/service-token, created "
        "on first use.",
    )
    diag_max_body_bytes: Annotated[int, Field(ge=1024, le=1024**3)] = Field(
        default=1024 * 1024,
        description="Largest request body the diagnostics service accepts (bytes; 413 before "
        "it is read).",
    )
    diag_cluster_raw_max_h: Annotated[float, Field(gt=0, le=24)] = Field(
        default=2.0,
        description="Longest window for which plant-wide oscillation clusters are judged on "
        "raw samples; longer windows use the 1-minute means (periods from 4 minutes).",
    )
    diag_cluster_raw_max_loop_hours: Annotated[float, Field(gt=0)] = Field(
        default=4000.0,
        description="Largest plant-wide cluster run judged on raw samples, in loops x window "
        "hours (a scheduled run took about 0.08 s per loop-hour at 1 Hz); a larger plant's "
        "windows use the 1-minute means, so scheduled runs keep within "
        "DIAG_CLUSTER_INTERVAL_S.",
    )
    diag_cluster_precompute_h: str = Field(
        default="1,2,6,24",
        pattern=r"^\s*$|^\s*\d+(\.\d+)?(\s*,\s*\d+(\.\d+)?)*\s*$",
        description="Window lengths (hours, comma-separated) whose plant-wide oscillation "
        "clusters are computed on a schedule and served from storage (the clusters page's "
        "periods); empty: none, every request computes.",
    )
    diag_cluster_interval_s: Annotated[int, Field(ge=0, le=86_400)] = Field(
        default=900,
        description="Seconds between scheduled cluster runs (0: no schedule). A stored run "
        "answers a request whose window ends at most this long (plus a minute) after it.",
    )

    @property
    def cluster_precompute_spans(self) -> tuple[timedelta, ...]:
        """The scheduled window lengths (DIAG_CLUSTER_PRECOMPUTE_H)."""
        hours = [part.strip() for part in self.diag_cluster_precompute_h.split(",")]
        return tuple(timedelta(hours=float(h)) for h in hours if h and float(h) > 0)


class AggregationSettings(BaseSettings):
    model_config = _ENV

    polling_interval: Annotated[int, Field(ge=100, le=3_600_000, description="ms")] = 30_000
    agg_lateness_s: Annotated[float, Field(ge=0, le=86400)] = 120.0
    agg_backfill_hours: Annotated[float | None, Field(ge=0)] = None
    agg_chunk_minutes: Annotated[int, Field(ge=1, le=1440)] = 60
    agg_loops_per_query: Annotated[int, Field(ge=1, le=10_000)] = 100
    agg_lease_s: Annotated[float, Field(gt=0, le=3600)] = 90.0
    agg_late_data: Literal["counts", "reread"] = Field(
        default="counts",
        description="How samples arriving up to AGG_LATENESS_S late are found: 'counts' reads "
        "new minutes only and compares the store's per-minute sample counts of the allowance "
        "with agg_1m, re-reading only the minutes that differ; 'reread' re-reads the whole "
        "allowance on every poll (the former behaviour).",
    )
    agg_late_check_interval_s: Annotated[float, Field(ge=0, le=86400)] = Field(
        default=300.0,
        description="Seconds between two count checks of a loop's lateness allowance "
        "('counts'); each poll checks the loops whose slot in this interval has come. A late "
        "sample is corrected within AGG_LATENESS_S + this after its time; shorter intervals "
        "cost more (60 s: +10-25 % CPU per poll at 10,000 loops; 300 s: within the noise).",
    )
    agg_spread_min_loops: Annotated[int, Field(ge=0)] = Field(
        default=1000,
        description="From this many leased loops on, the loops are spread over the polls of "
        "each minute (a stable slot per loop): each poll aggregates the minute just ended of "
        "its share of the loops, so no poll reads every loop's minute while the next reads "
        "nothing: the same work per minute (a little more: twice the commits), split over its "
        "polls. A loop's minute is written up to (60 s / POLLING_INTERVAL - 1) polls later "
        "(with a longer span, see AGG_SPREAD_LOOPS_PER_POLL, later still). 0: always; a number "
        "above the plant's loops: never.",
    )
    agg_spread_loops_per_poll: Annotated[int, Field(ge=1)] = Field(
        default=2500,
        description="With the spread, its span grows by whole minutes (up to 5) until each "
        "poll of the span aggregates at most this many loops: 10,000 loops at 30-s polls are "
        "spread over the 4 polls of 2 minutes, each reading 2 minutes of 2,500 loops instead "
        "of 1 minute of 5,000 (the same samples; influxd and the client pay per series too: "
        "about a fifth less CPU). A loop's minutes are then written up to span - 1 min + "
        "(span / POLLING_INTERVAL - 1) polls later (10,000 loops: 2.5 min).",
    )
    agg_reconcile_hours: Annotated[float, Field(ge=0, le=720)] = Field(
        default=3.0,
        description="Horizon of the periodic count reconciliation (0: off): minutes whose "
        "sample counts in the store exceed agg_1m's are recomputed with their hours.",
    )
    agg_reconcile_interval_s: Annotated[float, Field(gt=0, le=604800)] = Field(
        default=3600.0,
        description="Every loop's horizon is reconciled once per this many seconds (a slice of "
        "the loops each cycle).",
    )


class KpiSettings(BaseSettings):
    model_config = _ENV

    kpi_window_min: Annotated[int, Field(ge=1, le=1440)] = 15
    kpi_cron_schedule: str = "*/15 * * * *"
    kpi_max_concurrency: Annotated[int, Field(ge=1, le=256)] = 5
    kpi_catchup_max_windows: Annotated[int, Field(ge=0, le=10_000)] = 96
    kpi_lease_s: Annotated[float, Field(gt=0, le=3600)] = 300.0
    kpi_min_completeness: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.8,
        description="A window whose data completeness is below this share is not_assessed "
        "(left out of health, ranking and roll-ups); no data at all is offline.",
    )
    kpi_recheck_windows: Annotated[int, Field(ge=0, le=10_000)] = Field(
        default=8,
        description="Recent windows stored as offline or not_assessed that each cycle re-checks "
        "against the agg_1m minute counts; recomputed once more data has arrived.",
    )
    assess_shift_h: Annotated[float, Field(gt=0, le=24)] = Field(
        default=8.0, description="Length of the 'shift' assessment period, hours"
    )
    assess_day_h: Annotated[float, Field(gt=0, le=168)] = Field(
        default=24.0, description="Length of the 'day' assessment period, hours"
    )
    assess_week_d: Annotated[float, Field(gt=0, le=31)] = Field(
        default=7.0, description="Length of the 'week' assessment period, days"
    )

    def period_length(self, period: str) -> timedelta:
        """Length of an assessment period: ``shift``, ``day`` or ``week``."""
        lengths = {
            "shift": timedelta(hours=self.assess_shift_h),
            "day": timedelta(hours=self.assess_day_h),
            "week": timedelta(days=self.assess_week_d),
        }
        if period not in lengths:
            raise ValueError(f"period: must be one of {sorted(lengths)}, got {period!r}")
        return lengths[period]

    @field_validator("kpi_cron_schedule")
    @classmethod
    def _crontab(cls, value: str) -> str:
        if not _CRON_RE.match(value.strip()):
            raise ValueError("must be a 5-field crontab expression such as '*/15 * * * *'")
        return value.strip()


class AlertSettings(BaseSettings):
    """Alert evaluation (KPI worker) and notification delivery (e-mail, webhook)."""

    model_config = _ENV

    alert_enabled: bool = Field(
        default=True, description="Evaluate the alert rules after each KPI cycle"
    )
    alert_recent_h: Annotated[float, Field(gt=0, le=168)] = Field(
        default=24.0,
        description="How far back the evaluation looks for a loop's last data (stale_data "
        "rules: older than this is 'no data in the recent past')",
    )
    alert_digest_threshold: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=20,
        description="When one rule opens, reminds or clears more than this many alerts in "
        "one evaluation, they are told in one digest per e-mail address and webhook and one "
        "inbox entry per recipient instead of one each (an alert storm)",
    )
    alert_digest_listed: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=50, description="Alerts a digest names one by one; the rest are counted"
    )
    alert_notify_interval_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=15.0, description="Seconds between the notifier's passes over the outbox"
    )
    alert_notify_batch: Annotated[int, Field(ge=1, le=10_000)] = 100
    alert_notify_lease_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=120.0,
        description="A claimed notification not marked sent within this time (its sender "
        "died) is claimed again by another pass",
    )
    alert_notify_max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    alert_retry_base_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=30.0, description="First retry delay; doubled per attempt (with jitter)"
    )
    alert_retry_max_s: Annotated[float, Field(gt=0, le=86_400)] = 3600.0
    alert_smtp_host: str | None = Field(
        default=None, description="SMTP server for e-mail notifications (empty: no e-mail)"
    )
    alert_smtp_port: Port = 587
    alert_smtp_starttls: bool = True
    alert_smtp_username: str | None = None
    alert_smtp_password: SecretStr | None = None
    alert_smtp_from: str = "clpm@localhost"
    alert_smtp_ca_file: Path | None = Field(
        default=None,
        description="CA certificate(s) to trust for the SMTP server (default: the system's)",
    )
    alert_smtp_timeout_s: Annotated[float, Field(gt=0, le=600)] = 20.0
    alert_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC-SHA256 signature header of webhook notifications",
    )
    alert_webhook_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0

    @field_validator("alert_smtp_host", "alert_smtp_username", "alert_smtp_ca_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class ReportSettings(BaseSettings):
    """Scheduled fleet reports (kpi-worker): when they are due, how they are e-mailed (through
    the ALERT_SMTP_* server) and retried."""

    model_config = _ENV

    report_enabled: bool = Field(
        default=True, description="E-mail the daily / weekly reports to their subscribers"
    )
    report_check_interval_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=300.0, description="Seconds between the kpi-worker's checks for due reports"
    )
    report_hour_utc: Annotated[int, Field(ge=0, le=23)] = Field(
        default=6, description="Hour (UTC) at which the daily and weekly reports are due"
    )
    report_weekday: Annotated[int, Field(ge=0, le=6)] = Field(
        default=0, description="Day of the weekly report, 0 = Monday"
    )
    report_pdf_top: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=50, description="Bad actors, status changes and work items listed in the PDF"
    )
    report_max_attempts: Annotated[int, Field(ge=1, le=100)] = 6
    report_lease_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=900.0,
        description="A claimed report e-mail not marked sent within this time (its worker "
        "died) is claimed again",
    )


class OpcUaMode(StrEnum):
    SUBSCRIBE = "subscribe"
    POLL = "poll"


class StreamingSettings(BaseSettings):
    model_config = _ENV

    stream_interval: Annotated[float, Field(gt=0, le=3600)] = 1.0
    stream_loops: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    stream_seed: int = 42
    stream_buffer_max_points: Annotated[int, Field(ge=1000)] = 2_000_000
    stream_log_file: Path | None = Path("data_streaming_service.log")
    stream_state_file: Path | None = Field(
        default=None,
        description="Where the simulator keeps its state (every minute and at shutdown) so "
        "that a restart continues every trend instead of starting again at its base "
        "(empty: not kept).",
    )

    opcua_endpoint: str | None = Field(
        default=None,
        description="OPC UA server the bridge reads (opc.tcp://host:port/path); unset: "
        "the bridge is not configured.",
    )
    opcua_tag_map: Path | None = Field(
        default=None, description="Tag map (CSV or JSON) whose tags are OPC UA node ids."
    )
    opcua_mode: OpcUaMode = Field(
        default=OpcUaMode.SUBSCRIBE,
        description="subscribe: data-change notifications, published every STREAM_INTERVAL; "
        "poll: one read of every node per STREAM_INTERVAL.",
    )
    opcua_user: str | None = None
    opcua_password: SecretStr | None = None
    opcua_security: SecretStr | None = Field(
        default=None,
        description="Policy,Mode,client_cert,client_key[,server_cert] as asyncua's "
        "set_security_string takes it, e.g. Basic256Sha256,SignAndEncrypt,cert.der,key.pem; "
        "unset: no security.",
    )
    opcua_buffer_points: Annotated[int, Field(ge=10)] = Field(
        default=1_000_000,
        description="Points the bridge keeps while the store is unreachable; beyond this the "
        "oldest are dropped and counted.",
    )
    opcua_timeout_s: Annotated[float, Field(gt=0, le=600)] = 4.0
    opcua_reconnect_max_s: Annotated[float, Field(gt=0, le=3600)] = 30.0

    @field_validator("stream_log_file", "stream_state_file", mode="before")
    @classmethod
    def _empty_means_console_only(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "opcua_endpoint",
        "opcua_tag_map",
        "opcua_user",
        "opcua_password",
        "opcua_security",
        mode="before",
    )
    @classmethod
    def _empty_means_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("opcua_endpoint")
    @classmethod
    def _opc_tcp_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^opc\.tcp://[^\s/]+", value):
            raise ValueError("must be an opc.tcp:// URL")
        return value


class RuntimeSettings(BaseSettings):
    model_config = _ENV

    log_level: LogLevel = LogLevel.INFO
    node_env: Environment = Field(
        default=Environment.PRODUCTION,
        validation_alias=AliasChoices("NODE_ENV", "CLPM_ENV"),
    )
    clpm_data_dir: Path = Path(".clpm")

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class Settings:
    """All settings, grouped by concern. Build it with :func:`load_settings`."""

    __slots__ = (
        "aggregation",
        "alerts",
        "api",
        "auth",
        "cache",
        "database",
        "diagnostics",
        "influx",
        "kpi",
        "reports",
        "runtime",
        "streaming",
    )

    def __init__(
        self,
        *,
        database: DatabaseSettings,
        influx: InfluxSettings,
        cache: CacheSettings,
        auth: AuthSettings,
        api: ApiSettings,
        diagnostics: DiagnosticsSettings,
        aggregation: AggregationSettings,
        kpi: KpiSettings,
        streaming: StreamingSettings,
        runtime: RuntimeSettings,
        alerts: AlertSettings | None = None,
        reports: ReportSettings | None = None,
    ) -> None:
        self.database = database
        self.influx = influx
        self.cache = cache
        self.auth = auth
        self.api = api
        self.diagnostics = diagnostics
        self.aggregation = aggregation
        self.kpi = kpi
        self.streaming = streaming
        self.runtime = runtime
        self.alerts = alerts if alerts is not None else AlertSettings()
        self.reports = reports if reports is not None else ReportSettings()

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Settings({parts})"


CONCERNS: dict[str, type[BaseSettings]] = {
    "database": DatabaseSettings,
    "influx": InfluxSettings,
    "cache": CacheSettings,
    "auth": AuthSettings,
    "api": ApiSettings,
    "diagnostics": DiagnosticsSettings,
    "aggregation": AggregationSettings,
    "kpi": KpiSettings,
    "streaming": StreamingSettings,
    "runtime": RuntimeSettings,
    "alerts": AlertSettings,
    "reports": ReportSettings,
}


def environment_variable_names() -> set[str]:
    """Every environment variable name that some Settings field reads (upper case)."""
    names: set[str] = set()
    for concern in CONCERNS.values():
        for field_name, info in concern.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, AliasChoices):
                names.add(str(alias.choices[0]).upper())
            else:
                names.add(field_name.upper())
    return names


class SettingsError(SystemExit):
    """Raised for invalid configuration; its message is one line per bad variable."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


def _describe(error: Any) -> str:
    loc = error.get("loc") or ("?",)
    variable = str(loc[0]).upper()
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "enum":
        expected = error.get("ctx", {}).get("expected", "")
        message = f"must be one of {expected}"
    given = error.get("input")
    shown = "" if _is_secret(variable) or isinstance(given, dict) else f" (got {given!r})"
    return f"invalid configuration: {variable}{shown}: {message}"


def _is_secret(variable: str) -> bool:
    return any(
        word in variable for word in ("PASSWORD", "TOKEN", "SECRET", "DATABASE_URL", "REDIS_URL")
    )


def load_settings(**overrides: Any) -> Settings:
    """Read every concern from the environment; raise :class:`SettingsError` when invalid.

    ``overrides`` maps concern name to a dict of field values (used by tests and CLIs).
    """
    built: dict[str, BaseSettings] = {}
    lines: list[str] = []
    for name, concern in CONCERNS.items():
        try:
            built[name] = concern(**overrides.get(name, {}))
        except ValidationError as exc:
            lines.extend(_describe(error) for error in exc.errors())
    if lines:
        raise SettingsError(lines)
    return Settings(**built)  # type: ignore[arg-type]
