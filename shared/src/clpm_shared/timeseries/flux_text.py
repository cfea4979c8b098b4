"""Flux query text for the InfluxDB 2 native store: string literals, time literals, queries.

Every value enters a query as a double-quoted Flux string literal with ``\\``, ``"``, ``$``
(string interpolation ``${...}``) and control characters escaped, or as an RFC 3339 time
literal built from integer nanoseconds. Loop ids and field names are also validated before
they get here; the escaping is defence in depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from clpm_shared.timeseries.base import FIELDS, LOOP_TAG, MODE_TAG

EARLIEST = "1970-01-01T00:00:00Z"
LATEST = "2262-01-01T00:00:00Z"
"""Bounds for "all time" (Flux times are int64 nanoseconds: they end in April 2262)."""

_ESCAPES = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def flux_string(value: str) -> str:
    return '"' + "".join(_ESCAPES.get(char, char) for char in value) + '"'


def flux_time(t_ns: int) -> str:
    """RFC 3339 time literal with nanoseconds: ``2025-01-10T10:00:00.000000000Z``."""
    seconds, nanos = divmod(int(t_ns), 1_000_000_000)
    moment = _EPOCH + timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def _source(bucket: str, start: str, stop: str) -> str:
    return f"from(bucket: {flux_string(bucket)})\n  |> range(start: {start}, stop: {stop})"


def _rows_of(measurement: str, loop_ids: Sequence[str]) -> str:
    loops = " or ".join(f"r.{LOOP_TAG} == {flux_string(loop_id)}" for loop_id in loop_ids)
    return f"  |> filter(fn: (r) => r._measurement == {flux_string(measurement)} and ({loops}))"


def _fields_of(fields: Sequence[str]) -> str:
    chosen = " or ".join(f"r._field == {flux_string(name)}" for name in fields)
    return f"  |> filter(fn: (r) => {chosen})"


def _columns(names: Sequence[str]) -> str:
    return "[" + ", ".join(flux_string(name) for name in names) + "]"


_NO_LIMIT = 2**62
_PIVOT = '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'


def raw_query(
    bucket: str,
    measurement: str,
    loop_id: str,
    start_ns: int,
    end_ns: int,
    fields: Sequence[str],
    limit: int | None = None,
    offset: int = 0,
) -> str:
    """One row per time (fields pivoted to columns), series of all modes merged, oldest first."""
    lines = [
        _source(bucket, flux_time(start_ns), flux_time(end_ns)),
        _rows_of(measurement, [loop_id]),
        _fields_of(fields),
        _PIVOT,
        f"  |> keep(columns: {_columns(('_time', *FIELDS, MODE_TAG))})",
        "  |> group()",
        '  |> sort(columns: ["_time"])',
    ]
    if limit is not None or offset:
        n = _NO_LIMIT if limit is None else int(limit)
        lines.append(f"  |> limit(n: {n}, offset: {int(offset)})")
    return "\n".join(lines)


def raw_many_query(
    bucket: str, measurement: str, loop_ids: Sequence[str], start_ns: int, end_ns: int
) -> str:
    """Rows of several loops, one table per loop (grouped by ``loop_id``), oldest first."""
    return "\n".join(
        [
            _source(bucket, flux_time(start_ns), flux_time(end_ns)),
            _rows_of(measurement, loop_ids),
            _fields_of(FIELDS),
            _PIVOT,
            f"  |> keep(columns: {_columns(('_time', *FIELDS, MODE_TAG, LOOP_TAG))})",
            f"  |> group(columns: {_columns([LOOP_TAG])})",
            '  |> sort(columns: ["_time"])',
        ]
    )


def latest_query(bucket: str, measurement: str, loop_id: str, fields: Sequence[str]) -> str:
    """The newest record of each series and field (``last()`` per table keeps its own time)."""
    return "\n".join(
        [
            _source(bucket, EARLIEST, LATEST),
            _rows_of(measurement, [loop_id]),
            _fields_of(fields),
            "  |> last()",
        ]
    )


def time_range_query(bucket: str, measurement: str, loop_id: str) -> str:
    return "\n".join(
        [
            "data = " + _source(bucket, EARLIEST, LATEST),
            _rows_of(measurement, [loop_id]),
            _fields_of(FIELDS),
            '  |> keep(columns: ["_time"])',
            "  |> group()",
            'data |> min(column: "_time") |> yield(name: "first")',
            'data |> max(column: "_time") |> yield(name: "last")',
        ]
    )


def discover_query(bucket: str, measurement: str) -> str:
    return "\n".join(
        [
            'import "influxdata/influxdb/schema"',
            f"schema.tagValues(bucket: {flux_string(bucket)}, tag: {flux_string(LOOP_TAG)}, "
            f"predicate: (r) => r._measurement == {flux_string(measurement)}, start: {EARLIEST})",
        ]
    )


AGGREGATE_FUNCTIONS = {
    "mean": "mean",
    "min": "min",
    "max": "max",
    "count": "count",
    "first": "first",
    "last": "last",
    "std": "stddev",
}
"""Statistic name (yield name) to the Flux function applied per window."""


def aggregate_query(
    bucket: str, measurement: str, loop_id: str, start_ns: int, end_ns: int, interval_s: int
) -> str:
    """One ``aggregateWindow`` per statistic, each yielded under the statistic's name."""
    lines = [
        "data = " + _source(bucket, flux_time(start_ns), flux_time(end_ns)),
        _rows_of(measurement, [loop_id]),
        _fields_of(FIELDS),
        '  |> group(columns: ["_field"])',
        '  |> sort(columns: ["_time"])',
    ]
    lines += [
        f"data |> aggregateWindow(every: {int(interval_s)}s, fn: {function}, createEmpty: false, "
        f'timeSrc: "_start") |> yield(name: {flux_string(statistic)})'
        for statistic, function in AGGREGATE_FUNCTIONS.items()
    ]
    return "\n".join(lines)
