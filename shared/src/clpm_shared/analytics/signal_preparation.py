"""Prepare a sampled signal for analysis: fill short gaps, scale, remove a linear trend."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

MAX_MISSING_SHARE = 0.2
"""Above this share of missing samples a signal is not analysed (interpolation would invent it)."""


def checked_sample_period(ts: object, parameter: str = "ts") -> float:
    """``ts`` as a float; ValueError naming the parameter unless it is a positive finite number."""
    try:
        value = float(ts)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(ts, bool) or not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{parameter}: sample period must be a positive finite number, got {ts!r}")
    return value


def as_float_array(x: npt.ArrayLike) -> FloatArray:
    """1-D float64 copy of ``x`` with every non-finite value (inf, -inf, NaN) turned into NaN."""
    array = np.array(x, dtype=np.float64, copy=True).reshape(-1)
    array[~np.isfinite(array)] = np.nan
    return array


def fill_gaps(x: FloatArray) -> FloatArray | None:
    """Linearly interpolate NaN samples; ``None`` when more than ``MAX_MISSING_SHARE`` is missing.

    Leading and trailing gaps take the nearest valid value (``numpy.interp`` semantics).
    """
    missing = np.isnan(x)
    n_missing = int(missing.sum())
    if n_missing == 0:
        return x
    if n_missing > MAX_MISSING_SHARE * x.size:
        return None
    index = np.arange(x.size, dtype=np.float64)
    filled = x.copy()
    filled[missing] = np.interp(index[missing], index[~missing], x[~missing])
    return filled


def detrend_linear(x: FloatArray) -> FloatArray:
    r"""Residual of the least-squares line through ``x`` (closed form, no matrix solve).

    With centred index :math:`k_c = k - \bar k`, the slope is
    :math:`b = \sum k_c x_k / \sum k_c^2` and the residual :math:`x - \bar x - b\,k_c`.
    """
    n = x.size
    if n < 2:
        return np.zeros_like(x)
    centred_index = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    slope = float(centred_index @ x) / float(centred_index @ centred_index)
    residual: FloatArray = x - float(x.sum()) / n - slope * centred_index
    return residual


def scale_to_unit(x: FloatArray) -> tuple[FloatArray, float]:
    """Divide by the largest magnitude so sums of squares cannot overflow; returns the factor.

    The factor is 1 for an all-zero signal.
    """
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if not np.isfinite(peak) or peak == 0.0:
        return x, 1.0
    return x / peak, peak
