"""How hard the controller answers a set-point step: the valve's kick and overshoot.

A set-point step is the one clean test signal routine operating data contains. For a PI
controller :math:`u = K_c (e + \\frac{1}{T_i}\\int e\\,dt)` acting on a self-regulating
process of gain :math:`K`, a set-point step :math:`\\Delta r` moves the valve at once by the
proportional kick :math:`K_c \\Delta r`, and in the end by :math:`\\Delta u = \\Delta r / K`.
Their ratio, the *kick share*

.. math:: \\kappa = \\frac{u(t_s) - u_-}{u_\\infty - u_-} = K_c K,

is the loop's static gain: a well-tuned loop on a lag-dominant process answers with
:math:`\\kappa \\ge 1` (SIMC: :math:`K_c K = \\tau / (\\tau_c + \\theta)`) and its valve
overshoots its final position, while a sluggish controller (low gain) moves the valve by a
small part of what is needed and then creeps the rest of the way on integral action, never
past it. With :math:`T_i = \\tau` (the process pole cancelled) the valve's response is exactly
:math:`u(t) = u_- + \\Delta u\\,[1 + (\\kappa - 1) e^{-\\kappa t / \\tau}]`: it overshoots its final
value by the share :math:`\\kappa - 1` when :math:`\\kappa > 1`, and creeps up from below
otherwise. This is the set-point counterpart of the reasoning behind Hägglund's idle index
and Visioli's area index, which read the same creeping valve from load-disturbance
responses.

An integrating process (level) needs no net valve change after a set-point step
(:math:`\\Delta u \\approx 0`): such steps are not judged.

References
----------
S. Skogestad, "Simple analytic rules for model reduction and PID controller tuning",
Journal of Process Control 13 (2003) 291-309.
T. Hägglund, "Automatic detection of sluggish control loops", Control Engineering Practice
7 (1999) 1505-1511.
A. Visioli, "Method for proportional-integral controller tuning assessment", Industrial &
Engineering Chemistry Research 45 (2006) 2741-2747.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from clpm_shared.analytics.signal_preparation import FloatArray

KICK_SAMPLES: Final = 2
"""The kick is read this many samples after the step (the first sample may still hold the
old output when the controller executes after the historian samples)."""

BEFORE_SHARE: Final = 0.05
"""The valve position before the step is the mean over this share of the response's length
(at least ten samples) before it."""

FINAL_SHARE: Final = 0.25
"""The final valve position is the mean over the last quarter of the response (until the
next step or the end of the data)."""

MIN_CHANGE_NOISE: Final = 5.0
"""A step is judged only when the valve's net change exceeds this many times the valve
signal's noise σ (and is non-zero): otherwise the process is integrating, or the step too
small to read a kick from."""


@dataclass(frozen=True)
class ValveStepResponse:
    """The valve's answer to one set-point step.

    Attributes
    ----------
    index : int
        Sample of the step (first sample at the new set point).
    op_change : float
        Net valve change :math:`\\Delta u = u_\\infty - u_-` (% of OP).
    kick_share : float
        :math:`\\kappa`, the immediate valve move as a share of the net change.
    overshoot_share : float
        Largest valve excursion past its final position, as a share of :math:`|\\Delta u|`
        (0 when it creeps up from one side).
    """

    index: int
    op_change: float
    kick_share: float
    overshoot_share: float


def valve_step_responses(
    sp: FloatArray, op: FloatArray, min_step: float, op_noise: float = 0.0
) -> list[ValveStepResponse]:
    """Kick share and overshoot of the valve after each set-point step (module docstring).

    Parameters
    ----------
    sp, op : ndarray
        Set point and controller output on a uniform grid (NaN = missing or out of service).
    min_step : float
        Smallest set-point change (PV units) counted as a step; > 0.
    op_noise : float
        Noise σ of the valve signal, for the :data:`MIN_CHANGE_NOISE` test.

    Returns
    -------
    list of ValveStepResponse
        One per judged step, in time order; a step whose response is under 20 samples,
        has missing values around the kick or needs no net valve change is left out.
    """
    if not min_step > 0:
        raise ValueError(f"min_step: must be > 0, got {min_step!r}")
    sp = np.asarray(sp, dtype=np.float64)
    op = np.asarray(op, dtype=np.float64)
    if sp.size != op.size:
        raise ValueError(f"op: sp and op must have equal lengths ({sp.size}, {op.size})")
    with np.errstate(invalid="ignore"):
        jumps = np.flatnonzero(np.abs(np.diff(sp)) > min_step) + 1
    bounds = np.append(jumps, sp.size)
    out: list[ValveStepResponse] = []
    for k, start in enumerate(jumps.tolist()):
        stop = int(bounds[k + 1])
        length = stop - start
        if length < 20:
            continue
        before_n = max(10, round(BEFORE_SHARE * length))
        previous = int(bounds[k - 1]) if k > 0 else 0
        before = op[max(previous, start - before_n) : start]
        after = op[start:stop]
        final = after[-max(1, round(FINAL_SHARE * length)) :]
        kick_at = min(KICK_SAMPLES, length - 1)
        if (
            before.size == 0
            or not np.all(np.isfinite(before))
            or not np.all(np.isfinite(after[: kick_at + 1]))
            or not np.any(np.isfinite(final))
        ):
            continue
        u_before = float(np.mean(before))
        u_final = float(np.nanmean(final))
        change = u_final - u_before
        if change == 0.0 or abs(change) <= MIN_CHANGE_NOISE * op_noise:
            continue
        direction = math.copysign(1.0, change)
        kick = float(after[kick_at]) - u_before
        overshoot = float(np.nanmax(direction * (after - u_final)))
        out.append(
            ValveStepResponse(start, change, kick / change, max(0.0, overshoot) / abs(change))
        )
    return out


__all__ = ["ValveStepResponse", "valve_step_responses"]
