"""APC attainment: share of a window in which a loop was available to advanced control."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clpm_shared.analytics.loop_config import LoopConfig
from clpm_shared.analytics.loop_window import LoopWindow


@dataclass(frozen=True)
class ApcAttainmentResult:
    """One apc_attainment row (without loop id and window bounds).

    ``attainment + wrong_mode_share + saturated_share + bad_data_share = 1``; all None (with
    ``reasons``) for an empty window.
    """

    samples: int
    attainment: float | None
    wrong_mode_share: float | None
    saturated_share: float | None
    bad_data_share: float | None
    reasons: dict[str, str] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        """Column → value mapping for the apc_attainment table."""
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del row["reasons"]
        return row


def apc_attainment(window: LoopWindow, config: LoopConfig) -> ApcAttainmentResult:
    r"""Share of the window available to APC, and why the rest was not.

    Each sample falls in exactly one class, checked in this order:

    1. bad data: PV or OP missing, or mode unknown;
    2. wrong mode: mode :math:`\notin` ``apc_modes``;
    3. saturated: :math:`OP \le op_{lo}+m` or :math:`OP \ge op_{hi}-m` (saturation margin);
    4. attained: everything else.

    :math:`attainment = |\text{attained}| / N` over all :math:`N` grid samples. Meant for
    loops with ``apc_enabled``; the caller decides which loops to evaluate.
    """
    n = len(window)
    if n == 0:
        names = ("attainment", "wrong_mode_share", "saturated_share", "bad_data_share")
        return ApcAttainmentResult(0, None, None, None, None, dict.fromkeys(names, "empty window"))
    pv, op = window.pv, window.op
    bad = np.isnan(pv) | np.isnan(op) | (window.mode == "")
    in_apc_mode = np.isin(window.mode, sorted(config.apc_modes))
    wrong_mode = ~bad & ~in_apc_mode
    margin = config.effective_sat_margin
    with np.errstate(invalid="ignore"):
        saturated_op = (op <= config.op_lo + margin) | (op >= config.op_hi - margin)
    saturated = ~bad & in_apc_mode & saturated_op
    attained = ~bad & in_apc_mode & ~saturated_op
    return ApcAttainmentResult(
        n,
        float(np.count_nonzero(attained)) / n,
        float(np.count_nonzero(wrong_mode)) / n,
        float(np.count_nonzero(saturated)) / n,
        float(np.count_nonzero(bad)) / n,
    )
