"""Cells of exports: timestamps in ISO and historian formats, decimal comma, quality, modes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from clpm_shared.ingest.cells import good_quality, parse_modes, parse_numbers
from clpm_shared.ingest.timestamps import TimeFormatError, detect_time_parser

NS = 1_000_000_000
T0 = 1_709_287_200 * NS  # 2024-03-01T10:00:00Z


def _parse(values: list[str | None], timezone: str | None = None,
           time_format: str | None = None) -> tuple[list[int], list[bool]]:  # fmt: skip
    sample = pa.array([v for v in values if v], pa.string())
    parser = detect_time_parser(sample, time_format=time_format, timezone=timezone)
    ns, ok = parser.parse(pa.array(values, pa.string()))
    return ns.tolist(), ok.tolist()


@pytest.mark.parametrize(
    ("texts", "timezone"),
    [
        (["2024-03-01T10:00:00Z", "2024-03-01T10:00:00.25Z"], None),
        (["2024-03-01 11:00:00+01:00", "2024-03-01T11:00:00.25+01:00"], None),
        (["2024-03-01T11:00:00", "2024-03-01 11:00:00.25"], "Europe/Berlin"),
        (["01.03.2024 11:00:00", "01.03.2024 11:00:00,25"], "Europe/Berlin"),
        (["03/01/2024 10:00:00 AM", "03/01/2024 10:00:00.25 AM"], "UTC"),
        (["01-Mar-2024 10:00:00", "01-Mar-2024 10:00:00.250"], "UTC"),
        (["2024/03/01 05:00:00", "2024/03/01 05:00:00.25"], "America/New_York"),
    ],
)
def test_timestamp_formats_give_the_same_utc_instant(
    texts: list[str], timezone: str | None
) -> None:
    ns, ok = _parse(texts, timezone)
    assert ok == [True, True]
    assert ns == [T0, T0 + NS // 4]


def test_epoch_seconds_and_milliseconds_are_recognised() -> None:
    assert _parse(["1709287200", "1709287201"])[0] == [T0, T0 + NS]
    assert _parse(["1709287200000", "1709287200500"])[0] == [T0, T0 + NS // 2]


def test_naive_timestamps_need_a_timezone() -> None:
    with pytest.raises(TimeFormatError, match="--timezone"):
        _parse(["2024-03-01T10:00:00"])


def test_day_month_ambiguity_is_refused_until_a_format_is_given() -> None:
    with pytest.raises(TimeFormatError, match="day-first and month-first"):
        _parse(["01/03/2024 10:00:00"], "UTC")
    assert _parse(["01/03/2024 10:00:00"], "UTC", "%d/%m/%Y %H:%M:%S")[0] == [T0]


def test_unreadable_timestamps_are_marked_not_guessed() -> None:
    ns, ok = _parse(["2024-03-01T10:00:00Z", "yesterday", None, "2024-03-01T10:00:01Z"])
    assert ok == [True, False, False, True]
    assert ns[3] == T0 + NS
    with pytest.raises(TimeFormatError, match="no known format"):
        _parse(["yesterday"], "UTC")


def test_daylight_saving_fall_back_hour_maps_to_its_first_occurrence() -> None:
    ns, ok = _parse(["2024-10-27 02:30:00"], "Europe/Berlin")
    assert ok == [True]
    assert ns == [1_729_989_000 * NS]  # 00:30 UTC (CEST, +02:00)


def test_decimal_comma_numbers_and_status_texts() -> None:
    column = pa.array(["1,5", "-2,25e1", "", "Bad Input", "I/O Timeout", "abc", "NaN", None])
    values, bad, invalid = parse_numbers(column, decimal_comma=True)
    np.testing.assert_array_equal(values[:2], [1.5, -22.5])
    assert np.isnan(values[2:]).all()
    assert bad.tolist() == [False, False, False, True, True, False, True, False]
    assert invalid.tolist() == [False, False, False, False, False, True, False, False]


def test_clean_numbers_have_no_bad_or_invalid_cells() -> None:
    values, bad, invalid = parse_numbers(pa.array(["1.5", "2", ".5"]), decimal_comma=False)
    assert values.tolist() == [1.5, 2.0, 0.5]
    assert not bad.any()
    assert not invalid.any()


def test_quality_texts_and_opc_codes() -> None:
    column = pa.array(["Good", "good_LocalOverride", "", "OK", "Bad", "Uncertain", "192", "216",
                       "0", "Bad_CommFailure", None])  # fmt: skip
    assert good_quality(column).tolist() == [
        True, True, True, True, False, False, True, True, False, False, True
    ]  # fmt: skip
    assert good_quality(pa.array([192, 0, 64, 255])).tolist() == [True, False, False, True]


def test_modes_through_the_map_or_the_usual_spellings() -> None:
    codes, unknown = parse_modes(pa.array(["0", "1", "2", "7", ""]), {"0": "MAN", "1": "AUT",
                                                                        "2": "CAS"})  # fmt: skip
    assert codes.tolist() == [1, 0, 2, -1, -1]
    assert unknown.tolist() == [False, False, False, True, False]
    codes, unknown = parse_modes(pa.array(["auto", "MAN", "Cascade", "hold"]), None)
    assert codes.tolist() == [0, 1, 2, -1]
    assert unknown.tolist() == [False, False, False, True]
    codes, _ = parse_modes(pa.array([1.0, 0.0]), {"0": "MAN", "1": "AUT"})
    assert codes.tolist() == [0, 1]
