"""The ``TimeSeriesStore`` protocol and its value types (raw PV/SP/OP/mode samples).

Point schema (seed): measurement ``control_loops`` (INFLUXDB_MEASUREMENT), tag ``loop_id``,
tag ``Mode`` (AUT, MAN, CAS, ...), float fields ``PV``, ``SP``, ``OP``, time ``_time``.

Every backend (InfluxQL over the v1 HTTP API, Flux via influxdb-client, embedded SQLite)
implements this protocol, and one protocol test-suite runs against each backend that can run
here. Data is columnar (numpy arrays) because the workers move millions of samples per cycle.
Times are timezone-aware UTC ``datetime`` at the edges and int64 nanoseconds inside arrays.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FIELDS: tuple[str, ...] = ("PV", "SP", "OP")
"""Float fields of a sample, as stored."""

MODE_TAG = "Mode"
LOOP_TAG = "loop_id"

LOOP_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-/]{0,127}$")
"""Loop ids accepted anywhere in CLPM (tag names of DCS systems: letters, digits, _ . : - /)."""

MODE_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,16}$")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ObjectArray = npt.NDArray[np.object_]


class TimeSeriesError(Exception):
    """Base error of the time-series layer."""


class StoreUnavailableError(TimeSeriesError):
    """The backend could not be reached (after retries); callers answer 503 / retry later."""

    def __init__(self, message: str, retry_after_s: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InvalidQueryError(TimeSeriesError, ValueError):
    """A loop id, field, time or interval failed validation; nothing was sent to the backend."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


def validate_loop_id(loop_id: str, parameter: str = "loop_id") -> str:
    """Return ``loop_id`` if it matches :data:`LOOP_ID_PATTERN`, else raise InvalidQueryError."""
    if not isinstance(loop_id, str) or not LOOP_ID_PATTERN.fullmatch(loop_id):
        raise InvalidQueryError(
            parameter,
            "must be 1-128 characters: letters, digits and _ . : - / (starting with a letter "
            "or digit)",
        )
    return loop_id


def validate_fields(fields: Sequence[str] | None, parameter: str = "fields") -> tuple[str, ...]:
    """Normalise field names (case-insensitive, 'Mode' allowed) to the stored spelling."""
    if fields is None:
        return FIELDS
    allowed = {name.lower(): name for name in (*FIELDS, MODE_TAG)}
    out: list[str] = []
    for name in fields:
        key = name.strip().lower() if isinstance(name, str) else ""
        if key not in allowed:
            raise InvalidQueryError(parameter, f"unknown field {name!r}; allowed: PV, SP, OP, Mode")
        if allowed[key] not in out:
            out.append(allowed[key])
    if not out:
        raise InvalidQueryError(parameter, "at least one field is required")
    return tuple(out)


def normalise_mode(mode: object) -> str | None:
    """The ``Mode`` tag to store, or None when the mode is unknown (missing, empty, malformed).

    A sample whose mode is unknown is stored without the tag rather than rejected.
    """
    if not isinstance(mode, str):
        return None
    mode = mode.strip()
    return mode if MODE_PATTERN.fullmatch(mode) else None


def validate_window(start: datetime, end: datetime) -> tuple[int, int]:
    """Epoch-ns bounds of ``start <= time < end``; raise InvalidQueryError when malformed."""
    if not isinstance(start, datetime):
        raise InvalidQueryError("start", "must be a timezone-aware datetime")
    if not isinstance(end, datetime):
        raise InvalidQueryError("end", "must be a timezone-aware datetime")
    if start.tzinfo is None:
        raise InvalidQueryError("start", "must include a timezone (e.g. 2025-01-10T10:00:00Z)")
    if end.tzinfo is None:
        raise InvalidQueryError("end", "must include a timezone (e.g. 2025-01-10T10:00:00Z)")
    start_ns, end_ns = to_ns(start), to_ns(end)
    if end_ns < start_ns:
        raise InvalidQueryError("end", "must not be before start")
    return start_ns, end_ns


