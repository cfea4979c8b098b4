"""Benchmark of the loop verdicts over a day: is the daily main problem the loop's real fault?

Simulates a fleet with the data-streaming service's default profile mix
(``data_streaming_service.catalogue.loop_specs``: the 12 demo loops, then 60 % healthy,
8 % sticky valves, 5 % over-tuned, 8 % sluggish, 4 % saturated, 5 % with manual periods, 2 %
flat-lined, 4 % noisy transmitters, 4 % external oscillation) at 1 s for ``--hours`` after
ten minutes of start-up, and runs the production chain on every 15-minute window:
``compute_kpis -> diagnose_loop -> window_verdict``; the windows of each loop are rolled up
with ``assess_period`` over the whole run (the daily rating) and over each hour (hourly
ratings). Loop settings are what a plant knows without a study: the loop type, no dead time
and no PV range.

Reports (JSON):

* ``main_problem_by_profile`` — per fault profile the share of loops whose daily main problem
  is the expected root cause (sticky valve -> stiction, over-tuned -> aggressive_tuning,
  sluggish -> sluggish_tuning, manual periods -> mode_issue, flat-lined -> sensor_fault,
  noisy sensor -> sensor_noise, saturated -> saturation, external oscillation ->
  external_disturbance), with the confusion of the others;
* ``healthy_with_findings`` — share of healthy loops with a main problem or any persistent
  finding in the daily rating;
* ``contradictory_pairs`` — window verdicts that report (or keep as evidence) both findings
  of a pair of ``verdict.CONTRADICTORY_PAIRS``;
* ``status_stability`` — for loops with a steady fault, the share of consecutive hourly
  ratings with the same status;
* ``reliability`` — reported window findings binned by confidence: how often the category
  is the loop's real fault (a confidence of 0.8 should be right about 80 % of the time).
  An oscillation of unknown cause is a symptom, not a claim about the cause: it is counted
  apart (``oscillation_without_cause_findings``). ``--calibrate`` prints instead the
  isotonic calibration table of the rule confidences
  (``diagnosis.CONFIDENCE_CALIBRATION``; fit it on a development seed, not the reported one);
* ``demo_plant`` — the 12 demo loops at the day rating: does every faulty loop rank below
  every healthy one, with the right main problem?
* ``baseline`` — the same loops judged as before the verdicts: the latest window's KPI health
  status and its health-only main problem (a sub-score name), the findings of
  ``diagnose_loop`` only when the latest window's health is below 60 (its ``primary`` as the
  main problem; the old rule: largest severity x confidence), contradictory pairs among the
  raw findings of every window (before the root-cause resolution), and the
  stability of the latest window's status from hour to hour.

Run: ``PYTHONPATH=. nice .venv/bin/python bench/fleet_verdicts.py [--loops 2000]
[--hours 24] [--workers 2] [--seed 42]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from clpm_shared.analytics import LoopConfig, LoopWindow, compute_kpis, health_score
from clpm_shared.analytics.assessment import WindowRating, assess_period
from clpm_shared.analytics.diagnosis import Finding, LoopDiagnosis, diagnose_loop
from clpm_shared.analytics.verdict import CONTRADICTORY_PAIRS, window_verdict
from clpm_shared.simulation import FleetSimulator, LoopProfile, mode_names
from data_streaming_service.catalogue import DEFAULT_CATALOGUE, loop_specs

WARM_UP_S = 600.0
WINDOW_S = 900.0
CHUNK = 40
"""Loops simulated and judged together by one worker process."""
T0 = datetime(2026, 1, 5, tzinfo=UTC)
DEMO_LOOPS = frozenset(entry.loop_id for entry in DEFAULT_CATALOGUE)
"""The demo plant: the data-streaming catalogue, the first loops of every fleet."""

EXPECTED: dict[str, str | None] = {
    LoopProfile.HEALTHY: None,
    LoopProfile.STICKY_VALVE: "stiction",
    LoopProfile.OVER_TUNED: "aggressive_tuning",
    LoopProfile.SLUGGISH: "sluggish_tuning",
    LoopProfile.SATURATED: "saturation",
    LoopProfile.MANUAL_PERIODS: "mode_issue",
    LoopProfile.FLATLINED_SENSOR: "sensor_fault",
    LoopProfile.NOISY_SENSOR: "sensor_noise",
    LoopProfile.EXTERNAL_OSCILLATION: "external_disturbance",
    "driven": "external_disturbance",
}
"""Expected daily main problem per profile; ``driven``: a loop the simulator couples to another
(``SimulatedLoopSpec.driven_by``, the demo plant's plant-wide oscillation) whatever its own
profile, since the cycle it is given is an external disturbance."""
STEADY = frozenset(
    {
        LoopProfile.STICKY_VALVE,
        LoopProfile.OVER_TUNED,
        LoopProfile.SLUGGISH,
        LoopProfile.SATURATED,
        LoopProfile.FLATLINED_SENSOR,
        LoopProfile.NOISY_SENSOR,
        LoopProfile.EXTERNAL_OSCILLATION,
        "driven",
    }
)
"""Profiles whose fault is present all the time (manual periods come and go)."""
CONFIDENCE_BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)


OLD_ORDER = (
    "sensor_fault",
    "sensor_noise",
    "mode_issue",
    "stiction",
    "saturation",
    "external_disturbance",
    "aggressive_tuning",
    "sluggish_tuning",
    "oscillation",
)
"""Tie-break order of the primary cause before the verdicts (baseline)."""


def _raw_findings(diagnosis: LoopDiagnosis) -> list[Finding]:
    """Every finding of the rules, before the root-cause resolution (baseline)."""
    raw: list[Finding] = []
    for finding in diagnosis.findings:
        raw.append(finding)
        raw.extend(finding.explained)
    return raw + list(diagnosis.dropped)


def _old_primary(findings: Sequence[Finding]) -> str | None:
    """The primary cause as chosen before the verdicts: largest severity x confidence."""
    if not findings:
        return None
    if any(
        f.category == "sensor_fault" and f.evidence.get("fault") == "flatline" for f in findings
    ):
        return "sensor_fault"
    causes = [f for f in findings if f.category != "oscillation"] or list(findings)
    best = max(
        causes, key=lambda f: (round(f.severity * f.confidence, 6), -OLD_ORDER.index(f.category))
    )
    return best.category


def _pairs(categories: Sequence[str]) -> int:
    return sum(
        1
        for a, b in itertools.combinations(set(categories), 2)
        if frozenset((a, b)) in CONTRADICTORY_PAIRS
    )


def _judge_chunk(task: tuple[int, int, int, float, int]) -> list[dict[str, Any]]:
    """Simulate loops ``[first, last)`` of the fleet and judge every window of each."""
    n_loops, first, last, hours, seed = task
    specs = loop_specs(n_loops, seed)[first:last]
    simulator = FleetSimulator(specs)
    ts = simulator.ts
    for _ in range(round(WARM_UP_S / ts)):
        simulator.step()
    per_window = round(WINDOW_S / ts)
    n_windows = round(hours * 3600.0 / WINDOW_S)
    configs = [LoopConfig(loop_type=spec.loop_type.value) for spec in specs]
    n = len(specs)
    ratings: list[list[WindowRating]] = [[] for _ in range(n)]
    loops: list[dict[str, Any]] = [
        {
            "loop_id": spec.loop_id,
            "profile": "driven" if spec.driven_by is not None else spec.profile.value,
            "findings": [],  # (category, confidence) of every reported window finding
            "root_severity": [],  # severity of the root cause of every window that has one
            "window_main": Counter(),  # main problem of the windows
            "contradictions": 0,
            "old_contradictions": 0,
            "old_status": [],
            "old_main": None,
            "old_primary": None,
            "diagnose_s": 0.0,
        }
        for spec in specs
    ]
    pv = np.empty((per_window, n))
    sp = np.empty((per_window, n))
    op = np.empty((per_window, n))
    mode = np.empty((per_window, n), dtype=np.int8)
    for w in range(n_windows):
        for k in range(per_window):
            sample = simulator.step()
            pv[k], sp[k], op[k], mode[k] = sample.pv, sample.sp, sample.op, sample.mode
        t = WARM_UP_S + w * WINDOW_S + np.arange(per_window) * ts
        start = T0 + timedelta(seconds=w * WINDOW_S)
        end = start + timedelta(seconds=WINDOW_S)
        for i in range(n):
            window = LoopWindow(
                t=1.7e9 + t,
                pv=pv[:, i].copy(),
                sp=sp[:, i].copy(),
                op=op[:, i].copy(),
                mode=mode_names(mode[:, i]),
                ts=ts,
            )
            started = time.perf_counter()
            kpis = compute_kpis(window, configs[i])
            diagnosis = diagnose_loop(window, configs[i], kpis, loop_id=specs[i].loop_id)
            verdict = window_verdict(kpis, diagnosis, configs[i])
            record = loops[i]
            record["diagnose_s"] += time.perf_counter() - started
            ratings[i].append(
                WindowRating(
                    start,
                    end,
                    verdict.status,
                    verdict.health_score,
                    verdict.main_problem,
                    {f.category: f.severity for f in verdict.findings},
                )
            )
            record["findings"].extend(
                (f.category, f.confidence, float(f.evidence.get("rule_confidence", f.confidence)))  # type: ignore[arg-type]
                for f in verdict.findings
            )
            record["window_main"][str(verdict.main_problem)] += 1
            if verdict.findings:
                record["root_severity"].append(verdict.findings[0].severity)
                kept = [f.category for f in verdict.findings]
                kept += [f.category for f in verdict.findings[0].explained]
                record["contradictions"] += _pairs(kept)
            old = health_score(kpis, configs[i])
            raw = _raw_findings(diagnosis)
            record["old_contradictions"] += _pairs([f.category for f in raw])
            if (w + 1) % 4 == 0 or w == n_windows - 1:
                record["old_status"].append(old.status)
            record["old_main"] = old.main_problem
            record["old_primary"] = _old_primary(raw) if (old.score or 0.0) < 60.0 else None
    out = []
    period_end = T0 + timedelta(seconds=n_windows * WINDOW_S)
    for i in range(n):
        record = loops[i]
        daily = assess_period(ratings[i], T0, period_end)
        hourly = [
            assess_period(ratings[i], T0 + timedelta(hours=h), T0 + timedelta(hours=h + 1))
            for h in range(int(n_windows * WINDOW_S // 3600))
        ]
        record["daily_status"] = daily.status
        record["daily_health"] = daily.health_score
        record["daily_main"] = daily.main_problem
        record["daily_findings"] = [f.category for f in daily.findings]
        record["hourly_status"] = [h.status for h in hourly]
        record["windows"] = len(ratings[i])
        out.append(record)
    return out


def _stability(series: Sequence[Sequence[str]]) -> float | None:
    same = total = 0
    for statuses in series:
        for a, b in itertools.pairwise(statuses):
            total += 1
            same += a == b
    return round(same / total, 4) if total else None


def _reliability(pairs: Sequence[tuple[bool, float]]) -> list[dict[str, Any]]:
    table = []
    for lo, hi in itertools.pairwise(CONFIDENCE_BINS):
        inside = [(right, c) for right, c in pairs if lo <= c < hi]
        if not inside:
            continue
        table.append(
            {
                "confidence": f"{lo:.1f}-{min(hi, 1.0):.1f}",
                "findings": len(inside),
                "mean_confidence": round(float(np.mean([c for _, c in inside])), 3),
                "right": round(sum(1 for right, _ in inside if right) / len(inside), 3),
            }
        )
    return table


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    by_profile: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_profile[record["profile"]].append(record)
    main_problem: dict[str, Any] = {}
    baseline_main: dict[str, Any] = {}
    for profile, group in sorted(by_profile.items()):
        expected = EXPECTED[profile]
        if expected is None:
            continue
        main_problem[profile] = {
            "loops": len(group),
            "expected": expected,
            "share": round(sum(r["daily_main"] == expected for r in group) / len(group), 3),
            "got": dict(Counter(str(r["daily_main"]) for r in group).most_common()),
        }
        baseline_main[profile] = {
            "share_latest_window_primary": round(
                sum(r["old_primary"] == expected for r in group) / len(group), 3
            ),
            "health_main_problem": dict(Counter(str(r["old_main"]) for r in group).most_common()),
        }
    healthy = by_profile.get(LoopProfile.HEALTHY.value, [])
    steady = [r for r in records if r["profile"] in STEADY]
    pairs = [
        (category == EXPECTED[r["profile"]], confidence)
        for r in records
        for category, confidence, _ in r["findings"]
        if category != "oscillation"
    ]
    demo = [r for r in records if r["loop_id"] in DEMO_LOOPS]
    faulty = [r for r in demo if EXPECTED[r["profile"]] is not None]
    sound = [r for r in demo if EXPECTED[r["profile"]] is None]
    diagnose_s = sum(r["diagnose_s"] for r in records)
    windows = sum(r["windows"] for r in records)
    return {
        "loops": len(records),
        "windows": windows,
        "main_problem_by_profile": main_problem,
        "main_problem_worst_profile_share": min(
            (v["share"] for v in main_problem.values()), default=None
        ),
        "healthy_loops": len(healthy),
        "healthy_with_findings": round(
            sum(1 for r in healthy if r["daily_main"] or r["daily_findings"]) / len(healthy), 4
        )
        if healthy
        else None,
        "healthy_daily_status": dict(Counter(r["daily_status"] for r in healthy)),
        "contradictory_pairs": sum(r["contradictions"] for r in records),
        "status_stability_hourly": _stability([r["hourly_status"] for r in steady]),
        "status_stability_by_profile": {
            profile: _stability([r["hourly_status"] for r in group])
            for profile, group in sorted(by_profile.items())
        },
        "demo_plant": {
            "every_faulty_loop_below_every_healthy_loop": bool(faulty and sound)
            and max(r["daily_health"] if r["daily_health"] is not None else 100.0 for r in faulty)
            < min(r["daily_health"] if r["daily_health"] is not None else 0.0 for r in sound),
            "faulty_with_right_main_problem": sum(
                r["daily_main"] == EXPECTED[r["profile"]] for r in faulty
            ),
            "faulty_loops": len(faulty),
            "loops": [
                {
                    "loop_id": r["loop_id"],
                    "profile": r["profile"],
                    "health": r["daily_health"],
                    "status": r["daily_status"],
                    "main_problem": r["daily_main"],
                }
                for r in sorted(demo, key=lambda r: (r["daily_health"] is None, r["daily_health"]))
            ],
        },
        "reliability": _reliability(pairs),
        "oscillation_without_cause_findings": sum(
            1 for r in records for category, _, _ in r["findings"] if category == "oscillation"
        ),
        "window_main_problem_by_profile": {
            profile: dict(sum((r["window_main"] for r in group), Counter()).most_common())
            for profile, group in sorted(by_profile.items())
        },
        "root_severity_by_profile": {
            profile: [
                round(float(q), 2)
                for q in np.quantile(
                    [s for r in group for s in r["root_severity"]] or [np.nan], [0.1, 0.5, 0.9]
                )
            ]
            for profile, group in sorted(by_profile.items())
        },
        "baseline": {
            "main_problem_by_profile": baseline_main,
            "healthy_with_findings": round(
                sum(1 for r in healthy if r["old_primary"] or r["old_main"]) / len(healthy), 4
            )
            if healthy
            else None,
            "contradictory_pairs": sum(r["old_contradictions"] for r in records),
            "status_stability_hourly": _stability([r["old_status"] for r in steady]),
        },
        "ms_per_window": round(1000 * diagnose_s / max(windows, 1), 2),
    }


def calibration(records: Sequence[dict[str, Any]], min_bin: int = 40) -> dict[str, Any]:
    """Per category, isotonic breakpoints (rule confidence -> share right) of the findings.

    Findings of a category are sorted by rule confidence and cut into bins of at least
    ``min_bin``; each bin's share right (Laplace-smoothed, (k + 1) / (n + 2)) is made
    non-decreasing by pool-adjacent-violators; a breakpoint is (bin's mean rule confidence,
    pooled share).
    """
    by_category: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for r in records:
        for category, _, raw in r["findings"]:
            if category != "oscillation":
                by_category[category].append((raw, category == EXPECTED[r["profile"]]))
    table: dict[str, Any] = {}
    for category, items in sorted(by_category.items()):
        items.sort()
        n_bins = max(1, min(5, len(items) // min_bin))
        bins = [
            items[round(k * len(items) / n_bins) : round((k + 1) * len(items) / n_bins)]
            for k in range(n_bins)
        ]
        blocks = [[float(np.mean([c for c, _ in b])), sum(ok for _, ok in b), len(b)] for b in bins]
        merged: list[list[float]] = []
        for block in blocks:
            merged.append(block)
            while len(merged) > 1 and (merged[-2][1] + 1) / (merged[-2][2] + 2) > (
                merged[-1][1] + 1
            ) / (merged[-1][2] + 2):
                right = merged.pop()
                left = merged.pop()
                weight = left[2] + right[2]
                merged.append(
                    [(left[0] * left[2] + right[0] * right[2]) / weight, left[1] + right[1], weight]
                )
        points: dict[float, list[float]] = {}
        for x, k, n in merged:  # bins sharing one rule confidence are one point
            pooled = points.setdefault(round(x, 3), [0.0, 0.0])
            pooled[0] += k
            pooled[1] += n
        table[category] = [[x, round((k + 1) / (n + 2), 3)] for x, (k, n) in sorted(points.items())]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=2000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="print the confidence calibration table of this run (use a development seed)",
    )
    args = parser.parse_args()
    if args.loops < 13:
        parser.error("--loops: at least 13 (the demo catalogue has 12)")
    if args.hours < 1:
        parser.error("--hours: at least 1")
    tasks = [
        (args.loops, first, min(first + CHUNK, args.loops), args.hours, args.seed)
        for first in range(0, args.loops, CHUNK)
    ]
    started = time.perf_counter()
    with multiprocessing.Pool(args.workers) as pool:
        records = [r for chunk in pool.imap(_judge_chunk, tasks) for r in chunk]
    if args.calibrate:
        print(json.dumps(calibration(records), indent=1))
        return
    result = {
        "hours": args.hours,
        "seed": args.seed,
        "workers": args.workers,
        **summarise(records),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
