"""Bucket statistics of raw samples (1 min) and their exact roll-up into wider buckets (1 h)."""

from clpm_shared.aggregation.buckets import (
    FIELD_NAMES,
    HOUR_NS,
    MINUTE_NS,
    STAT_COLUMNS,
    STATISTICS,
    BucketTable,
    MinuteAggregation,
    SkippedValues,
    concatenate,
    field_statistics,
    minute_buckets,
)
from clpm_shared.aggregation.rollup import rollup

__all__ = [
    "FIELD_NAMES",
    "HOUR_NS",
    "MINUTE_NS",
    "STATISTICS",
    "STAT_COLUMNS",
    "BucketTable",
    "MinuteAggregation",
    "SkippedValues",
    "concatenate",
    "field_statistics",
    "minute_buckets",
    "rollup",
]
