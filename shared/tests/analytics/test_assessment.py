"""Period roll-up of window verdicts: shares, persistence, worst window, main problem."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from clpm_shared.analytics.assessment import WindowRating, assess_period

START = datetime(2026, 1, 5, tzinfo=UTC)
Q = timedelta(minutes=15)


def _day(
    statuses: list[tuple[str, float | None, str | None, dict[str, float]]],
) -> list[WindowRating]:
    return [
        WindowRating(START + i * Q, START + (i + 1) * Q, status, health, main, findings)
        for i, (status, health, main, findings) in enumerate(statuses)
    ]


def test_steady_fault_over_a_day_is_the_main_problem() -> None:
    sticky = ("poor", 50.0, "stiction", {"stiction": 0.6})
    good = ("good", 90.0, None, {})
    ratings = _day([sticky] * 80 + [good] * 16)
    result = assess_period(ratings, START, START + 96 * Q)
    assert result.main_problem == "stiction"
    assert result.status_shares["poor"] == pytest.approx(80 / 96, abs=1e-4)
    assert result.health_score == pytest.approx((80 * 50 + 16 * 90) / 96, abs=0.01)
    assert result.status == "poor"
    assert result.findings[0].category == "stiction"
    assert result.findings[0].persistence == pytest.approx(80 / 96, abs=1e-4)
    assert result.findings[0].mean_severity == pytest.approx(0.6)
    assert (result.windows_assessed, result.windows_total) == (96, 96)


def test_one_bad_window_does_not_make_a_bad_day() -> None:
    ratings = _day(
        [("good", 92.0, None, {})] * 95 + [("poor", 20.0, "saturation", {"saturation": 0.9})]
    )
    result = assess_period(ratings, START, START + 96 * Q)
    assert result.status == "good"
    assert result.main_problem is None
    assert result.findings == ()
    assert result.worst_window is not None
    assert result.worst_window.health_score == 20.0
    assert result.worst_window.start == START + 95 * Q


def test_main_problem_by_persistence_times_severity() -> None:
    ratings = _day(
        [("fair", 70.0, "sluggish_tuning", {"sluggish_tuning": 0.3})] * 60
        + [("poor", 40.0, "saturation", {"saturation": 0.9})] * 36
    )
    # sluggish: 0.625 x 0.3 = 0.19; saturation: 0.375 x 0.9 = 0.34
    assert assess_period(ratings, START, START + 96 * Q).main_problem == "saturation"


def test_period_with_a_main_problem_is_not_good() -> None:
    ratings = _day(
        [("fair", 75.0, "stiction", {"stiction": 0.1})] * 30 + [("good", 95.0, None, {})] * 66
    )
    result = assess_period(ratings, START, START + 96 * Q)
    assert result.main_problem == "stiction"
    assert result.status == "fair"
    assert result.health_score == 79.0


def test_half_the_windows_missing_is_not_assessed() -> None:
    ratings = _day([("not_assessed", None, None, {})] * 40 + [("good", 90.0, None, {})] * 40)
    result = assess_period(ratings, START, START + 96 * Q)
    assert result.status == "not_assessed"
    assert result.health_score is None
    assert result.main_problem is None
    assert result.status_shares["offline"] == pytest.approx(16 / 96, abs=1e-4)
    assert (result.windows_assessed, result.windows_total) == (40, 96)


def test_no_windows_at_all_is_offline() -> None:
    result = assess_period([], START, START + 96 * Q)
    assert result.status == "offline"
    assert result.status_shares["offline"] == 1.0


def test_windows_outside_the_period_are_ignored_and_shares_sum_to_one() -> None:
    ratings = _day([("good", 90.0, None, {})] * 8 + [("fair", 65.0, None, {})] * 8)
    result = assess_period(ratings, START + 4 * Q, START + 12 * Q)
    assert result.status_shares["good"] == pytest.approx(0.5)
    assert result.status_shares["fair"] == pytest.approx(0.5)
    assert sum(result.status_shares.values()) == pytest.approx(1.0)
    assert result.windows_total == 8


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"min_assessed_share": 1.5}, "min_assessed_share"),
        ({"min_persistence": -0.1}, "min_persistence"),
    ],
)
def test_invalid_parameters_are_named(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        assess_period([], START, START + Q, **kwargs)


def test_to_dict_is_json_ready() -> None:
    ratings = _day([("poor", 50.0, "stiction", {"stiction": 0.6})] * 4)
    text = json.dumps(assess_period(ratings, START, START + 4 * Q).to_dict())
    assert '"main_problem": "stiction"' in text
