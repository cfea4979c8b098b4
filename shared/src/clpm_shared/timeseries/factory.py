"""Choosing the time-series backend from settings (TIMESERIES_BACKEND)."""

from __future__ import annotations

from clpm_shared.config import InfluxSettings, TimeSeriesBackend
from clpm_shared.timeseries.base import TimeSeriesStore
from clpm_shared.timeseries.embedded import EmbeddedStore
from clpm_shared.timeseries.influxql import InfluxQLStore


def create_store(settings: InfluxSettings) -> TimeSeriesStore:
    """The store named by ``settings.timeseries_backend``; the caller closes it."""
    backend = settings.timeseries_backend
    if backend is TimeSeriesBackend.EMBEDDED:
        return EmbeddedStore(settings.embedded_tsdb_path)
    if backend is TimeSeriesBackend.INFLUXQL:
        return InfluxQLStore(settings)
    raise NotImplementedError(f"time-series backend {backend.value!r} is not available yet")
