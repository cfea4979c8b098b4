"""Settings: seed defaults, one clear line per invalid variable, secrets never shown."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from clpm_shared.config import (
    AuthMode,
    CacheBackend,
    SettingsError,
    TimeSeriesBackend,
    environment_variable_names,
    load_settings,
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in environment_variable_names() | {"CLPM_ENV"}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_follow_the_seed_documents() -> None:
    settings = load_settings()
    assert settings.database.postgres_db == "clpm"
    assert settings.database.postgres_user == "clpm"
    assert settings.database.postgres_password.get_secret_value() == "clpm_pwd"
    assert settings.database.async_url == "postgresql+asyncpg://clpm:clpm_pwd@localhost:5432/clpm"
    assert settings.influx.influxdb_measurement == "control_loops"
    assert settings.influx.database == "clpm"
    assert settings.auth.oidc_issuer == "http://localhost:8081/realms/clpm"
    assert settings.auth.oidc_audience == "clpm-api"
    assert settings.api.api_port == 8080
    assert settings.api.diag_service_url == "http://localhost:8050"
    assert settings.aggregation.polling_interval == 30_000
    assert settings.kpi.kpi_window_min == 15
    assert settings.kpi.kpi_cron_schedule == "*/15 * * * *"
    assert settings.kpi.kpi_max_concurrency == 5
    assert settings.streaming.stream_interval == 1.0


def test_backend_selectors_accept_the_embedded_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMESERIES_BACKEND", "embedded")
    monkeypatch.setenv("CACHE_BACKEND", "memory")
    monkeypatch.setenv("AUTH_MODE", "local")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///.clpm/clpm.db")
    settings = load_settings()
    assert settings.influx.timeseries_backend is TimeSeriesBackend.EMBEDDED
    assert settings.cache.cache_backend is CacheBackend.MEMORY
    assert settings.auth.auth_mode is AuthMode.LOCAL
    assert settings.database.async_url == "sqlite+aiosqlite:///.clpm/clpm.db"
    assert settings.database.is_sqlite


def test_postgres_url_from_database_url_uses_asyncpg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/x")
    assert load_settings().database.async_url == "postgresql+asyncpg://u:p@db:5432/x"


def test_node_env_is_accepted_as_the_environment_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_ENV", "development")
    assert load_settings().runtime.node_env == "development"


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    assert load_settings().runtime.log_level == "debug"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("POSTGRES_PORT", "abc", "valid integer"),
        ("POSTGRES_PORT", "70000", "less than or equal to 65535"),
        ("LOG_LEVEL", "loud", "'debug', 'info', 'warning', 'error' or 'critical'"),
        ("TIMESERIES_BACKEND", "mongodb", "'influxql', 'flux' or 'embedded'"),
        ("CACHE_BACKEND", "memcached", "'redis' or 'memory'"),
        ("AUTH_MODE", "none", "'oidc' or 'local'"),
        ("KPI_CRON_SCHEDULE", "every 15 minutes", "5-field crontab"),
        ("KPI_MAX_CONCURRENCY", "0", "greater than or equal to 1"),
        ("POLLING_INTERVAL", "-5", "greater than or equal to 100"),
        ("AGG_SPREAD_LOOPS_PER_POLL", "0", "greater than or equal to 1"),
        ("STREAM_INTERVAL", "0", "greater than 0"),
        ("INFLUXDB_URL", "localhost:8086", "http://"),
        ("INFLUXDB_MEASUREMENT", "bad name;DROP", "letters, digits"),
        ("DATABASE_URL", "mysql://x", "scheme must be one of"),
        ("OIDC_ALGORITHMS", '["HS256"]', "only asymmetric algorithms"),
        ("NODE_ENV", "staging", "'production', 'development' or 'test'"),
    ],
)
def test_invalid_value_names_the_variable_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert len(caught.value.lines) == 1
    line = caught.value.lines[0]
    assert line.startswith(f"invalid configuration: {variable}")
    assert expected in line


def test_every_invalid_variable_gets_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PORT", "x")
    monkeypatch.setenv("KPI_WINDOW_MIN", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert sorted(line.split(":")[1].split()[0] for line in caught.value.lines) == [
        "API_PORT",
        "KPI_WINDOW_MIN",
    ]


def test_settings_error_stops_the_process_with_a_message() -> None:
    assert issubclass(SettingsError, SystemExit)


def test_secrets_never_appear_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_PASSWORD", "hunter2-pg")
    monkeypatch.setenv("INFLUXDB_TOKEN", "hunter2-token")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2-url@db/x")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2-redis@cache:6379/0")
    text = repr(load_settings()) + str(load_settings().database)
    assert "hunter2" not in text
    assert "**********" in text


def test_secret_values_are_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "http://:hunter2@cache")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "REDIS_URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("KPI_WINDOW_MIN=30\n")
    assert load_settings().kpi.kpi_window_min == 30


def test_scheduled_cluster_windows_are_a_list_of_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().diagnostics.cluster_precompute_spans == tuple(
        timedelta(hours=h) for h in (1, 2, 6, 24)
    )
    monkeypatch.setenv("DIAG_CLUSTER_PRECOMPUTE_H", " 0.5, 12 ")
    assert load_settings().diagnostics.cluster_precompute_spans == (
        timedelta(minutes=30),
        timedelta(hours=12),
    )
    monkeypatch.setenv("DIAG_CLUSTER_PRECOMPUTE_H", "")
    assert load_settings().diagnostics.cluster_precompute_spans == ()
    monkeypatch.setenv("DIAG_CLUSTER_PRECOMPUTE_H", "2h")
    with pytest.raises(SettingsError, match="DIAG_CLUSTER_PRECOMPUTE_H"):
        load_settings()
