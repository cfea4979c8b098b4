"""Service factor and mode shares: how much of a window a loop spent in its normal modes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clpm_shared.analytics.signal_preparation import FloatArray

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class ModeSummary:
    """Mode statistics of one window.

    Attributes
    ----------
    service_factor : float or None
        Share of valid samples whose mode is a normal mode; None (with ``reason``) when no
        sample has both a PV value and a known mode.
    mode_shares : dict or None
        ``{mode: share of valid samples}``.
    in_service : ndarray of bool
        Samples with a PV value in a normal mode; when the window carries no mode
        information at all, every sample with a PV value.
    reason : str or None
    """

    service_factor: float | None
    mode_shares: dict[str, float] | None
    in_service: BoolArray
    reason: str | None = None


def summarise_modes(
    mode: npt.NDArray[np.str_], pv: FloatArray, normal_modes: frozenset[str]
) -> ModeSummary:
    r"""Service factor :math:`SF = |\{k: v_k \wedge m_k \in M\}| / |\{k: v_k\}|` and mode shares.

    A sample is valid (:math:`v_k`) when PV is present and the mode is known; :math:`M` is the
    loop's set of normal modes. Modes are handled as runs of equal values, so the cost is
    one vectorised comparison plus a loop over mode changes (few per window).
    """
    n = mode.size
    pv_present = ~np.isnan(pv)
    if n == 0:
        return ModeSummary(None, None, pv_present, "empty window")
    starts = np.concatenate(([0], np.flatnonzero(mode[1:] != mode[:-1]) + 1))
    labels = mode[starts].tolist()
    # valid samples per run: cumulative count of PV-present samples at the run boundaries
    present_cum = np.concatenate(([0], np.cumsum(pv_present)))
    bounds = np.append(starts, n)
    present_per_run = np.diff(present_cum[bounds]).tolist()
    counts: dict[str, int] = {}
    for label, count in zip(labels, present_per_run, strict=True):
        if label and count:
            counts[label] = counts.get(label, 0) + int(count)
    total = sum(counts.values())
    if total == 0:
        any_known = any(labels)
        reason = (
            "no sample has both a PV value and a known mode"
            if any_known
            else "no mode information in the window (all samples treated as in service)"
        )
        in_service = np.zeros(n, dtype=bool) if any_known else pv_present
        return ModeSummary(None, None, in_service, reason)
    normal_run = np.array([label in normal_modes for label in labels], dtype=bool)
    in_service = np.repeat(normal_run, np.diff(bounds)) & pv_present
    shares = {label: count / total for label, count in sorted(counts.items())}
    service = sum(count for label, count in counts.items() if label in normal_modes) / total
    return ModeSummary(service, shares, in_service)
