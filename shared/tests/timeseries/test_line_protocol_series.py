"""Columnar line protocol: the same points as the row encoder, whatever the modes hold."""

import numpy as np

from clpm_shared.timeseries.base import RawSeries
from clpm_shared.timeseries.line_protocol import encode_rows, encode_series
from clpm_shared.timeseries.points import SampleRow

MODES = ["AUT", " MAN ", None, "", "not a mode", "CAS", "AUT"]


def _series(modes: list[object]) -> RawSeries:
    n = len(modes)
    pv = np.linspace(1.0, 2.0, n)
    pv[1] = np.nan
    return RawSeries(
        "FIC1", np.arange(n, dtype=np.int64) * 1_000_000_000, pv, np.full(n, 50.0),
        np.full(n, np.nan), np.array(modes, dtype=object),
    )  # fmt: skip


def _points(lines: list[str]) -> list[tuple[str, dict[str, float], int]]:
    """Series key, fields and time of each line (Arrow writes 1.0 as 1: the same float)."""
    points = []
    for line in lines:
        key, fields, t = line.split(" ")
        values = {name: float(value) for name, value in (f.split("=") for f in fields.split(","))}
        points.append((key, values, int(t)))
    return points


def _row_lines(series: RawSeries) -> list[str]:
    rows = [
        SampleRow(
            series.loop_id, int(t), None if np.isnan(pv) else float(pv), float(sp), None,
            mode.strip() if isinstance(mode, str) and mode.strip().isalnum() else None,
        )
        for t, pv, sp, mode in zip(series.t_ns, series.pv, series.sp, series.mode, strict=True)
    ]  # fmt: skip
    return encode_rows("process", rows)


def test_series_lines_equal_the_row_lines_with_unknown_modes_left_out() -> None:
    series = _series(MODES)
    body, count = encode_series("process", series)
    assert count == len(MODES)
    lines = body.decode().splitlines()
    assert _points(lines) == _points(_row_lines(series))
    assert _points(lines)[1] == ("process,Mode=MAN,loop_id=FIC1", {"SP": 50.0}, 1_000_000_000)


def test_modes_that_are_not_text_are_left_out_too() -> None:
    series = _series(["AUT", 3, None])
    lines = encode_series("process", series)[0].decode().splitlines()
    assert [line.split(" ")[0] for line in lines] == [
        "process,Mode=AUT,loop_id=FIC1", "process,loop_id=FIC1", "process,loop_id=FIC1",
    ]  # fmt: skip
