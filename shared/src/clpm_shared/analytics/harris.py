"""Harris minimum-variance performance index from a least-squares AR fit of the control error."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from clpm_shared.analytics.signal_preparation import FloatArray, as_float_array

MIN_SAMPLES_PER_PARAMETER = 10
"""The AR fit needs at least this many samples per coefficient (else the order is reduced)."""

MIN_AR_ORDER = 2


def harris_delay(dead_time_s: float | None, ts: float) -> tuple[int, bool]:
    r"""Delay ``d`` in samples for the Harris index and whether it was assumed.

    :math:`d = \mathrm{round}(\theta/t_s) + 1` (the ``+1`` is the sampling delay of a
    discrete controller); when the dead time :math:`\theta` is unknown, ``d = 1`` and the
    second value is True.
    """
    if dead_time_s is None or not math.isfinite(dead_time_s) or dead_time_s < 0:
        return 1, True
    return round(dead_time_s / ts) + 1, False


def fit_ar(y: FloatArray, order: int) -> tuple[FloatArray, float]:
    r"""Least-squares AR(p) fit :math:`y_k = \sum_{i=1}^{p} a_i y_{k-i} + \varepsilon_k`.

    Solved through the normal equations of the least-squares problem (Cholesky-friendly
    ``p × p`` system, an order of magnitude faster than an SVD of the ``N × p`` regressor
    matrix); falls back to ``numpy.linalg.lstsq`` when that system is singular.

    Returns
    -------
    a : ndarray
        Coefficients :math:`a_1 \dots a_p`.
    residual_variance : float
        :math:`\sigma_a^2`, mean square of the one-step prediction residuals.
    """
    windows = sliding_window_view(y, order + 1)
    regressors = np.ascontiguousarray(windows[:, order - 1 :: -1] if order > 0 else windows[:, :0])
    target = windows[:, order]
    gram = regressors.T @ regressors
    try:
        coefficients = np.linalg.solve(gram, regressors.T @ target)
    except np.linalg.LinAlgError:
        coefficients = np.linalg.lstsq(regressors, target, rcond=None)[0]
    if not np.all(np.isfinite(coefficients)):
        coefficients = np.linalg.lstsq(regressors, target, rcond=None)[0]
    residual = target - regressors @ coefficients
    solution: FloatArray = np.asarray(coefficients, dtype=np.float64)
    return solution, float(residual @ residual) / residual.size


def impulse_response(a: FloatArray, length: int) -> FloatArray:
    r"""First ``length`` coefficients of :math:`\psi(q^{-1}) = 1/(1 - \sum a_i q^{-i})`.

    :math:`\psi_0 = 1,\ \psi_j = \sum_{i=1}^{\min(j,p)} a_i\,\psi_{j-i}`.
    """
    psi = np.zeros(length)
    if length == 0:
        return psi
    psi[0] = 1.0
    for j in range(1, length):
        k = min(j, a.size)
        psi[j] = float(a[:k] @ psi[j - 1 :: -1][:k])
    return psi


def harris_index(y: npt.ArrayLike, delay: int, ar_order: int = 20) -> float:
    r"""Harris (1989) minimum-variance index :math:`\eta = \sigma^2_{mv} / \sigma^2_y`.

    Harris, T. J. (1989), "Assessment of control loop performance", Can. J. Chem. Eng.
    67, 856-861; AR-based estimation as in Desborough & Harris (1992).

    1. Remove the mean of ``y`` (the control error).
    2. Fit :math:`A(q^{-1})\,y_k = a_k` by least squares with order :math:`p`
       (``ar_order``, reduced to ``N/10`` for short records).
    3. The closed-loop impulse response :math:`\psi = 1/A` gives the part of the output
       variance no controller can remove with delay :math:`d`:
       :math:`\sigma^2_{mv} = \sigma^2_a \sum_{i=0}^{d-1} \psi_i^2`.
    4. :math:`\eta = \sigma^2_{mv}/\sigma^2_y`, clipped to :math:`(0, 1]`; 1 means
       minimum-variance performance, values near 0 a loop far from it.

    For a moving-average disturbance :math:`y = (c_0 + c_1 q^{-1} + \dots) a` the exact
    answer is :math:`\eta = \sum_{i<d} c_i^2 / \sum_i c_i^2`.

    Parameters
    ----------
    y : array_like
        Control error (or output deviation), uniformly sampled, all finite.
    delay : int
        Process delay in samples including the sampling delay, ``d >= 1``
        (see :func:`harris_delay`).
    ar_order : int
        AR model order (default 20).

    Returns
    -------
    float
        :math:`\eta \in (0, 1]`.

    Raises
    ------
    ValueError
        Naming the parameter: non-finite samples, too few samples (``< 5·(p+1)`` with
        ``p >= 2``), no variance, ``delay < 1`` or ``ar_order < 1``.
    """
    if isinstance(delay, bool) or int(delay) != delay or delay < 1:
        raise ValueError(f"delay: must be an integer >= 1 (samples), got {delay!r}")
    if isinstance(ar_order, bool) or int(ar_order) != ar_order or ar_order < 1:
        raise ValueError(f"ar_order: must be an integer >= 1, got {ar_order!r}")
    values = as_float_array(y)
    if np.isnan(values).any():
        raise ValueError("y: all samples must be finite (fill or drop gaps first)")
    order = min(int(ar_order), values.size // MIN_SAMPLES_PER_PARAMETER)
    if order < MIN_AR_ORDER:
        raise ValueError(
            f"y: needs at least {MIN_AR_ORDER * MIN_SAMPLES_PER_PARAMETER} samples, "
            f"got {values.size}"
        )
    peak = float(np.max(np.abs(values)))
    scaled = values / peak if peak > 0 else values
    centred = scaled - float(scaled.sum()) / scaled.size
    variance = float(centred @ centred) / centred.size
    if not variance > 1e-24:
        raise ValueError("y: has no variance (constant signal)")
    coefficients, residual_variance = fit_ar(centred, order)
    psi = impulse_response(coefficients, int(delay))
    minimum_variance = residual_variance * float(psi @ psi)
    eta = minimum_variance / variance
    if not math.isfinite(eta):
        raise ValueError("y: AR fit failed (numerically singular)")
    return float(min(max(eta, 1e-12), 1.0))
