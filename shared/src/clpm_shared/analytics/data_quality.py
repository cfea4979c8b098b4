"""Data quality of a window: completeness, flatline, out-of-range, repeated values, staleness."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clpm_shared.analytics.loop_window import LoopWindow

FLATLINE_SHARE = 0.95
"""PV unchanged for at least this share of samples = flatline (KPI_SPEC)."""


@dataclass(frozen=True, slots=True)
class DataQuality:
    """Data-quality figures of one window (see :func:`assess_data_quality`).

    Attributes
    ----------
    completeness : float
        Share of the expected samples (one per grid period) that arrived with a PV value.
    flatline : bool or None
        PV unchanged between consecutive fresh samples for >= 95 % of them.
    out_of_range : float or None
        Share of samples with PV outside the configured [pv_lo, pv_hi] or OP outside
        [op_lo, op_hi].
    repeated : float or None
        Share of fresh PV samples equal to the previous one (compression or a frozen
        transmitter repeating its last value).
    stale_s : float or None
        Age of the newest sample at the window end, seconds.
    reasons : dict
        Why a field is None.
    """

    completeness: float
    flatline: bool | None
    out_of_range: float | None
    repeated: float | None
    stale_s: float | None
    reasons: dict[str, str]


def assess_data_quality(
    window: LoopWindow,
    pv_lo: float | None,
    pv_hi: float | None,
    op_lo: float,
    op_hi: float,
) -> DataQuality:
    r"""Data-quality figures of a window.

    * completeness :math:`= \min(1, M_{obs}/N)` with :math:`M_{obs}` the source samples with
      a PV value inside the window (``window.observed``; when unknown, the grid points that
      received a fresh sample), :math:`N` the grid length;
    * repeated :math:`= |\{j: PV_j = PV_{j-1}\}| / (M-1)` over the :math:`M` fresh PV
      samples; flatline :math:`= repeated \ge 0.95`;
    * out_of_range: share of samples with a PV value that lie outside
      :math:`[pv_{lo}, pv_{hi}]` (only when both are configured; a range taken from the
      data's own percentiles would make this meaningless) or whose OP lies outside
      :math:`[op_{lo}, op_{hi}]`;
    * stale: window end minus the time of the newest sample.
    """
    reasons: dict[str, str] = {}
    n = len(window)
    pv = window.pv
    present = ~np.isnan(pv)
    fresh = window.fresh if window.fresh is not None else present
    fresh = fresh & present
    observed = window.observed if window.observed is not None else int(np.count_nonzero(fresh))
    completeness = min(float(observed) / n, 1.0) if n else 0.0

    fresh_pv = pv[fresh]
    repeated: float | None = None
    flatline: bool | None = None
    if fresh_pv.size >= 2:
        repeated = float(np.count_nonzero(fresh_pv[1:] == fresh_pv[:-1])) / (fresh_pv.size - 1)
        flatline = repeated >= FLATLINE_SHARE
    else:
        reasons["dq_repeated"] = reasons["dq_flatline"] = "fewer than two fresh PV samples"

    out_of_range: float | None = None
    checked = int(np.count_nonzero(present))
    if checked:
        outside = np.zeros(n, dtype=bool)
        if pv_lo is not None and pv_hi is not None:
            outside |= (pv < pv_lo) | (pv > pv_hi)
        op = window.op
        outside |= (op < op_lo) | (op > op_hi)
        out_of_range = float(np.count_nonzero(outside & present)) / checked
    else:
        reasons["dq_out_of_range"] = "no PV samples"

    stale: float | None = None
    if window.last_sample_t is not None and n:
        stale = max(window.end - window.last_sample_t, 0.0)
    else:
        reasons["dq_stale_s"] = "no sample in or before the window"
    return DataQuality(completeness, flatline, out_of_range, repeated, stale, reasons)
