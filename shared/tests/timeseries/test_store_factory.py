"""create_store picks the backend named by TIMESERIES_BACKEND; each one meets the protocol."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from clpm_shared.config import InfluxSettings
from clpm_shared.timeseries import (
    EmbeddedStore,
    FluxStore,
    InfluxQLStore,
    Point,
    TimeSeriesStore,
    create_store,
)
from tests.harness.servers import InfluxServer


@pytest.mark.parametrize(
    ("backend", "kind"),
    [("embedded", EmbeddedStore), ("influxql", InfluxQLStore), ("flux", FluxStore)],
)
async def test_the_backend_setting_chooses_the_store(
    backend: str, kind: type, tmp_path: Path
) -> None:
    settings = InfluxSettings(
        timeseries_backend=backend,  # type: ignore[arg-type]
        embedded_tsdb_path=tmp_path / "ts.db",
    )
    store = create_store(settings)
    try:
        assert isinstance(store, kind)
        assert isinstance(store, TimeSeriesStore)
    finally:
        await store.close()


@pytest.mark.parametrize(("days", "retention_s"), [(30.0, 30 * 86400.0), (0.0, None)])
async def test_the_embedded_store_keeps_embedded_retention_days(
    days: float, retention_s: float | None, tmp_path: Path
) -> None:
    settings = InfluxSettings(
        timeseries_backend="embedded",  # type: ignore[arg-type]
        embedded_tsdb_path=tmp_path / "ts.db",
        embedded_retention_days=days,
    )
    store = create_store(settings)
    try:
        assert isinstance(store, EmbeddedStore)
        assert store.retention_s == retention_s
    finally:
        await store.close()


async def test_an_influxql_store_from_settings_talks_to_influxd(
    influx_server: InfluxServer, influx_database: str
) -> None:
    settings = InfluxSettings(
        timeseries_backend="influxql",  # type: ignore[arg-type]
        influxdb_url=influx_server.url,
        influxdb_database=influx_database,
    )
    store = create_store(settings)
    try:
        moment = datetime(2025, 3, 1, tzinfo=UTC)
        assert await store.write([Point("FACTORY1", moment, pv=4.0)]) == 1
        latest = await store.latest("FACTORY1", ["PV"])
        assert latest is not None
        assert latest.values["PV"].value == 4.0
        assert latest.values["PV"].time == moment
    finally:
        await store.close()
