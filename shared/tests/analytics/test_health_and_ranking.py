"""Health score, bad-actor ranking, unit/plant roll-up and APC attainment."""

from __future__ import annotations

import numpy as np
import pytest

from clpm_shared.analytics import (
    KpiResult,
    LoopConfig,
    LoopHealth,
    LoopWindow,
    apc_attainment,
    bad_actor_value,
    health_score,
    rank_bad_actors,
    roll_up,
    roll_up_by,
)
from clpm_shared.analytics.health import THRESHOLDS, piecewise_score, status_of


def healthy_kpis(**changes: object) -> KpiResult:
    base: dict[str, object] = {
        "source": "raw",
        "samples": 900,
        "service_factor": 1.0,
        "saturation": 0.0,
        "error_std_pct": 0.5,
        "variability_index": 5.0,
        "harris_index": 0.8,
        "harris_assumed_delay": False,
        "op_reversals_per_hour": 20.0,
        "oscillating": False,
        "dq_completeness": 1.0,
        "dq_flatline": False,
        "dq_out_of_range": 0.0,
        "dq_repeated": 0.0,
    }
    base.update(changes)
    return KpiResult(**base)  # type: ignore[arg-type]


def test_piecewise_map_interpolates_and_holds_the_ends() -> None:
    points = ((0.0, 100.0), (10.0, 50.0), (20.0, 0.0))
    assert piecewise_score(5.0, points) == pytest.approx(75.0)
    assert piecewise_score(-3.0, points) == 100.0
    assert piecewise_score(30.0, points) == 0.0


def test_thresholds_exist_for_every_loop_type_and_are_ascending() -> None:
    for loop_type, table in THRESHOLDS.items():
        for name, points in table.items():
            xs = [x for x, _ in points]
            assert xs == sorted(xs), (loop_type, name)


def test_healthy_loop_is_good_without_a_main_problem() -> None:
    result = health_score(healthy_kpis(), LoopConfig(loop_type="flow"))
    assert result.score == pytest.approx(100.0)
    assert result.status == "good"
    assert result.main_problem is None
    assert set(result.sub_scores) >= {"service_factor", "saturation", "oscillation"}


def test_status_thresholds() -> None:
    assert status_of(80.0) == "good"
    assert status_of(79.99) == "fair"
    assert status_of(60.0) == "fair"
    assert status_of(59.99) == "poor"
    assert status_of(None) == "offline"


def test_loop_in_manual_cannot_be_healthy() -> None:
    result = health_score(healthy_kpis(service_factor=0.5), LoopConfig())
    assert result.score == 0.0
    assert result.status == "poor"
    assert result.main_problem == "service_factor"


def test_bad_data_caps_the_score() -> None:
    result = health_score(healthy_kpis(dq_completeness=0.7), LoopConfig())
    assert result.score == pytest.approx(40.0)  # completeness 0.7 maps to 40
    assert result.main_problem == "data_quality"


def test_oscillation_lowers_health_more_for_a_temperature_than_a_level_loop() -> None:
    kpis = healthy_kpis(oscillating=True, osc_amplitude=2.0, osc_period_s=120.0)
    level = health_score(kpis, LoopConfig(loop_type="level"))
    temperature = health_score(kpis, LoopConfig(loop_type="temperature"))
    assert level.score is not None
    assert temperature.score is not None
    assert temperature.score < level.score < 100.0
    assert temperature.main_problem == "oscillation"


def test_saturation_is_named_before_its_symptoms() -> None:
    kpis = healthy_kpis(saturation=0.4, harris_index=0.01, error_std_pct=12.0)
    assert health_score(kpis, LoopConfig()).main_problem == "saturation"


def test_empty_window_is_offline() -> None:
    result = health_score(KpiResult(source="raw", samples=0), LoopConfig())
    assert result.score is None
    assert result.status == "offline"


def test_bad_actor_value_is_health_gap_times_criticality() -> None:
    assert bad_actor_value(70.0, 4) == pytest.approx(120.0)


