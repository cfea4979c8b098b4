"""Set-point steps and the PV response to each: overshoot, settling time, rise time."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clpm_shared.analytics.signal_preparation import FloatArray, as_float_array

MIN_STEP_SHARE = 0.01
"""A set-point change counts as a step when it exceeds 1 % of the PV span (KPI_SPEC)."""

SETTLING_BAND = 0.05
"""Settled once |SP - PV| stays below 5 % of the step (KPI_SPEC)."""

RESPONSE_WINDOW_FACTOR = 3.0
"""A step is evaluated only with at least 3× the expected settling time of data after it."""


@dataclass(frozen=True, slots=True)
class StepResponse:
    """Response of PV to one set-point step.

    Attributes
    ----------
    t_step : float
        Time of the step (first sample at the new set point), same unit as ``t``.
    sp_before, sp_after : float
        Set point before and after the step.
    overshoot_pct : float
        Largest excursion of PV past the new set point, in % of the step (0 when PV never
        crosses it).
    settling_time_s : float or None
        Time from the step until :math:`|SP - PV|` stays below 5 % of the step for the rest
        of the response window; None when it never does.
    rise_time_s : float or None
        Time for PV to go from 10 % to 90 % of the step; None when it never gets to 90 %.
    """

    t_step: float
    sp_before: float
    sp_after: float
    overshoot_pct: float
    settling_time_s: float | None
    rise_time_s: float | None

    @property
    def size(self) -> float:
        """Signed step size ``sp_after - sp_before``."""
        return self.sp_after - self.sp_before


def _first_true(mask: npt.NDArray[np.bool_]) -> int | None:
    if not mask.any():
        return None
    return int(np.argmax(mask))


def _respond(
    t: FloatArray, t_step: float, sp_after: float, pv: FloatArray, pv_start: float, step: float
) -> tuple[float, float | None, float | None]:
    """Overshoot %, settling time and rise time of one response segment (starting at the step)."""
    direction = 1.0 if step > 0 else -1.0
    magnitude = abs(step)
    valid = ~np.isnan(pv)
    t, pv = t[valid], pv[valid]
    if pv.size == 0:
        return 0.0, None, None
    past = direction * (pv - sp_after)
    overshoot = max(float(past.max()), 0.0) / magnitude * 100.0

    outside = np.abs(sp_after - pv) >= SETTLING_BAND * magnitude
    settling: float | None
    if outside[-1]:
        settling = None
    else:
        last_out = np.flatnonzero(outside)
        settling = float(t[last_out[-1] + 1] - t_step) if last_out.size else 0.0

    progress = direction * (pv - pv_start) / magnitude
    k10 = _first_true(progress >= 0.1)
    k90 = _first_true(progress >= 0.9)
    rise = float(t[k90] - t[k10]) if k10 is not None and k90 is not None else None
    return overshoot, settling, rise


def find_sp_steps(
    t: npt.ArrayLike,
    sp: npt.ArrayLike,
    pv: npt.ArrayLike,
    span: float,
    expected_settling_s: float = 60.0,
    min_step_share: float = MIN_STEP_SHARE,
) -> list[StepResponse]:
    r"""Find set-point steps larger than 1 % of span and characterise the PV response.

    A step is a change between consecutive finite SP samples with
    :math:`|\Delta SP| > 0.01\,\mathrm{span}`. Its response window runs until the next
    step or the end of the data and must be at least :math:`3\,T_{settle,expected}` long
    (shorter windows are skipped: the response cannot be judged). In that window, with
    step :math:`\Delta = SP_{after} - SP_{before}` and PV at the step :math:`PV_0`:

    * overshoot :math:`= \max_k \mathrm{sign}(\Delta)(PV_k - SP_{after}) / |\Delta|`
      (in %, at least 0);
    * settling time = time from the step to the first sample after which
      :math:`|SP_{after} - PV| < 0.05\,|\Delta|` holds to the end of the window
      (None if the last sample is still outside the band);
    * rise time = time from :math:`PV - PV_0` first reaching 10 % to first reaching 90 %
      of :math:`\Delta` (the usual 10-90 % definition; None if 90 % is never reached).

    Parameters
    ----------
    t : array_like
        Sample times in seconds, ascending.
    sp, pv : array_like
        Set point and process value (NaN = missing).
    span : float
        PV span (engineering units) the 1 % threshold refers to; > 0.
    expected_settling_s : float
        Expected settling time of the loop, seconds (default 60).
    min_step_share : float
        Step threshold as a share of ``span`` (default 0.01).

    Returns
    -------
    list of StepResponse
        In time order; empty when no qualifying step exists.

    Raises
    ------
    ValueError
        Naming the parameter: unequal lengths, ``span <= 0`` or a negative settling time.
    """
    times, sps, pvs = as_float_array(t), as_float_array(sp), as_float_array(pv)
    if not (times.size == sps.size == pvs.size):
        raise ValueError(
            f"sp: t, sp and pv must have equal lengths ({times.size}, {sps.size}, {pvs.size})"
        )
    if not (math.isfinite(span) and span > 0):
        raise ValueError(f"span: must be a positive finite number, got {span!r}")
    if not (math.isfinite(expected_settling_s) and expected_settling_s >= 0):
        raise ValueError(
            f"expected_settling_s: must be a finite number >= 0, got {expected_settling_s!r}"
        )
    finite = np.flatnonzero(~np.isnan(sps) & ~np.isnan(times))
    if finite.size < 2:
        return []
    with np.errstate(all="ignore"):  # huge set points overflow the difference: not a step
        change = np.diff(sps[finite])
        jumps = np.flatnonzero(np.isfinite(change) & (np.abs(change) > min_step_share * span))
    if jumps.size == 0:
        return []
    step_index = finite[jumps + 1]  # first sample at the new set point
    before = sps[finite[jumps]]
    ends = np.append(step_index[1:], times.size)
    t_end = np.append(times[step_index[1:]], times[-1] if times.size else math.nan)
    needed = RESPONSE_WINDOW_FACTOR * expected_settling_s
    steps: list[StepResponse] = []
    for k, start in enumerate(step_index.tolist()):
        if t_end[k] - times[start] < needed:
            continue
        stop = int(ends[k])
        sp_after = float(sps[start])
        step = sp_after - float(before[k])
        pv_start_candidates = pvs[max(start - 1, 0) : start + 1]
        finite_start = pv_start_candidates[~np.isnan(pv_start_candidates)]
        if finite_start.size == 0:
            continue
        pv_start = float(finite_start[0])
        with np.errstate(all="ignore"):  # huge values overflow; such steps are skipped
            overshoot, settling, rise = _respond(
                times[start:stop], float(times[start]), sp_after, pvs[start:stop], pv_start, step
            )
        if not all(math.isfinite(v) for v in (step, overshoot, settling or 0.0, rise or 0.0)):
            continue
        steps.append(
            StepResponse(float(times[start]), float(before[k]), sp_after, overshoot, settling, rise)
        )
    return steps
