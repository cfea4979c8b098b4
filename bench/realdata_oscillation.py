"""Benchmark of oscillation detection on real plant data: the ISDB oscillation benchmark loops.

Reads the development set of real industrial control loops (controller outputs with the
benchmark's oscillating / not-oscillating labels, ``../shared/realdata/`` relative to the
repository root; see its README.md) and runs, on each loop's whole record at its own sample
time:

* ``detect_oscillation`` (the KPI and diagnosis detector: whole-signal ACF test, then the
  band-passed filter bank) — "new";
* ``detect_regular_oscillation`` (the whole-signal ACF zero-crossing test alone, i.e. the
  detector before the filter bank was added) — the baseline "old", in the same run;
* ``detect_oscillations`` (every significant component with its period, regularity,
  strength, spectral peak ratio and share of the record).

Reports accuracy, precision and recall overall, per sector and per loop type, the confusion
counts, the time per loop, and a verdict per loop. No per-loop setting exists: every loop is
judged with the same code and constants.

Run: ``PYTHONPATH=. .venv/bin/python bench/realdata_oscillation.py [--data DIR]``; prints JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from clpm_shared.analytics.oscillation import (
    detect_oscillation,
    detect_oscillations,
    detect_regular_oscillation,
)

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
NPZ = "isdb_oscillation_dev.npz"
CSV = "isdb_oscillation_dev.csv"


def scores(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """Accuracy, precision, recall and confusion counts of (label, verdict) pairs."""
    tp = sum(1 for label, verdict in pairs if label and verdict)
    fp = sum(1 for label, verdict in pairs if not label and verdict)
    fn = sum(1 for label, verdict in pairs if label and not verdict)
    tn = len(pairs) - tp - fp - fn
    return {
        "loops": len(pairs),
        "accuracy": round((tp + tn) / len(pairs), 3) if pairs else None,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def run(data: Path) -> dict[str, Any]:
    with (data / CSV).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    signals = np.load(data / NPZ)
    loops: list[dict[str, Any]] = []
    seconds = {"old": 0.0, "new": 0.0, "components": 0.0}
    for row in rows:
        op = np.asarray(signals[f"{row['loop']}__op"], dtype=np.float64)
        ts = float(row["sample_time_s"])
        started = time.perf_counter()
        old = detect_regular_oscillation(op, ts)
        seconds["old"] += time.perf_counter() - started
        started = time.perf_counter()
        new = detect_oscillation(op, ts)
        seconds["new"] += time.perf_counter() - started
        started = time.perf_counter()
        components = detect_oscillations(op, ts)
        seconds["components"] += time.perf_counter() - started
        loops.append(
            {
                "loop": row["loop"],
                "sector": row["sector"],
                "loop_type": row["loop_type"],
                "samples": op.size,
                "sample_time_s": ts,
                "label": row["oscillating"] == "1",
                "old": old.oscillating,
                "new": new.oscillating,
                "period_s": None if new.period_s is None else round(new.period_s, 1),
                "regularity": None if new.regularity is None else round(new.regularity, 2),
                "reason": new.reason,
                "components": [
                    {key: round(value, 3) for key, value in c.to_dict().items()} for c in components
                ],
            }
        )

    def grouped(key: str, detector: str) -> dict[str, Any]:
        groups: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
        for loop in loops:
            groups[loop[key]].append((loop["label"], loop[detector]))
        return {name: scores(pairs) for name, pairs in sorted(groups.items())}

    by_label: dict[str, dict[str, int]] = {}
    for label in (True, False):
        chosen = [loop for loop in loops if loop["label"] is label]
        by_label["oscillating" if label else "not_oscillating"] = {
            "loops": len(chosen),
            "old_called_oscillating": sum(loop["old"] for loop in chosen),
            "new_called_oscillating": sum(loop["new"] for loop in chosen),
        }
    return {
        "data": str(data),
        "loops": len(loops),
        "new": scores([(loop["label"], loop["new"]) for loop in loops]),
        "old_baseline": scores([(loop["label"], loop["old"]) for loop in loops]),
        "per_label": by_label,
        "per_sector": {"new": grouped("sector", "new"), "old": grouped("sector", "old")},
        "per_loop_type": {
            "new": grouped("loop_type", "new"),
            "old": grouped("loop_type", "old"),
        },
        "ms_per_loop": {name: round(1000 * s / len(loops), 2) for name, s in seconds.items()},
        "misjudged_by_new": [
            f"{loop['loop']} (label {int(loop['label'])})"
            for loop in loops
            if loop["new"] != loop["label"]
        ],
        "per_loop": loops,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    print(json.dumps(run(args.data), indent=1))


if __name__ == "__main__":
    main()
