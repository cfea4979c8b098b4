"""Columnar line protocol: the same points as the row encoder, whatever the modes hold."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from clpm_shared.timeseries.base import RawSeries, normalise_mode
from clpm_shared.timeseries.line_protocol import (
    encode_rows,
    encode_series,
    escape_key,
    escape_measurement,
)
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


def _lines_before_runs(measurement: str, series: RawSeries) -> bytes:
    """The encoder before runs were formatted once: every sample's key and fields in turn."""
    pv, sp, op = (np.asarray(v, dtype=np.float64) for v in (series.pv, series.sp, series.op))
    keep = np.isfinite(pv) | np.isfinite(sp) | np.isfinite(op)
    pv, sp, op = pv[keep], sp[keep], op[keep]
    if len(pv) == 0:
        return b""
    try:
        modes = pa.array(series.mode[keep], pa.string())
        names = pa.array([normalise_mode(m) for m in modes.to_pylist()], pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        names = pa.array([normalise_mode(m) for m in series.mode[keep].tolist()], pa.string())
    mode_text = pc.fill_null(pc.binary_join_element_wise(",Mode=", names, ""), "")
    parts = [
        pc.binary_join_element_wise(
            f"{name}=", pc.cast(pa.array(values, mask=np.isnan(values)), pa.string()), ""
        )
        for name, values in (("PV", pv), ("SP", sp), ("OP", op))
    ]
    fields = pc.binary_join_element_wise(*parts, ",", null_handling="skip")
    times = pc.cast(pa.array(series.t_ns[keep], pa.int64()), pa.string())
    lines = pc.binary_join_element_wise(
        escape_measurement(measurement), mode_text, f",loop_id={escape_key(series.loop_id)} ",
        fields, " ", times, "\n", "",
    )  # fmt: skip
    return "".join(lines.to_pylist()).encode()


def _random_series(rng: np.random.Generator, n: int, run: int) -> RawSeries:
    """Fields that hold still for runs of about ``run`` samples (or move every sample), NaN,
    infinities, -0.0 next to 0.0, and modes valid, padded, malformed, missing and not text."""

    def column() -> np.ndarray:
        kind = rng.integers(0, 5)
        if kind == 0:  # moves every sample, at all magnitudes
            values = rng.normal(0, 10.0 ** rng.integers(-8, 12), n)
        elif kind == 1:  # steps
            values = np.repeat(rng.normal(50, 20, n // run + 1).round(2), run)[:n]
        elif kind == 2:  # a whole column missing
            values = np.full(n, np.nan)
        elif kind == 3:
            values = np.full(n, rng.choice([0.0, -0.0, 1.0, 1e300, 5e-324]))
        else:  # zero, now and then of the other sign
            values = rng.choice([0.0, -0.0], n, p=[0.995, 0.005])
        holes = rng.random(n) < rng.choice([0.0, 0.001, 0.05])
        values[holes] = rng.choice([np.nan, np.inf, -np.inf, -0.0, 0.0], holes.sum())
        return values

    choices = np.array(["AUT", "MAN", " CAS ", "", "not a mode", None, 3, float("nan")], object)
    weights = rng.dirichlet(np.ones(len(choices)))
    mode = np.repeat(rng.choice(choices, n // run + 1, p=weights), run)[:n]
    t_ns = 1_790_000_000_000_000_000 + np.cumsum(rng.integers(1, 3_000_000_000, n))
    loop_id = rng.choice(["FIC1", "a.b:c-d/e_f", "9"])
    return RawSeries(loop_id, t_ns.astype(np.int64), column(), column(), column(), mode)


def _infinities_missing(series: RawSeries) -> RawSeries:
    """``series`` with +-inf as NaN: what the encoder writes for an infinite field (nothing)."""
    pv, sp, op = (np.where(np.isinf(v), np.nan, v) for v in (series.pv, series.sp, series.op))
    return RawSeries(series.loop_id, series.t_ns, pv, sp, op, series.mode)


@pytest.mark.parametrize("run", [1, 3, 64, 500, 5000])
def test_series_bytes_equal_the_sample_by_sample_encoder_on_random_blocks(run: int) -> None:
    rng = np.random.default_rng(run)
    for _ in range(30):
        series = _random_series(rng, int(rng.integers(1, 4000)), run)
        for measurement in ("process", "proc ess,x=1"):
            assert encode_series(measurement, series) == (
                _lines_before_runs(measurement, _infinities_missing(series)),
                int(
                    (np.isfinite(series.pv) | np.isfinite(series.sp) | np.isfinite(series.op)).sum()
                ),
            )


def test_a_set_point_that_holds_still_is_written_on_every_line() -> None:
    n = 200
    series = RawSeries(
        "FIC1", np.arange(n, dtype=np.int64), np.linspace(0.5, 1.5, n), np.full(n, 50.0),
        np.full(n, -0.0), np.array(["AUT"] * 100 + ["MAN"] * 100, dtype=object),
    )  # fmt: skip
    lines = encode_series("process", series)[0].decode().splitlines()
    assert len(lines) == n
    assert lines[0] == "process,Mode=AUT,loop_id=FIC1 PV=0.5,SP=50,OP=-0 0"
    assert lines[-1] == "process,Mode=MAN,loop_id=FIC1 PV=1.5,SP=50,OP=-0 199"


def test_an_infinite_value_is_left_out_and_the_sample_keeps_its_finite_fields() -> None:
    """influxd refuses a line with ``inf`` (and loses its finite fields with it)."""
    series = RawSeries(
        "FIC1", np.arange(3, dtype=np.int64), np.array([np.inf, 1.0, -np.inf]),
        np.array([50.0, np.inf, np.nan]), np.array([2.0, 3.0, -np.inf]),
        np.array(["AUT"] * 3, dtype=object),
    )  # fmt: skip
    encoded, count = encode_series("process", series)
    assert encoded.decode().splitlines() == [
        "process,Mode=AUT,loop_id=FIC1 SP=50,OP=2 0",
        "process,Mode=AUT,loop_id=FIC1 PV=1,OP=3 1",
    ]
    assert count == 2
