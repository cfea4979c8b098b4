"""Choosing the time-series backend from settings (TIMESERIES_BACKEND)."""

from __future__ import annotations

from clpm_shared.config import CacheBackend, CacheSettings, InfluxSettings, TimeSeriesBackend
from clpm_shared.timeseries.base import TimeSeriesStore
from clpm_shared.timeseries.embedded import EmbeddedStore
from clpm_shared.timeseries.flux import FluxStore
from clpm_shared.timeseries.influxql import InfluxQLStore
from clpm_shared.timeseries.latest_values import LatestValuesStore


def create_store(settings: InfluxSettings, cache: CacheSettings | None = None) -> TimeSeriesStore:
    """The store named by ``settings.timeseries_backend``; the caller closes it.

    ``influxql``: InfluxDB 1.x, or 2.x/3.x through the v1 compatibility API (token, DBRP);
    with ``cache`` naming Redis (CACHE_BACKEND=redis, LATEST_VALUES_CACHE) it keeps each
    loop's latest values there as it writes (:class:`LatestValuesStore`);
    ``flux``: InfluxDB 2.x native API; ``embedded``: SQLite file at EMBEDDED_TSDB_PATH.
    """
    backend = settings.timeseries_backend
    if backend is TimeSeriesBackend.EMBEDDED:
        return EmbeddedStore(
            settings.embedded_tsdb_path, retention_s=settings.embedded_retention_days * 86400.0
        )
    if backend is TimeSeriesBackend.FLUX:
        return FluxStore(settings)
    if (
        cache is not None
        and cache.cache_backend is CacheBackend.REDIS
        and cache.latest_values_cache
    ):
        return LatestValuesStore(settings, cache)
    return InfluxQLStore(settings)
