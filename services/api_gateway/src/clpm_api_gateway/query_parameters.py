"""Parsing and validation of the gateway's query parameters (422 naming the parameter).

Times are ISO-8601 with a zone (``2025-01-10T10:00:00Z`` or ``+01:00``); field names are
case-insensitive (``pv``/``PV``, ``mode``/``Mode``); intervals are ``<n>s|m|min|h|d``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Query

from clpm_shared.timeseries import InvalidQueryError, validate_fields, validate_loop_id
from clpm_shared.web.problems import invalid_parameter

_INTERVAL = re.compile(r"^\s*(\d{1,7})\s*(s|sec|m|min|h|d)\s*$", re.IGNORECASE)
_INTERVAL_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
MAX_INTERVAL_S = 31 * 86400
_UNENCODED_PLUS = re.compile(r"(?<=\d) (\d{2}(?::?\d{2})?)$")

TIME_DESCRIPTION = "ISO-8601 date-time with a zone, e.g. 2025-01-10T10:00:00Z"
DATE_TIME: dict[str, Any] = {"format": "date-time"}

EARLIEST = datetime(1678, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)
"""Times are stored as int64 nanoseconds since 1970 (InfluxDB): about 1677-09-21 to 2262-04-11."""

OptionalStart = Annotated[
    str | None,
    Query(
        description="ISO-8601 with zone; default end - 24 h",
        examples=["2025-01-10T00:00:00Z"],
        json_schema_extra=DATE_TIME,
    ),
]
OptionalEnd = Annotated[
    str | None,
    Query(
        description="ISO-8601 with zone; default now",
        examples=["2025-01-11T00:00:00Z"],
        json_schema_extra=DATE_TIME,
    ),
]


def parse_loop_id(value: str, parameter: str = "loopId", location: str = "query") -> str:
    try:
        return validate_loop_id(value, parameter)
    except InvalidQueryError as exc:
        raise invalid_parameter(
            parameter, str(exc).removeprefix(f"{parameter}: "), location
        ) from None


def parse_time(value: str, parameter: str) -> datetime:
    """Timezone-aware UTC datetime from an ISO-8601 string that carries a zone."""
    # An unencoded "+" of a zone offset arrives as a space: 10:00:00 01:00 means +01:00.
    text = _UNENCODED_PLUS.sub(r"+\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise invalid_parameter(
            parameter, f"not an ISO-8601 date-time: {value[:64]!r} ({TIME_DESCRIPTION})"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise invalid_parameter(parameter, "must include a timezone (e.g. 2025-01-10T10:00:00Z)")
    try:
        moment = parsed.astimezone(UTC)
    except OverflowError:
        moment = None
    if moment is None or not EARLIEST <= moment < LATEST:
        raise invalid_parameter(parameter, "must lie between 1678-01-01 and 2261-12-31 (UTC)")
    return moment


@dataclass(frozen=True)
class TimeWindow:
    """A validated half-open time range [start, end)."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def parse_window(
    start: str | None,
    end: str | None,
    *,
    default_span: timedelta | None,
    now: datetime,
    max_span: timedelta | None = None,
) -> TimeWindow:
    """Validated [start, end): both zone-aware, start < end, at most ``max_span``.

    A missing ``end`` means now; a missing ``start`` means ``end - default_span`` (required when
    ``default_span`` is None).
    """
    end_time = parse_time(end, "end") if end is not None else now
    if start is not None:
        start_time = parse_time(start, "start")
    elif default_span is not None:
        start_time = end_time - default_span
    else:
        raise invalid_parameter("start", "is required")
    if start_time >= end_time:
        raise invalid_parameter("end", "must be later than start")
    if max_span is not None and end_time - start_time > max_span:
        hours = max_span.total_seconds() / 3600
        raise invalid_parameter(
            "end", f"range end - start must be at most {hours:g} h for this endpoint"
        )
    return TimeWindow(start_time, end_time)


def parse_fields(values: Sequence[str] | None, parameter: str = "fields") -> tuple[str, ...]:
    """Stored field names ('PV', 'SP', 'OP', 'Mode') from ``pv,op`` lists in any case."""
    if not values:
        return ("PV", "OP", "SP")
    names = [part for value in values for part in value.split(",")]
    try:
        return validate_fields(names, parameter)
    except InvalidQueryError as exc:
        raise invalid_parameter(parameter, str(exc).removeprefix(f"{parameter}: ")) from None


def parse_interval(value: str, parameter: str = "interval") -> int:
    """Seconds of an interval such as ``1m``, ``15min``, ``1h``, ``1d``."""
    match = _INTERVAL.match(value)
    if match is None:
        raise invalid_parameter(parameter, "must look like 30s, 1m, 15m, 1h or 1d")
    seconds = int(match.group(1)) * _INTERVAL_SECONDS[match.group(2).lower()]
    if not 1 <= seconds <= MAX_INTERVAL_S:
        raise invalid_parameter(parameter, "must be between 1s and 31d")
    return seconds


def parse_limit(value: int | None, default: int, maximum: int, parameter: str = "limit") -> int:
    if value is None:
        return min(default, maximum)
    if not 1 <= value <= maximum:
        raise invalid_parameter(parameter, f"must be between 1 and {maximum}")
    return value


def now_utc() -> datetime:
    return datetime.now(UTC)
