"""How much the controller output moves: travel and reversals per hour."""

from __future__ import annotations

import numpy as np

from clpm_shared.analytics.reversals import count_reversals
from clpm_shared.analytics.signal_preparation import FloatArray


def op_travel_per_hour(op: FloatArray, op_span: float, hours: float) -> float | None:
    r"""Valve travel :math:`100 \sum_k |OP_k - OP_{k-1}| / (span \cdot hours)` in % span per hour.

    Only pairs of consecutive samples that both have an OP value contribute (a gap is not a
    move). None when there is no such pair or the window has no length.
    """
    if hours <= 0 or op.size < 2:
        return None
    step = op[1:] - op[:-1]
    finite = ~np.isnan(step)
    if not finite.any():
        return None
    return float(np.abs(step[finite]).sum()) / op_span * 100.0 / hours


def op_reversals_per_hour(op: FloatArray, deadband: float, hours: float) -> float | None:
    """Direction changes of OP per hour, counted only beyond ``deadband`` (zigzag rule).

    See :func:`clpm_shared.analytics.reversals.count_reversals`; missing samples are skipped.
    None when fewer than two OP values exist or the window has no length.
    """
    values = op[~np.isnan(op)]
    if hours <= 0 or values.size < 2:
        return None
    return count_reversals(values, deadband) / hours
