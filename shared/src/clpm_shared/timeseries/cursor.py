"""Opaque page cursors of ``query_raw``: the position just after the last sample returned.

A position is ``(t_ns, skip)``: the next page starts at ``time >= t_ns`` and skips the ``skip``
samples at exactly ``t_ns`` that were already returned. Counting the samples at the boundary
time (rather than asking for ``time > t_ns``) keeps pagination free of loss and duplicates even
when a backend holds several samples of one loop at the same time (InfluxDB keeps one series per
``Mode`` tag value). The cursor names its loop so that it cannot be replayed on another one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clpm_shared.timeseries.base import IntArray, InvalidQueryError, RawPage, RawSeries
from clpm_shared.timeseries.raw_columns import keep_fields


@dataclass(frozen=True, slots=True)
class CursorPosition:
    t_ns: int
    skip: int


def _loop_tag(loop_id: str) -> str:
    return hashlib.blake2b(loop_id.encode(), digest_size=4).hexdigest()


def encode_cursor(loop_id: str, position: CursorPosition) -> str:
    text = f"1.{_loop_tag(loop_id)}.{position.t_ns}.{position.skip}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str, loop_id: str, start_ns: int, end_ns: int, parameter: str = "cursor"
) -> CursorPosition:
    """Position of ``cursor``; InvalidQueryError when it is malformed or belongs elsewhere."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 200:
        raise InvalidQueryError(parameter, "malformed cursor")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        version, tag, t_text, skip_text = text.split(".")
        t_ns, skip = int(t_text), int(skip_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidQueryError(parameter, "malformed cursor") from None
    if version != "1" or skip < 0:
        raise InvalidQueryError(parameter, "malformed cursor")
    if tag != _loop_tag(loop_id):
        raise InvalidQueryError(parameter, "cursor belongs to another loop")
    if not start_ns <= t_ns < max(end_ns, start_ns + 1):
        raise InvalidQueryError(parameter, "cursor lies outside the requested time range")
    return CursorPosition(t_ns, skip)


def next_position(t_ns: IntArray, previous: CursorPosition | None) -> CursorPosition:
    """Position after a non-empty page whose sample times are ``t_ns`` (sorted)."""
    last = int(t_ns[-1])
    skip = int(np.count_nonzero(t_ns == last))
    if previous is not None and previous.t_ns == last:
        skip += previous.skip
    return CursorPosition(last, skip)


def page_of(
    series: RawSeries, limit: int | None, fields: Sequence[str], previous: CursorPosition | None
) -> RawPage:
    """The page of ``query_raw``: ``series`` was fetched with one sample more than ``limit``,
    which tells whether another page follows; unrequested columns are blanked."""
    more = limit is not None and len(series) > limit
    if more:
        series = RawSeries(
            series.loop_id,
            series.t_ns[:limit],
            series.pv[:limit],
            series.sp[:limit],
            series.op[:limit],
            series.mode[:limit],
        )
    series = keep_fields(series, fields)
    next_cursor = (
        encode_cursor(series.loop_id, next_position(series.t_ns, previous)) if more else None
    )
    return RawPage(series, next_cursor)
