"""Raw time-series layer: the ``TimeSeriesStore`` protocol and its backends."""

from clpm_shared.timeseries.base import (
    FIELDS,
    LOOP_ID_PATTERN,
    IntervalAggregate,
    InvalidQueryError,
    LatestPoint,
    LatestValue,
    Point,
    RawPage,
    RawSeries,
    StoreUnavailableError,
    TimeRange,
    TimeSeriesError,
    TimeSeriesStore,
    from_ns,
    to_ns,
    validate_fields,
    validate_loop_id,
)
from clpm_shared.timeseries.embedded import EmbeddedStore
from clpm_shared.timeseries.factory import create_store
from clpm_shared.timeseries.flux import FluxStore
from clpm_shared.timeseries.influxql import InfluxQLStore

__all__ = [
    "FIELDS",
    "LOOP_ID_PATTERN",
    "EmbeddedStore",
    "FluxStore",
    "InfluxQLStore",
    "IntervalAggregate",
    "InvalidQueryError",
    "LatestPoint",
    "LatestValue",
    "Point",
    "RawPage",
    "RawSeries",
    "StoreUnavailableError",
    "TimeRange",
    "TimeSeriesError",
    "TimeSeriesStore",
    "create_store",
    "from_ns",
    "to_ns",
    "validate_fields",
    "validate_loop_id",
]
