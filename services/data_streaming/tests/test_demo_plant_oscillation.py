"""The demo plant shows one true plant-wide oscillation: the sticky reflux valve and the loops
it disturbs, and no cluster of loops that merely share a period."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from clpm_shared.analytics import LoopConfig, LoopWindow
from clpm_shared.analytics.diagnosis import diagnose_loop
from clpm_shared.analytics.plant_oscillation import LoopSignal, cluster_oscillations
from clpm_shared.config import StreamingSettings
from clpm_shared.simulation import simulate_fleet
from data_streaming_service.catalogue import default_loop_specs

DEMO_PLANT = Path(__file__).resolve().parents[3] / "deploy" / "local" / "demo-plant.csv"
WARM_UP = 600


@pytest.mark.parametrize("hours", [1, 2])
def test_the_demo_plant_has_one_cluster_named_after_the_sticky_reflux_valve(hours: int) -> None:
    with DEMO_PLANT.open(newline="") as handle:
        catalogue = {row["loop_id"]: row for row in csv.DictReader(handle)}
    specs = default_loop_specs(StreamingSettings.model_fields["stream_seed"].default)
    n = WARM_UP + hours * 3600
    signals = []
    for spec, series in zip(specs, simulate_fleet(specs, n), strict=True):
        keep = slice(WARM_UP, None)
        row = catalogue[spec.loop_id]
        window = LoopWindow(
            t=1.7e9 + series.t[keep],
            pv=series.pv[keep],
            sp=series.sp[keep],
            op=series.op[keep],
            mode=series.mode[keep],
            ts=spec.ts,
        )
        config = LoopConfig(loop_type=row["loop_type"], dead_time_s=float(row["dead_time_s"]))
        diagnosis = diagnose_loop(window, config, loop_id=spec.loop_id)
        if diagnosis.oscillation is not None:
            manual = float(np.mean(series.mode[keep] == "MAN")) > 0.5
            error = series.pv[keep] if manual else series.sp[keep] - series.pv[keep]
            signals.append(LoopSignal(diagnosis.oscillation, error, row["unit"], row["area"]))
    oscillating = {signal.loop_id for signal in signals}
    # independent oscillations are there too: the over-tuned reboiler near the reflux's
    # period, a sticky preheater valve near the external pressure oscillation's
    assert {"TIC208031", "TIC208032", "PIC208060", "FIC208041"} <= oscillating
    [cluster] = cluster_oscillations(signals, 1.0)
    assert cluster.likely_source == "FIC208041"
    assert set(cluster.member_ids) == {"FIC208041", "LIC208050", "TIC208033"}
    for member in cluster.members:
        assert member.unit == "U209 Distillation"
        if member.role == "member":
            assert member.coherence is not None
            assert member.coherence > 0.9
