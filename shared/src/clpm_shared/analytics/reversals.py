"""Count direction reversals of a signal, ignoring moves smaller than a deadband (zigzag)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def turning_points(x: FloatArray) -> FloatArray:
    """Samples where the direction of ``x`` changes, plus the first and last sample.

    Flat runs are collapsed first, so a held value never counts as a turn. NaN samples must
    have been removed by the caller. Reversal counting only ever needs these points, which
    keeps its sequential part short.
    """
    if x.size < 3:
        return x
    step = x[1:] - x[:-1]
    moving = step != 0.0
    if not moving.any():
        return x[:1]
    # keep the first sample of every run of equal values
    keep = np.concatenate(([True], moving))
    x = x[keep]
    if x.size < 3:
        return x
    step = x[1:] - x[:-1]
    turn = np.signbit(step[1:]) != np.signbit(step[:-1])
    inner = np.flatnonzero(turn) + 1
    return np.concatenate((x[:1], x[inner], x[-1:]))


def count_reversals(x: FloatArray, deadband: float) -> int:
    """Number of direction changes of ``x`` whose move from the last extreme exceeds ``deadband``.

    Parameters
    ----------
    x : ndarray
        Signal without NaN (drop or fill missing samples first).
    deadband : float
        Minimum move, in the units of ``x``, away from the running extreme before a change
        of direction counts (``>= 0``).

    Returns
    -------
    int
        Reversal count. A move only counts once the signal has travelled more than
        ``deadband`` in the new direction measured from the extreme of the previous move
        (the zigzag rule used for valve reversal counting): with extreme
        :math:`x_e` of a rising move, a reversal happens at the first :math:`x_k < x_e - h`.
        The first move after the start establishes a direction and is not a reversal.
    """
    points = turning_points(x).tolist()
    if len(points) < 2:
        return 0
    h = float(deadband)
    reversals = 0
    direction = 0  # 0: not yet established, +1 rising, -1 falling
    low = high = extreme = points[0]
    for value in points[1:]:
        if direction == 0:
            low, high = min(low, value), max(high, value)
            if value > low + h:
                direction, extreme = 1, value
            elif value < high - h:
                direction, extreme = -1, value
        elif direction > 0:
            if value > extreme:
                extreme = value
            elif value < extreme - h:
                direction, extreme = -1, value
                reversals += 1
        elif value < extreme:
            extreme = value
        elif value > extreme + h:
            direction, extreme = 1, value
            reversals += 1
    return reversals