def validate_limit(limit: int | None, parameter: str = "limit") -> int | None:
    """``limit`` if it is None or a positive int, else raise InvalidQueryError."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidQueryError(parameter, "must be a positive integer")
    return limit


MAX_AGGREGATE_BUCKETS = 100_000
"""Upper bound of buckets one ``aggregate`` call may produce."""


def validate_interval(
    interval_s: int, start_ns: int, end_ns: int, parameter: str = "interval_s"
) -> int:
    """Interval in whole seconds (>= 1) that yields at most MAX_AGGREGATE_BUCKETS buckets."""
    if isinstance(interval_s, bool) or not isinstance(interval_s, int) or interval_s < 1:
        raise InvalidQueryError(parameter, "must be a whole number of seconds >= 1")
    if (end_ns - start_ns) // (interval_s * 1_000_000_000) > MAX_AGGREGATE_BUCKETS:
        raise InvalidQueryError(
            parameter, f"too small for the time range (more than {MAX_AGGREGATE_BUCKETS} buckets)"
        )
    return interval_s


def to_ns(moment: datetime) -> int:
    """Epoch nanoseconds of a timezone-aware datetime."""
    if moment.tzinfo is None:
        raise InvalidQueryError("time", "must include a timezone (e.g. 2025-01-10T10:00:00Z)")
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_ns(ns: int) -> datetime:
    """Timezone-aware UTC datetime of epoch nanoseconds (microsecond resolution)."""
    return datetime.fromtimestamp(ns / 1e9, UTC)


@dataclass(frozen=True, slots=True)
class Point:
    """One sample of one loop. Missing fields are ``None``; ``mode`` may be unknown."""

    loop_id: str
    time: datetime
    pv: float | None = None
    sp: float | None = None
    op: float | None = None
    mode: str | None = None


@dataclass(frozen=True)
class RawSeries:
    """Columnar raw samples of one loop, sorted by time. NaN = field missing in that sample."""

    loop_id: str
    t_ns: IntArray
    pv: FloatArray
    sp: FloatArray
    op: FloatArray
    mode: ObjectArray

    def __len__(self) -> int:
        return int(self.t_ns.shape[0])

    @classmethod
    def empty(cls, loop_id: str) -> RawSeries:
        nothing = np.empty(0, dtype=np.float64)
        return cls(
            loop_id,
            np.empty(0, dtype=np.int64),
            nothing,
            nothing.copy(),
            nothing.copy(),
            np.empty(0, dtype=object),
        )

    def field(self, name: str) -> FloatArray | ObjectArray:
        """Column by stored name: 'PV', 'SP', 'OP' or 'Mode'."""
        if name == MODE_TAG:
            return self.mode
        columns: dict[str, FloatArray] = {"PV": self.pv, "SP": self.sp, "OP": self.op}
        return columns[name]


@dataclass(frozen=True)
class RawPage:
    """A page of raw samples and the cursor of the next page (None when this is the last)."""

    series: RawSeries
    next_cursor: str | None


@dataclass(frozen=True)
class LatestValue:
    value: float | str | None
    time: datetime | None


@dataclass(frozen=True)
class LatestPoint:
    """Most recent value of each requested field with its own timestamp."""

    loop_id: str
    values: Mapping[str, LatestValue]

    @property
    def time(self) -> datetime | None:
        times = [v.time for v in self.values.values() if v.time is not None]
        return max(times) if times else None


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class IntervalAggregate:
    """Per-interval statistics computed by the backend (InfluxQL ``GROUP BY time``)."""

    loop_id: str
    interval_s: int
    bucket_ns: IntArray
    stats: Mapping[str, FloatArray] = field(default_factory=dict)
    """Keys like ``pv_mean``, ``pv_min``, ``pv_max``, ``pv_count``, ``pv_first``, ``pv_last``,
    ``pv_std`` (sample std) for each field."""


AGGREGATE_STATISTICS: tuple[str, ...] = ("mean", "min", "max", "count", "first", "last", "std")
"""Statistics of :class:`IntervalAggregate`, keyed ``<field lower>_<statistic>`` (``pv_mean``)."""


@runtime_checkable
class TimeSeriesStore(Protocol):
    """What every CLPM service needs from the raw time-series store."""

    async def write(self, points: Sequence[Point]) -> int:
        """Write points (batched by the backend); returns how many were accepted."""
        ...

    async def query_raw(
        self,
        loop_id: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> RawPage:
        """Samples with start <= time < end, oldest first, at most ``limit`` per page."""
        ...

    async def query_raw_many(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, RawSeries]:
        """All samples of several loops with start <= time < end (batched reads for workers).

        This is also "what arrived since watermark W" for the aggregation poller: it asks for
        ``start = W - lateness allowance``.
        """
        ...

    async def latest(self, loop_id: str, fields: Sequence[str] | None = None) -> LatestPoint | None:
        """Most recent value per field (each with its own time); None when the loop has no data."""
        ...

    async def time_range(self, loop_id: str) -> TimeRange | None:
        """Earliest and latest sample time of a loop; None when it has no data."""
        ...

    async def discover_loops(self) -> list[str]:
        """Every loop id present in the store, sorted."""
        ...

    async def aggregate(
        self, loop_id: str, start: datetime, end: datetime, interval_s: int
    ) -> IntervalAggregate:
        """Per-interval statistics computed by the backend itself (bucket start, UTC)."""
        ...

    async def ping(self) -> bool:
        """True when the backend answers."""
        ...

    async def close(self) -> None: ...


MINUTE_NS = 60_000_000_000
NOT_COUNTED = -1
"""A :class:`MinuteCounts` column the store did not count."""


@dataclass(frozen=True)
class MinuteCounts:
    """Samples per minute of one loop: how many carry PV, SP and OP (minutes without any absent).

    ``bucket_ns`` holds the minutes' starts (Unix epoch grid), ascending. A store may leave SP
    and OP uncounted (:data:`NOT_COUNTED`) when counting them costs as much as PV again.
    """

    loop_id: str
    bucket_ns: IntArray
    pv: IntArray
    sp: IntArray
    op: IntArray

    @classmethod
    def empty(cls, loop_id: str) -> MinuteCounts:
        nothing = np.empty(0, dtype=np.int64)
        return cls(loop_id, nothing, nothing.copy(), nothing.copy(), nothing.copy())

    @classmethod
    def of_series(cls, series: RawSeries) -> MinuteCounts:
        """Counts of raw samples (what a store without a count query falls back to)."""
        if not len(series):
            return cls.empty(series.loop_id)
        minute = series.t_ns // MINUTE_NS * MINUTE_NS
        buckets, inverse = np.unique(minute, return_inverse=True)
        columns = [
            np.bincount(inverse, weights=~np.isnan(values), minlength=buckets.size).astype(np.int64)
            for values in (series.pv, series.sp, series.op)
        ]
        return cls(series.loop_id, buckets.astype(np.int64), *columns)


@runtime_checkable
class MinuteCounter(Protocol):
    """A store that counts samples per loop and minute itself (cheaper than reading them)."""

    async def minute_counts(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, MinuteCounts]:
        """Per-minute counts of PV, SP and OP in ``[start, end)`` (minute-aligned), per loop."""
        ...


async def count_minutes(
    store: TimeSeriesStore, loop_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, MinuteCounts]:
    """:meth:`MinuteCounter.minute_counts` when the store has it, else counted from raw reads."""
    if isinstance(store, MinuteCounter):
        return await store.minute_counts(loop_ids, start, end)
    raw = await store.query_raw_many(loop_ids, start, end)
    return {loop_id: MinuteCounts.of_series(series) for loop_id, series in raw.items()}


SampleTotals = tuple[int, int, int]
"""Samples carrying PV, SP and OP over a window (:data:`NOT_COUNTED` where not counted)."""


@runtime_checkable
class SampleTotaller(Protocol):
    """A store that counts each loop's samples over a window in one number per field."""

    async def sample_totals(
        self, loop_ids: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, SampleTotals]:
        """Samples carrying PV, SP and OP in ``[start, end)`` per loop (loops without any
        absent); the fields :meth:`MinuteCounter.minute_counts` leaves uncounted are too."""
        ...

    async def retention_period(self) -> timedelta | None:
        """How long the store keeps a sample before its retention may remove it (None: for
        ever). Totals equal over a window mean equal minutes only where nothing was removed."""
        ...


@runtime_checkable
class LatestManyReader(Protocol):
    """A store that answers the newest values of many loops in one query."""

    async def latest_many(self, loop_ids: Sequence[str]) -> dict[str, LatestPoint]:
        """Newest PV, SP, OP and Mode of each loop (loops without data are absent)."""
        ...


async def latest_of_many(store: TimeSeriesStore, loop_ids: Sequence[str]) -> dict[str, LatestPoint]:
    """:meth:`LatestManyReader.latest_many` when the store has it, else one query per loop."""
    if isinstance(store, LatestManyReader):
        return await store.latest_many(loop_ids)
    found: dict[str, LatestPoint] = {}
    for loop_id in loop_ids:
        point = await store.latest(loop_id)
        if point is not None:
            found[loop_id] = point
    return found
