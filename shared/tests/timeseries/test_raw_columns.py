"""Raw columns from backend rows: values of the wrong type become missing, never an error."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from clpm_shared.timeseries.raw_columns import float_column, series_from_columns


def test_numbers_and_none_convert_directly() -> None:
    np.testing.assert_array_equal(float_column([1, 2.5, None], "L1", "PV"), [1.0, 2.5, np.nan])


def test_a_string_or_boolean_value_becomes_missing_and_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        series = series_from_columns(
            "L1", [1, 2, 3, 4], ["n/a", 2.0, True, None], [1.0] * 4, [2.0] * 4, ["AUT"] * 4
        )
    np.testing.assert_array_equal(series.pv, [np.nan, 2.0, np.nan, np.nan])
    np.testing.assert_array_equal(series.sp, [1.0] * 4)
    [record] = [r for r in caplog.records if "wrong type" in r.getMessage()]
    assert record.count == 2  # type: ignore[attr-defined]
    assert record.field == "PV"  # type: ignore[attr-defined]
