"""Benchmark of oscillation false alarms: how often non-oscillating signals are called oscillating.

The real-data benchmark (``realdata_oscillation.py``) has 12 non-oscillating loops; a detector
tuned to find more oscillations can pass all 12 and still call a whole class of plant noise
oscillating. This bench runs ``detect_oscillation`` (and, as a split of the figure, the
whole-signal ACF test ``detect_regular_oscillation`` alone) on windows of signals that are not
oscillating, with fixed seeds, at 900 samples (a 15-minute KPI window at 1 Hz) unless named:

* the KPI_SPEC false-positive cases: white noise, random walk, ramp, single step, constant;
* coloured noise: AR(1) (drift), boxcar moving averages (a DCS averaging block, bucket means),
  Butterworth low-pass noise of order 2 and 4, second-order low-pass noise with damping 0.7 and
  0.5 (the last two ring: their ACF oscillates and decays, a spectral hump, not a line);
* what historians and slow instruments do to a signal: white noise held for h samples,
  linearly interpolated between every h-th sample (compression), exception-reported with a
  deadband, coarsely quantised AR(1);
* simulated healthy loops (``clpm_shared.simulation``, PI control, AR(1) load): control
  error of one hour at 1 Hz after ten minutes of start-up.

Reports, per class, the windows tried and how many were called oscillating. The detector must
call the KPI_SPEC cases never; the rest is the false-alarm rate a plant of such signals sees.

Run: ``PYTHONPATH=. .venv/bin/python bench/oscillation_false_alarms.py [--windows 200]``;
prints JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import signal

from clpm_shared.analytics.oscillation import detect_oscillation, detect_regular_oscillation
from clpm_shared.simulation import LoopProfile, SimulatedLoopSpec, simulate_fleet

N = 900
SETTLE = 500
"""Samples dropped at the start of filtered noise (the filter's start-up transient)."""

Generator = Callable[[np.random.Generator], np.ndarray]


def _filtered(b: Any, a: Any) -> Generator:
    return lambda rng: signal.lfilter(b, a, rng.standard_normal(N + SETTLE))[SETTLE:]


def _boxcar(length: int) -> Generator:
    return lambda rng: np.convolve(rng.standard_normal(N + length), np.ones(length) / length)[
        length : N + length
    ]


def _held(hold: int) -> Generator:
    return lambda rng: np.repeat(rng.standard_normal(N // hold + 1), hold)[:N]


def _interpolated(every: int) -> Generator:
    def make(rng: np.random.Generator) -> np.ndarray:
        x = rng.standard_normal(N)
        stored = np.arange(0, N, every)
        return np.interp(np.arange(N), stored, x[stored])

    return make


def _deadband(x: np.ndarray, deadband: float) -> np.ndarray:
    held = np.empty_like(x)
    last = x[0]
    for i, value in enumerate(x):
        if abs(value - last) > deadband:
            last = value
        held[i] = last
    return held


def _second_order(zeta: float, frequency: float = 0.02) -> Generator:
    omega = 2.0 * np.pi * frequency
    b, a, _ = signal.cont2discrete(([omega**2], [1.0, 2.0 * zeta * omega, omega**2]), 1.0)
    return _filtered(np.ravel(b), a)


def classes() -> dict[str, Generator]:
    butter2 = signal.butter(2, 0.2)
    butter4 = signal.butter(4, 0.2)
    return {
        "KPI_SPEC white noise": lambda rng: rng.standard_normal(N),
        "KPI_SPEC random walk": lambda rng: np.cumsum(rng.standard_normal(N)),
        "KPI_SPEC ramp": lambda rng: 0.01 * np.arange(N) + 0.01 * rng.standard_normal(N),
        "KPI_SPEC single step": lambda rng: (
            np.where(np.arange(N) >= rng.integers(100, 800), 5.0, 0.0)
            + 0.05 * rng.standard_normal(N)
        ),
        "KPI_SPEC constant": lambda rng: np.full(N, 42.0),
        "white noise, 3600 samples": lambda rng: rng.standard_normal(4 * N),
        "AR(1) phi 0.95": _filtered([1.0], [1.0, -0.95]),
        "AR(1) phi 0.95, 3600 samples": lambda rng: signal.lfilter(
            [1.0], [1.0, -0.95], rng.standard_normal(4 * N + SETTLE)
        )[SETTLE:],
        "boxcar mean of 4": _boxcar(4),
        "boxcar mean of 8": _boxcar(8),
        "boxcar mean of 16": _boxcar(16),
        "Butterworth order 2, cut-off 0.1/sample": _filtered(*butter2),
        "Butterworth order 4, cut-off 0.1/sample": _filtered(*butter4),
        "second order, damping 0.7, 50-sample natural period": _second_order(0.7),
        "second order, damping 0.5 (rings), 50-sample natural period": _second_order(0.5),
        "white noise held 3 samples": _held(3),
        "white noise held 10 samples": _held(10),
        "white noise interpolated between every 5th": _interpolated(5),
        "white noise interpolated between every 10th": _interpolated(10),
        "random walk, deadband 1 (exception reporting)": lambda rng: _deadband(
            np.cumsum(rng.standard_normal(N)), 1.0
        ),
        "AR(1) phi 0.9 quantised to 1 std": lambda rng: np.round(
            signal.lfilter([1.0], [1.0, -0.9], rng.standard_normal(N + SETTLE))[SETTLE:] / 2.3
        ),
    }


def run(windows: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    started = time.perf_counter()
    for index, (name, make) in enumerate(classes().items()):
        rng = np.random.default_rng(1000 + index)
        signals = [make(rng) for _ in range(windows)]
        result[name] = {
            "windows": windows,
            "called_oscillating": sum(detect_oscillation(x, 1.0).oscillating for x in signals),
            "by_whole_signal_test": sum(
                detect_regular_oscillation(x, 1.0).oscillating for x in signals
            ),
        }
    specs = [
        SimulatedLoopSpec(loop_id=f"H-{i}", profile=LoopProfile.HEALTHY, seed=5000 + i)
        for i in range(windows)
    ]
    errors = [(s.sp - s.pv)[600:] for s in simulate_fleet(specs, 600 + 3600)]
    result["simulated healthy loops, error, 3600 samples"] = {
        "windows": windows,
        "called_oscillating": sum(detect_oscillation(e, 1.0).oscillating for e in errors),
        "by_whole_signal_test": sum(detect_regular_oscillation(e, 1.0).oscillating for e in errors),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(run(args.windows), indent=1))


if __name__ == "__main__":
    main()
