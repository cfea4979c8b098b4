"""Fixtures of the time-series tests: one ``store`` per backend that can run here.

``store`` is parametrised over the embedded SQLite store, the InfluxQL store against the real
influxd of the test harness, and that store keeping latest values in the harness Redis
(``latest_values``); every test in test_store_protocol.py runs against each of them.
Tests use their own loop ids (``unique_loop``) so they can share one store per module.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clpm_shared.config import CacheSettings, InfluxSettings
from clpm_shared.timeseries.base import Point, TimeSeriesStore
from clpm_shared.timeseries.embedded import EmbeddedStore
from clpm_shared.timeseries.influxql import InfluxQLStore
from clpm_shared.timeseries.latest_values import LatestValuesStore

BASE_TIME = datetime(2025, 1, 10, 10, 0, 0, tzinfo=UTC)
_counter = itertools.count(1)


@pytest.fixture
def unique_loop(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A loop id no other test uses: ``TIC<n>_<label>``."""
    number = next(_counter)

    def make(label: str = "x") -> str:
        return f"TIC{number:04d}_{label}"

    return make


def _make_points(
    loop_id: str,
    count: int,
    *,
    start: datetime = BASE_TIME,
    step_s: float = 1.0,
    modes: tuple[str | None, ...] = ("AUT",),
) -> list[Point]:
    """``count`` samples of a loop: PV a sine, SP a step, OP a ramp, modes cycling."""
    return [
        Point(
            loop_id,
            start + timedelta(seconds=i * step_s),
            pv=50.0 + 10.0 * math.sin(i / 7.0),
            sp=50.0 if i < count // 2 else 55.0,
            op=20.0 + 0.1 * i,
            mode=modes[i % len(modes)],
        )
        for i in range(count)
    ]


@pytest.fixture
def make_points() -> Callable[..., list[Point]]:
    """Builder of test samples (see ``_make_points``)."""
    return _make_points


def _embedded(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "timeseries.db", batch_size=400)


def influx_settings(url: str, database: str, **overrides: object) -> InfluxSettings:
    """Settings of the InfluxQL store against the harness influxd (1.x, no auth)."""
    values: dict[str, object] = {
        "timeseries_backend": "influxql",
        "influxdb_url": url,
        "influxdb_database": database,
        "influxdb_timeout_s": 10.0,
        "influxdb_max_retries": 2,
    }
    values.update(overrides)
    return InfluxSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_influx_settings() -> Callable[..., InfluxSettings]:
    return influx_settings


BACKENDS = ["embedded", "influxql", "latest_values"]


@pytest.fixture(scope="module", params=BACKENDS)
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[TimeSeriesStore]:
    backend = request.param
    if backend == "embedded":
        created: TimeSeriesStore = _embedded(tmp_path_factory.mktemp("embedded"))
    else:
        server = request.getfixturevalue("influx_server")
        database = request.getfixturevalue("influx_database")
        # two loops per latest_many statement: its batches are exercised with few loops
        options: dict[str, Any] = {
            "batch_size": 400,
            "latest_loops_per_query": 2,
            "backoff_s": 0.05,
        }
        settings = influx_settings(server.url, database)
        if backend == "latest_values":
            redis = request.getfixturevalue("redis_server")
            cache = CacheSettings(redis_url=redis.url)  # type: ignore[arg-type]
            created = LatestValuesStore(settings, cache, **options)
        else:
            created = InfluxQLStore(settings, **options)
    yield created
    await created.close()
