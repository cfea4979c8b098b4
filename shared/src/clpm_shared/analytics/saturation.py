"""Share of in-service time the controller output sat at (or within a margin of) its limits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clpm_shared.analytics.signal_preparation import FloatArray


@dataclass(frozen=True, slots=True)
class SaturationShares:
    """``saturation = sat_low + sat_high`` over in-service samples with an OP value."""

    saturation: float
    sat_low: float
    sat_high: float


def saturation_shares(
    op: FloatArray,
    in_service: npt.NDArray[np.bool_],
    op_lo: float,
    op_hi: float,
    margin: float,
) -> SaturationShares | None:
    r"""OP saturation shares.

    With margin :math:`m` and the in-service samples :math:`S` that have an OP value:
    :math:`sat_{low} = |\{k \in S: OP_k \le op_{lo} + m\}|/|S|`,
    :math:`sat_{high} = |\{k \in S: OP_k \ge op_{hi} - m\}|/|S|`,
    :math:`saturation = sat_{low} + sat_{high}`. None when :math:`S` is empty.
    """
    considered = in_service & ~np.isnan(op)
    total = int(considered.sum())
    if total == 0:
        return None
    values = op[considered]
    low = int(np.count_nonzero(values <= op_lo + margin))
    high = int(np.count_nonzero(values >= op_hi - margin))
    # with a margin wider than half the span a sample could count twice; count it as low
    if op_lo + margin >= op_hi - margin:
        high = int(np.count_nonzero((values >= op_hi - margin) & (values > op_lo + margin)))
    return SaturationShares((low + high) / total, low / total, high / total)
