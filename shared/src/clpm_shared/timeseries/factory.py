"""Choosing the time-series backend from settings (TIMESERIES_BACKEND)."""

from __future__ import annotations

from clpm_shared.config import InfluxSettings, TimeSeriesBackend
from clpm_shared.timeseries.base import TimeSeriesStore
from clpm_shared.timeseries.embedded import EmbeddedStore
from clpm_shared.timeseries.flux import FluxStore
from clpm_shared.timeseries.influxql import InfluxQLStore


def create_store(settings: InfluxSettings) -> TimeSeriesStore:
    """The store named by ``settings.timeseries_backend``; the caller closes it.

    ``influxql``: InfluxDB 1.x, or 2.x/3.x through the v1 compatibility API (token, DBRP);
    ``flux``: InfluxDB 2.x native API; ``embedded``: SQLite file at EMBEDDED_TSDB_PATH.
    """
    backend = settings.timeseries_backend
    if backend is TimeSeriesBackend.EMBEDDED:
        return EmbeddedStore(
            settings.embedded_tsdb_path, retention_s=settings.embedded_retention_days * 86400.0
        )
    if backend is TimeSeriesBackend.FLUX:
        return FluxStore(settings)
    return InfluxQLStore(settings)
