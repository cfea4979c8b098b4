"""Control-error statistics: mean, standard deviation, IAE and the variability index."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clpm_shared.analytics.signal_preparation import FloatArray

D2_FOR_PAIRS = 1.128
"""Control-chart constant d2 for moving ranges of two: E|Δe| = 1.128 σ for white noise."""

VI_SENSITIVITY_SHARE = 0.001
"""Sensitivity ``s`` of the variability index: 0.1 % of the PV span."""


@dataclass(frozen=True, slots=True)
class ErrorStatistics:
    """Statistics of :math:`e = SP - PV` over in-service samples (see :func:`error_statistics`)."""

    samples: int
    error_mean: float
    error_std: float
    error_mean_pct: float | None
    error_std_pct: float | None
    iae_per_hour: float | None
    variability_index: float | None


def _std(values: FloatArray) -> float:
    """Population standard deviation (numpy's ``std`` without its per-call overhead)."""
    deviation = values - float(values.sum()) / values.size
    return math.sqrt(float(deviation @ deviation) / values.size)


def variability_index(e: FloatArray, span: float) -> float | None:
    r"""Emerson-style variability index in % (0 = nothing to gain, 100 = all to gain).

    :math:`VI = 100\,(1 - (S_{cap}+s)/(S_{tot}+s))` with :math:`S_{tot} = \mathrm{std}(e)`,
    the capability :math:`S_{cap} = \overline{|\Delta e|}/1.128` (moving range of
    consecutive samples, d2 = 1.128) and :math:`s = 0.001\,span`. Slow, correlated
    deviations make :math:`S_{tot} \gg S_{cap}` and VI large. Consecutive pairs with a
    missing sample are skipped. Clipped to [0, 100]; None with fewer than three samples or
    two consecutive pairs.
    """
    finite = e[~np.isnan(e)]
    if finite.size < 3:
        return None
    step = e[1:] - e[:-1]
    step = step[~np.isnan(step)]
    if step.size < 2:
        return None
    s_tot = _std(finite)
    s_cap = float(np.abs(step).sum()) / step.size / D2_FOR_PAIRS
    s = VI_SENSITIVITY_SHARE * span
    if not (math.isfinite(s_tot) and math.isfinite(s_cap)) or s_tot + s <= 0:
        return None
    return min(max(100.0 * (1.0 - (s_cap + s) / (s_tot + s)), 0.0), 100.0)


def error_statistics(
    e: FloatArray,
    in_service: npt.NDArray[np.bool_],
    span: float | None,
    ts: float,
    hours: float,
) -> ErrorStatistics | None:
    r"""Mean, std, IAE and VI of the control error over in-service samples.

    :math:`\bar e`, :math:`\sigma_e` in engineering units and in % of the PV span;
    :math:`IAE/h = 100\,\sum |e_k|\,t_s / (span \cdot hours)` (% of span · s per hour of
    window, as KPI_SPEC defines it: Σ|e|·ts / window hours). Samples out of service are set to NaN
    before the variability index, so its moving ranges never straddle a mode change.
    None when no in-service sample has both SP and PV.
    """
    controlled = np.where(in_service, e, np.nan)
    values = controlled[~np.isnan(controlled)]
    if values.size == 0:
        return None
    mean = float(values.sum()) / values.size
    std = _std(values)
    if not (math.isfinite(mean) and math.isfinite(std)):
        return None
    if span is None or span <= 0:
        return ErrorStatistics(values.size, mean, std, None, None, None, None)
    iae = float(np.abs(values).sum()) * ts / span * 100.0 / hours if hours > 0 else None
    return ErrorStatistics(
        values.size,
        mean,
        std,
        mean / span * 100.0,
        std / span * 100.0,
        iae if iae is not None and math.isfinite(iae) else None,
        variability_index(controlled, span),
    )
