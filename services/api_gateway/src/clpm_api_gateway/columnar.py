"""Conversion of numpy columns to the JSON values of the columnar API (ISO times, NaN -> null)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt


def iso_times(t_ns: npt.NDArray[np.int64]) -> list[str]:
    """ISO-8601 UTC strings (``2025-01-10T10:00:00.000Z``) of epoch-nanosecond times."""
    if t_ns.size == 0:
        return []
    as_datetime: Any = t_ns.astype("datetime64[ns]")
    unit: Literal["ms", "us"] = "ms" if not np.any(t_ns % 1_000_000) else "us"
    return [f"{text}Z" for text in np.datetime_as_string(as_datetime, unit=unit)]


def iso_time(moment: datetime | None) -> str | None:
    """ISO-8601 UTC string of a datetime, with ``Z``; None stays None."""
    if moment is None:
        return None
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def float_values(values: npt.NDArray[Any]) -> list[float | None]:
    """Floats with NaN as None (JSON null)."""
    array = np.asarray(values, dtype=np.float64)
    missing = np.isnan(array)
    if not missing.any():
        listed: list[float | None] = array.tolist()
        return listed
    as_objects = array.astype(object)
    as_objects[missing] = None
    with_nulls: list[float | None] = as_objects.tolist()
    return with_nulls


def count_values(values: npt.NDArray[Any]) -> list[int]:
    """Counts as ints (NaN as 0)."""
    array = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    return [int(value) for value in array.tolist()]


def text_values(values: npt.NDArray[Any]) -> list[str | None]:
    return [value if isinstance(value, str) else None for value in values.tolist()]