def test_bad_actors_are_ranked_worst_first_and_offline_loops_are_left_out() -> None:
    loops = [
        LoopHealth("A", 90.0, "good", criticality=5),  # 50
        LoopHealth("B", 40.0, "poor", criticality=1),  # 60
        LoopHealth("C", 70.0, "fair", criticality=3),  # 90
        LoopHealth("D", None, "offline", criticality=5),
    ]
    ranked = rank_bad_actors(loops)
    assert [(r.position, r.loop.loop_id, r.rank_value) for r in ranked] == [
        (1, "C", 90.0),
        (2, "B", 60.0),
        (3, "A", 50.0),
    ]
    assert [r.loop.loop_id for r in rank_bad_actors(loops, limit=1)] == ["C"]


def test_roll_up_is_criticality_weighted_with_counts_per_status() -> None:
    loops = [
        LoopHealth("A", 90.0, "good", criticality=1, unit="U1"),
        LoopHealth("B", 60.0, "fair", criticality=2, unit="U1"),
        LoopHealth("C", 30.0, "poor", criticality=1, unit="U2"),
        LoopHealth("D", None, "offline", criticality=5, unit="U2"),
    ]
    plant = roll_up(loops)
    assert plant.score == pytest.approx((90 + 120 + 30) / 4)
    assert plant.loops == 4
    assert plant.counts == {"good": 1, "fair": 1, "poor": 1, "offline": 1, "not_assessed": 0}
    units = roll_up_by(loops, lambda h: h.unit)
    assert units["U1"].score == pytest.approx(70.0)
    assert units["U2"].score == pytest.approx(30.0)
    assert units["U2"].counts["offline"] == 1


def test_roll_up_of_offline_loops_has_no_score() -> None:
    assert roll_up([LoopHealth("A", None, "offline")]).score is None


def test_apc_attainment_splits_the_window_into_counted_reasons() -> None:
    modes = ["CAS"] * 6 + ["AUT", "AUT", "", "CAS"]
    op = [50.0, 50.0, 50.0, 100.0, 0.2, 60.0, 50.0, 50.0, 50.0, 50.0]
    pv = [1.0] * 9 + [np.nan]
    window = LoopWindow(np.arange(10.0), np.array(pv), np.ones(10), np.array(op), modes, 1.0)
    result = apc_attainment(window, LoopConfig(apc_enabled=True))
    assert result.samples == 10
    assert result.attainment == pytest.approx(0.4)
    assert result.wrong_mode_share == pytest.approx(0.2)
    assert result.saturated_share == pytest.approx(0.2)
    assert result.bad_data_share == pytest.approx(0.2)
    assert set(result.to_row()) == {
        "samples",
        "attainment",
        "wrong_mode_share",
        "saturated_share",
        "bad_data_share",
    }


def test_apc_modes_are_per_loop() -> None:
    window = LoopWindow(np.arange(4.0), np.ones(4), np.ones(4), np.full(4, 50.0), ["AUT"] * 4, 1.0)
    assert apc_attainment(window, LoopConfig()).attainment == 0.0
    assert apc_attainment(window, LoopConfig(apc_modes={"AUT"})).attainment == 1.0


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"op_lo": 10.0, "op_hi": 5.0}, "op_hi"),
        ({"criticality": 6}, "criticality"),
        ({"loop_type": "speed"}, "loop_type"),
        ({"pv_lo": 5.0, "pv_hi": 1.0}, "pv_hi"),
        ({"deadband": -1.0}, "deadband"),
        ({"normal_modes": "AUT"}, "normal_modes"),
    ],
)
def test_invalid_loop_config_names_the_field(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(ValueError, match=parameter):
        LoopConfig(**kwargs)  # type: ignore[arg-type]


def test_loop_config_from_a_row_uses_defaults_for_nulls() -> None:
    config = LoopConfig.from_mapping(
        {"loop_id": "FIC101", "normal_modes": None, "sat_margin": None, "criticality": 5}
    )
    assert config.normal_modes == frozenset({"AUT", "AUTO", "CAS"})
    assert config.effective_sat_margin == pytest.approx(0.5)
    assert config.effective_deadband == pytest.approx(0.2)
    assert config.criticality == 5
