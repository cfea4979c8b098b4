"""Timestamps of historian exports: ISO 8601 and the common historian text formats to UTC ns.

The format is chosen once per file from its first rows (:func:`detect_time_parser`), then every
batch is converted with Arrow compute kernels. Accepted:

* ISO 8601 with a zone (``2024-03-01T10:00:00.5Z``, ``2024-03-01 11:00:00+01:00``);
* ISO 8601 without a zone, and the historian formats ``31.12.2024 23:59:59``,
  ``12/31/2024 23:59:59``, ``12/31/2024 11:59:59 PM``, ``31/12/2024 23:59:59``,
  ``2024/12/31 23:59:59``, ``31-Dec-2024 23:59:59`` (PI), ``31-Dec-24 23:59:59``, each with
  optional fractional seconds: these are local times and need a timezone (``--timezone``);
  a repeated hour when daylight saving time ends maps to its first occurrence, a skipped
  hour when it starts to the moment before;
* epoch numbers (seconds, milliseconds, microseconds or nanoseconds, by magnitude);
* Arrow/Parquet timestamp columns (naive ones need the timezone too).

``12/31/2024`` reads month first; a file whose first rows read both ways (``01/02/2024``) is
refused until ``--time-format`` says which (a strptime format like ``%d/%m/%Y %H:%M:%S``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

HISTORIAN_FORMATS: tuple[str, ...] = (
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",
    "%d/%m/%Y %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%d-%b-%Y %H:%M:%S",
    "%d-%b-%y %H:%M:%S",
    "%Y-%m-%d %H:%M",
)
_FRACTION = r"[.,](\d{1,9})(\s*[AaPp][Mm])?$"
_EPOCH = r"^\s*\d{9,19}(\.\d+)?\s*$"
_UTC = pa.timestamp("ns", "UTC")
_NAIVE = pa.timestamp("ns")

Kind = Literal["iso", "naive", "strptime", "epoch", "arrow"]


class TimeFormatError(ValueError):
    """The timestamps of a file cannot be read with any known format (or need a timezone)."""


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA timezone (``UTC``, ``Europe/Berlin``), else TimeFormatError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeFormatError(f"unknown timezone {name!r} (use an IANA name like UTC)") from None
    return name


@dataclass(frozen=True)
class TimeParser:
    """How one file's timestamps become UTC epoch nanoseconds."""

    kind: Kind
    time_format: str | None = None
    timezone: str | None = None
    epoch_scale: int = 1

    def parse(self, column: pa.Array | pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], np.ndarray]:
        """Epoch ns of each cell and a mask of the cells that parsed (False: empty or invalid)."""
        if self.kind == "arrow":
            return _from_arrow(column, self.timezone)
        text = pc.utf8_trim_whitespace(column.cast(pa.string()))
        if self.kind == "epoch":
            ok = pc.fill_null(pc.match_substring_regex(text, _EPOCH), False)
            seconds = pc.cast(pc.if_else(ok, text, "0"), pa.float64()).to_numpy(
                zero_copy_only=False
            )
            if self.epoch_scale == 1:
                ns = (seconds * 1e9).astype(np.int64)
            else:
                ns = (seconds * (1e9 / self.epoch_scale)).astype(np.int64)
            return ns, ok.to_numpy(zero_copy_only=False)
        if self.kind == "iso":
            stamps = _cast_each(text, _UTC)
        elif self.kind == "naive":
            stamps = _cast_each(text, _NAIVE)
        else:
            assert self.time_format is not None
            stamps = _strptime(text, self.time_format)
        if self.kind != "iso":
            assert self.timezone is not None
            stamps = pc.assume_timezone(
                stamps, self.timezone, ambiguous="earliest", nonexistent="earliest"
            )
        ok = pc.is_valid(stamps).to_numpy(zero_copy_only=False)
        ns = pc.fill_null(pc.cast(stamps, pa.int64()), 0).to_numpy(zero_copy_only=False)
        return ns.astype(np.int64, copy=False), ok


def _from_arrow(column: pa.Array | pa.ChunkedArray, timezone: str | None) -> tuple[
    npt.NDArray[np.int64], np.ndarray
]:  # fmt: skip
    stamps = pc.cast(column, pa.timestamp("ns", column.type.tz))
    if column.type.tz is None:
        assert timezone is not None
        stamps = pc.assume_timezone(stamps, timezone, ambiguous="earliest", nonexistent="earliest")
    ok = pc.is_valid(stamps).to_numpy(zero_copy_only=False)
    ns = pc.fill_null(pc.cast(stamps, pa.int64()), 0).to_numpy(zero_copy_only=False)
    return ns.astype(np.int64, copy=False), ok


