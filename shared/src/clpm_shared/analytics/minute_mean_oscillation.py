"""A loop's oscillation judged on its 1-minute means, for plant-wide views of long windows.

Over many hours the raw samples of a whole plant are too many to read for one request (about
230,000 samples per second end to end: a day of 80 loops at 1 Hz takes the gateway's 30-s
timeout). The 1-minute aggregates (``agg_1m``) hold a day of a loop in 1,440 rows, and keep
every oscillation slower than about four minutes: the same ACF test
(:func:`~clpm_shared.analytics.oscillation.detect_oscillation`, Thornhill, Huang & Zhang 2003)
on the minute means of the control error, ``SP - PV`` (of PV when the loop was mostly in
manual), sampled every 60 s. Its shortest period is four samples (240 s); averaging over a
minute damps a period ``T`` by ``sinc(60 s / T)`` (0.90 at 240 s, 0.99 at 10 min), so the
amplitude is slightly low for the fastest of them. Faster oscillations are seen in raw windows
and in the 15-minute KPI results. Stiction cannot be judged on minute means: the summary's
verdict is "undetermined", and a cluster's likely source is then its largest oscillation.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from clpm_shared.analytics.diagnosis import OscillationSummary
from clpm_shared.analytics.kpis import pv_span_of
from clpm_shared.analytics.loop_config import LoopConfig
from clpm_shared.analytics.oscillation import detect_oscillation

MINUTE_S = 60.0

FloatArray = npt.NDArray[np.float64]


def minute_mean_oscillation(
    loop_id: str,
    minute_index: npt.NDArray[np.int64],
    pv_mean: FloatArray,
    sp_mean: FloatArray,
    manual_share: FloatArray,
    n_minutes: int,
    config: LoopConfig,
) -> OscillationSummary | None:
    """The oscillation of one loop over ``n_minutes`` minutes, or None when it does not oscillate.

    The summary of :func:`minute_mean_error`, which documents the parameters.
    """
    judged = minute_mean_error(
        loop_id, minute_index, pv_mean, sp_mean, manual_share, n_minutes, config
    )
    return None if judged is None else judged[0]


def minute_mean_error(
    loop_id: str,
    minute_index: npt.NDArray[np.int64],
    pv_mean: FloatArray,
    sp_mean: FloatArray,
    manual_share: FloatArray,
    n_minutes: int,
    config: LoopConfig,
) -> tuple[OscillationSummary, FloatArray] | None:
    """An oscillating loop's oscillation and minute-mean control error, else None.

    Parameters
    ----------
    loop_id : str
        The loop.
    minute_index : ndarray of int
        Minute of each row from the window start (``0 <= index < n_minutes``, others are
        ignored). The loop is judged from its first to its last minute with a row; minutes
        without a row in between are missing (at most 20 % may be, as for raw samples).
    pv_mean, sp_mean : ndarray of float
        Minute means of PV and SP (NaN where undefined).
    manual_share : ndarray of float
        Share of each minute's samples in manual (0-1).
    n_minutes : int
        Length of the window in minutes.
    config : LoopConfig
        The loop's settings: ``pv_lo``/``pv_hi`` give the span the amplitude is a percentage of
        (else the 0.1-99.9 percentile range of the PV and SP means).

    Returns
    -------
    (OscillationSummary, ndarray) or None
        Period, amplitude in % of span and regularity (stiction "undetermined"), and the
        control error (PV when mostly in manual) of every minute of the window, NaN where
        missing, for the plant-wide analysis.
    """
    if n_minutes < 1 or minute_index.size == 0:
        return None
    inside = (minute_index >= 0) & (minute_index < n_minutes)
    if not inside.any():
        return None
    # judged over the minutes the loop has data for (a loop added or started late in the
    # window is judged on what it has); gaps inside that span count as missing
    first = int(minute_index[inside].min())
    index = minute_index[inside] - first
    span_minutes = int(index.max()) + 1
    pv = np.full(span_minutes, np.nan)
    sp = np.full(span_minutes, np.nan)
    pv[index] = pv_mean[inside]
    sp[index] = sp_mean[inside]
    mostly_manual = float(np.nanmean(manual_share[inside])) > 0.5 if index.size else False
    signal = pv if mostly_manual else sp - pv
    result = detect_oscillation(signal, MINUTE_S)
    if not result.oscillating or result.period_s is None:
        return None
    span, _ = pv_span_of(pv, sp, config)
    amplitude_pct = (
        100.0 * result.amplitude / span
        if result.amplitude is not None and span is not None
        else None
    )
    summary = OscillationSummary(
        loop_id=loop_id,
        period_s=float(result.period_s),
        amplitude_pct=amplitude_pct,
        regularity=result.regularity,
    )
    error = np.full(n_minutes, np.nan)
    error[first : first + span_minutes] = signal
    return summary, error
