"""Checking points before a backend writes them: loop id, time, finite values, known mode.

Bad points are logged and dropped, the rest of the batch is written: a worker never stops on
one malformed sample. A sample whose mode is unknown keeps its values and loses the tag.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from clpm_shared.timeseries.base import LOOP_ID_PATTERN, Point, normalise_mode, to_ns

logger = logging.getLogger(__name__)


class SampleRow(NamedTuple):
    """A valid point: missing or non-finite values are None, unknown mode is None."""

    loop_id: str
    t_ns: int
    pv: float | None
    sp: float | None
    op: float | None
    mode: str | None


def _finite(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _why_rejected(point: object) -> str | None:
    if not isinstance(point, Point):
        return "not a Point"
    if not isinstance(point.loop_id, str) or not LOOP_ID_PATTERN.fullmatch(point.loop_id):
        return "invalid loop_id"
    if not isinstance(point.time, datetime) or point.time.tzinfo is None:
        return "time must be a timezone-aware datetime"
    return None


def sample_rows(points: Sequence[Point] | Iterable[Point]) -> list[SampleRow]:
    """Valid rows of ``points`` (input order); rejected points are counted in one log line."""
    rows: list[SampleRow] = []
    rejected: dict[str, int] = {}
    example: str | None = None
    for point in points:
        reason = _why_rejected(point)
        if reason is None:
            pv, sp, op = _finite(point.pv), _finite(point.sp), _finite(point.op)
            if pv is None and sp is None and op is None:
                reason = "no finite PV, SP or OP value"
            else:
                rows.append(
                    SampleRow(
                        point.loop_id, to_ns(point.time), pv, sp, op, normalise_mode(point.mode)
                    )
                )
                continue
        rejected[reason] = rejected.get(reason, 0) + 1
        if example is None:
            example = repr(point)[:200]
    if rejected:
        logger.warning(
            "dropped invalid points",
            extra={"dropped": sum(rejected.values()), "reasons": rejected, "example": example},
        )
    return rows