def _cast_each(text: pa.Array | pa.ChunkedArray, target: pa.DataType) -> pa.Array:
    """Cast ISO strings; when one fails, cast cell by cell so only the bad cells become null."""
    try:
        return pc.cast(text, target)
    except pa.ArrowInvalid:
        pass
    cells: list[object] = []
    for value in text.to_pylist():
        try:
            cells.append(pc.cast(pa.scalar(value, pa.string()), target).as_py())
        except (pa.ArrowInvalid, TypeError):
            cells.append(None)
    return pa.array(cells, target)


def _strptime(text: pa.Array | pa.ChunkedArray, time_format: str) -> pa.Array:
    """strptime with optional fractional seconds (``.123`` or ``,123``) before an AM/PM."""
    whole = pc.replace_substring_regex(text, _FRACTION, r"\2")
    stamps = pc.strptime(whole, format=time_format, unit="ns", error_is_null=True)
    digits = pc.struct_field(pc.extract_regex(text, r"[.,](?P<d>\d{1,9})(?:\s*[AaPp][Mm])?$"), [0])
    fraction = pc.fill_null(pc.cast(pc.utf8_rpad(digits, 9, "0"), pa.int64()), 0)
    return pc.cast(pc.add(pc.cast(stamps, pa.int64()), fraction), _NAIVE)


def _share_parsed(parser: TimeParser, sample: pa.Array) -> float:
    try:
        return float(parser.parse(sample)[1].mean())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TimeFormatError):
        return 0.0


def detect_time_parser(
    sample: pa.Array | pa.ChunkedArray, *, time_format: str | None, timezone: str | None
) -> TimeParser:
    """Choose the parser every cell of ``sample`` (the first rows of a file) reads with."""
    values = sample.drop_null() if isinstance(sample, pa.Array) else pa.concat_arrays(
        [chunk.drop_null() for chunk in sample.chunks]
    )  # fmt: skip
    if timezone is not None:
        check_timezone(timezone)
    need_zone = (
        "timestamps have no timezone: pass --timezone (the historian's zone, e.g. "
        "Europe/Berlin, or UTC)"
    )
    if pa.types.is_timestamp(values.type):
        if values.type.tz is None and timezone is None:
            raise TimeFormatError(need_zone)
        return TimeParser("arrow", timezone=timezone)
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        values = pc.cast(values, pa.string())
    if len(values) == 0:
        raise TimeFormatError("no timestamps in the first rows")
    if time_format is not None:
        if timezone is None:
            raise TimeFormatError(need_zone)
        parser = TimeParser("strptime", time_format=time_format, timezone=timezone)
        if _share_parsed(parser, values) < 0.5:
            first = values[0].as_py()
            raise TimeFormatError(f"{first!r} does not match --time-format {time_format!r}")
        return parser
    epoch = pc.match_substring_regex(values, _EPOCH)
    if pc.mean(pc.cast(epoch, pa.float64())).as_py() >= 0.5:
        numbers = pc.cast(pc.filter(values, epoch), pa.float64())
        magnitude = float(pc.max(numbers).as_py())
        scale = next(s for limit, s in ((1e11, 1), (1e14, 1000), (1e17, 10**6), (1e30, 10**9))
                     if magnitude < limit)  # fmt: skip
        return TimeParser("epoch", epoch_scale=scale)
    # the format most of the first rows read with (a few bad cells are reported one by one)
    candidates = [TimeParser("iso"), TimeParser("naive", timezone="UTC")] + [
        TimeParser("strptime", time_format=f, timezone="UTC") for f in HISTORIAN_FORMATS
    ]
    shares = [_share_parsed(parser, values) for parser in candidates]
    best = max(shares)
    if best < 0.5:
        first = values[0].as_py()
        raise TimeFormatError(
            f"timestamp {first!r} has no known format: use ISO 8601 or pass --time-format "
            "(a strptime format such as '%d.%m.%Y %H:%M:%S')"
        )
    matching = [p for p, share in zip(candidates, shares, strict=True) if share == best]
    formats = {parser.time_format for parser in matching}
    if {"%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S"} <= formats:
        raise TimeFormatError(
            f"timestamp {values[0].as_py()!r} reads day-first and month-first: pass "
            "--time-format '%d/%m/%Y %H:%M:%S' or '%m/%d/%Y %H:%M:%S'"
        )
    chosen = matching[0]
    if chosen.kind == "iso":
        return chosen
    if timezone is None:
        raise TimeFormatError(need_zone)
    return TimeParser(chosen.kind, time_format=chosen.time_format, timezone=timezone)


def format_ns(t_ns: int) -> str:
    """ISO 8601 UTC text of epoch nanoseconds (for reports)."""
    return datetime.fromtimestamp(t_ns / 1e9, ZoneInfo("UTC")).isoformat().replace("+00:00", "Z")
