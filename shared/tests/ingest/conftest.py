"""Fixtures of the import tests: a fresh store per test on each backend that runs here."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clpm_shared.config import InfluxSettings
from clpm_shared.timeseries import EmbeddedStore, InfluxQLStore, TimeSeriesStore

_databases = itertools.count(1)


@pytest.fixture(params=["embedded", "influxql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TimeSeriesStore]:
    """An empty store: an embedded SQLite file, or a new database on the harness influxd."""
    created: TimeSeriesStore
    if request.param == "embedded":
        created = EmbeddedStore(tmp_path / "timeseries.db")
    else:
        server = request.getfixturevalue("influx_server")
        database = server.create_database(f"import_{next(_databases)}")
        settings = InfluxSettings(
            timeseries_backend="influxql",  # type: ignore[arg-type]
            influxdb_url=server.url,
            influxdb_database=database,
            influxdb_timeout_s=10.0,
            influxdb_max_retries=2,
        )
        created = InfluxQLStore(settings, backoff_s=0.05)
    yield created
    await created.close()
