"""Oscillation detection on real plant data: the ISDB loops of the oscillation benchmark.

The development set (controller outputs of 39 industrial loops with the benchmark's labels)
lives next to the repository in ``../shared/realdata/``, as in CI; a missing folder fails
these tests rather than skipping them. Figures and per-loop verdicts:
``bench/realdata_oscillation.py`` and bench/README.md.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from clpm_shared.analytics import (
    OscillationComponent,
    OscillationResult,
    detect_oscillation,
    detect_oscillations,
)
from clpm_shared.analytics.oscillation import detect_regular_oscillation

REALDATA = Path(__file__).resolve().parents[3].parent / "shared" / "realdata"


@dataclass(frozen=True)
class RealLoop:
    """One labelled loop and what the three detectors say about its controller output."""

    name: str
    sector: str
    ts: float
    oscillating: bool
    whole_signal: OscillationResult
    found: OscillationResult
    components: tuple[OscillationComponent, ...]


@pytest.fixture(scope="module")
def isdb() -> dict[str, RealLoop]:
    table, arrays = REALDATA / "isdb_oscillation_dev.csv", REALDATA / "isdb_oscillation_dev.npz"
    if not (table.is_file() and arrays.is_file()):
        pytest.fail(f"real-data fixtures missing: {REALDATA} must hold the ISDB development set")
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    signals = np.load(arrays)
    loops = {}
    for row in rows:
        op = np.asarray(signals[f"{row['loop']}__op"], dtype=np.float64)
        ts = float(row["sample_time_s"])
        loops[row["loop"]] = RealLoop(
            name=row["loop"],
            sector=row["sector"],
            ts=ts,
            oscillating=row["oscillating"] == "1",
            whole_signal=detect_regular_oscillation(op, ts),
            found=detect_oscillation(op, ts),
            components=detect_oscillations(op, ts),
        )
    return loops


def test_the_development_set_is_complete(isdb: dict[str, RealLoop]) -> None:
    assert len(isdb) == 39
    assert sum(loop.oscillating for loop in isdb.values()) == 27
    assert {loop.sector for loop in isdb.values()} == {"BAS", "CHEM", "PAP", "POW", "MIN", "MET"}


def test_accuracy_and_precision_on_the_development_set(isdb: dict[str, RealLoop]) -> None:
    """Measured: accuracy 0.87, precision 1.00, recall 0.81 (the whole-signal ACF test alone:
    0.56 / 1.00 / 0.37). Targets: accuracy >= 0.85 with precision >= 0.9."""
    verdicts = [(loop.oscillating, loop.found) for loop in isdb.values()]
    tp = sum(1 for label, found in verdicts if label and found.oscillating)
    fp = sum(1 for label, found in verdicts if not label and found.oscillating)
    correct = sum(1 for label, found in verdicts if label == found.oscillating)
    assert all(found.assessed for _, found in verdicts)
    assert correct / len(verdicts) >= 0.85
    assert tp / (tp + fp) >= 0.9
    whole_signal = sum(
        1 for loop in isdb.values() if loop.whole_signal.oscillating == loop.oscillating
    )
    assert correct >= whole_signal + 12
    assert fp == 0


@pytest.mark.parametrize(
    ("name", "period_s"),
    [("POW2", 294.0), ("PAP13", 857.0), ("CHEM32", 902.0), ("CHEM49", 1009.0)],
)
def test_clear_oscillations_are_found_with_their_period(
    isdb: dict[str, RealLoop], name: str, period_s: float
) -> None:
    loop = isdb[name]
    assert loop.found.oscillating
    assert loop.found.period_s == pytest.approx(period_s, rel=0.02)
    (component,) = loop.components
    assert component.period_s == pytest.approx(period_s, rel=0.02)
    assert component.share > 0.95


@pytest.mark.parametrize(
    ("name", "period_s", "why"),
    [
        ("PAP10", 169.3, "a fast level cycle on a slow swing five times larger"),
        ("CHEM31", 107.6, "17,281 samples, a cycle of 7 samples under drift"),
        ("CHEM63", 202.5, "a cycle of 3.4 samples, below the whole-signal test's 4"),
        ("CHEM42", 1017.0, "a cycle between set-point-like steps"),
        ("MET2", 1.34, "a weak cycle in noise at 20 Hz sampling"),
    ],
)
def test_oscillations_hidden_from_the_whole_signal_acf_are_found_by_the_filter_bank(
    isdb: dict[str, RealLoop], name: str, period_s: float, why: str
) -> None:
    loop = isdb[name]
    assert loop.oscillating
    assert not loop.whole_signal.oscillating, why
    assert loop.found.oscillating, why
    assert loop.found.period_s == pytest.approx(period_s, rel=0.03)


@pytest.mark.parametrize(
    "name",
    [
        "BAS2",
        "BAS3",
        "BAS8",
        "CHEM40",
        "CHEM45",
        "CHEM47",
        "CHEM48",
        "CHEM52",
        "CHEM57",
        "CHEM58",
        "CHEM61",
        "CHEM8",
    ],
)
def test_steps_drift_pulses_and_noise_are_not_called_oscillating(
    isdb: dict[str, RealLoop], name: str
) -> None:
    """All 12 non-oscillating loops: long building records with steps and pulses
    (42,000-105,000 samples), refinery loops with steps and noise, and a sticky valve with
    fewer than three cycles in the record. CHEM45 and CHEM52 hold a minor spectral peak that
    passes every test but the 9 dB floor (peak ratio 3.4 and 6.6, 18 % and 4 % of the
    variance)."""
    loop = isdb[name]
    assert not loop.oscillating
    assert loop.found.assessed
    assert not loop.found.oscillating
    assert loop.components == ()


def test_an_oscillation_that_stops_part_way_has_a_partial_share(
    isdb: dict[str, RealLoop],
) -> None:
    """MIN1 cycles for about the first two thirds of its record, then sits still."""
    (component,) = isdb["MIN1"].components
    assert component.period_s == pytest.approx(6928.0, rel=0.03)
    assert 0.4 < component.share < 0.8
