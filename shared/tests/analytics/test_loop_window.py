"""LoopWindow: raw samples onto a uniform grid by last-value hold, and 1-minute aggregates."""

from __future__ import annotations

import numpy as np
import pytest

from clpm_shared.analytics import LoopWindow

T0 = 1_700_000_000.0


def test_raw_samples_are_held_onto_the_grid() -> None:
    t = T0 + np.array([0.0, 2.5, 3.0])
    window = LoopWindow.from_raw(
        t,
        [1.0, 2.0, 3.0],
        [5.0, 5.0, 6.0],
        [10.0, 11.0, 12.0],
        ["AUT", "AUT", "MAN"],
        start=T0,
        end=T0 + 5,
        ts=1.0,
    )
    np.testing.assert_array_equal(window.t, T0 + np.arange(5.0))
    np.testing.assert_array_equal(window.pv, [1.0, 1.0, 1.0, 3.0, 3.0])
    np.testing.assert_array_equal(window.sp, [5.0, 5.0, 5.0, 6.0, 6.0])
    np.testing.assert_array_equal(window.mode, ["AUT", "AUT", "AUT", "MAN", "MAN"])
    assert window.source == "raw"
    assert window.ts == 1.0


def test_gaps_longer_than_max_gap_stay_missing() -> None:
    t = T0 + np.array([0.0, 10.0])
    window = LoopWindow.from_raw(
        t, [1.0, 2.0], [1.0, 2.0], [1.0, 2.0], ["AUT", "AUT"], start=T0, end=T0 + 12, ts=1.0
    )
    # default max_gap = 5·ts: held for 5 s, missing from 6 s to 9 s
    expected = [1.0] * 6 + [np.nan] * 4 + [2.0, 2.0]
    np.testing.assert_array_equal(window.pv, expected)
    np.testing.assert_array_equal(window.mode[6:10], [""] * 4)


def test_max_gap_can_be_set() -> None:
    t = T0 + np.array([0.0, 10.0])
    window = LoopWindow.from_raw(
        t, [1.0, 2.0], [1.0, 2.0], [1.0, 2.0], None, start=T0, end=T0 + 12, ts=1.0, max_gap=2.0
    )
    assert np.isnan(window.pv).sum() == 7


def test_each_field_is_held_from_its_own_last_value() -> None:
    t = T0 + np.array([0.0, 1.0, 2.0])
    window = LoopWindow.from_raw(
        t,
        [1.0, np.nan, np.nan],
        [5.0, 6.0, np.nan],
        [7.0, 8.0, 9.0],
        ["AUT"] * 3,
        start=T0,
        end=T0 + 3,
        ts=1.0,
    )
    np.testing.assert_array_equal(window.pv, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(window.sp, [5.0, 6.0, 6.0])
    np.testing.assert_array_equal(window.op, [7.0, 8.0, 9.0])


def test_a_sample_before_the_window_seeds_the_hold() -> None:
    window = LoopWindow.from_raw(
        [T0 - 2.0], [4.0], [4.0], [4.0], ["AUT"], start=T0, end=T0 + 5, ts=1.0
    )
    np.testing.assert_array_equal(window.pv, [4.0, 4.0, 4.0, 4.0, np.nan])
    assert window.fresh is not None
    assert not window.fresh.any()


def test_fresh_marks_grid_points_that_received_a_new_pv_sample() -> None:
    t = T0 + np.array([0.0, 1.0, 2.0, 5.0])
    window = LoopWindow.from_raw(
        t,
        [1.0, 2.0, 3.0, 4.0],
        [0.0] * 4,
        [0.0] * 4,
        ["AUT"] * 4,
        start=T0,
        end=T0 + 10,
        ts=1.0,
    )
    assert window.fresh is not None
    np.testing.assert_array_equal(np.flatnonzero(window.fresh), [0, 1, 2, 5])
    assert window.last_sample_t == T0 + 5.0
    assert window.end == T0 + 10.0


def test_agg_1m_means_are_placed_on_the_minute_grid() -> None:
    buckets = T0 + np.array([0.0, 60.0, 180.0])
    window = LoopWindow.from_agg_1m(
        buckets,
        [1.0, 2.0, 4.0],
        [1.0, 1.0, 1.0],
        [5.0, 5.0, 5.0],
        ["AUT", "AUT", "MAN"],
        start=T0,
        end=T0 + 300,
    )
    assert window.source == "agg_1m"
    assert window.ts == 60.0
    np.testing.assert_array_equal(window.pv, [1.0, 2.0, np.nan, 4.0, np.nan])
    np.testing.assert_array_equal(window.mode, ["AUT", "AUT", "", "MAN", ""])


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"t": [T0 + 1, T0]}, "t"),
        ({"pv": [1.0]}, "pv"),
        ({"end": T0}, "end"),
        ({"ts": 0.0}, "ts"),
        ({"max_gap": -1.0}, "max_gap"),
        ({"mode": ["AUT"]}, "mode"),
    ],
)
def test_bad_raw_input_is_rejected_naming_the_parameter(
    kwargs: dict[str, object], parameter: str
) -> None:
    arguments: dict[str, object] = {
        "t": [T0, T0 + 1],
        "pv": [1.0, 2.0],
        "sp": [1.0, 2.0],
        "op": [1.0, 2.0],
        "mode": ["AUT", "AUT"],
        "start": T0,
        "end": T0 + 10,
        "ts": 1.0,
        "max_gap": None,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=parameter):
        LoopWindow.from_raw(  # type: ignore[arg-type]
            arguments.pop("t"),
            arguments.pop("pv"),
            arguments.pop("sp"),
            arguments.pop("op"),
            arguments.pop("mode"),
            **arguments,
        )


def test_window_rejects_an_unknown_source() -> None:
    with pytest.raises(ValueError, match="source"):
        LoopWindow(np.arange(3.0), np.zeros(3), np.zeros(3), np.zeros(3), ["AUT"] * 3, 1.0, "x")  # type: ignore[arg-type]
