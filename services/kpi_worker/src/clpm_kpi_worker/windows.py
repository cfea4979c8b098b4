"""KPI windows: aligned ``[start, start + W)`` intervals, and which ones are due.

Windows are aligned to multiples of the window length since the epoch (UTC), so every replica
and every restart agrees on the same boundaries (15-minute windows start at :00, :15, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, order=True)
class KpiWindow:
    """One analysis window ``[start, end)`` (UTC)."""

    start: datetime
    end: datetime


def window_containing(moment: datetime, minutes: int) -> KpiWindow:
    """The aligned window that contains ``moment``."""
    length = timedelta(minutes=minutes)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    start = epoch + ((moment.astimezone(UTC) - epoch) // length) * length
    return KpiWindow(start, start + length)


def last_complete_window(now: datetime, minutes: int) -> KpiWindow:
    """The newest aligned window whose end is at or before ``now``."""
    current = window_containing(now, minutes)
    length = timedelta(minutes=minutes)
    return KpiWindow(current.start - length, current.start)


def windows_between(start: datetime, end: datetime, minutes: int) -> list[KpiWindow]:
    """Aligned windows that lie within ``[start, end)``, oldest first (partial ones excluded)."""
    length = timedelta(minutes=minutes)
    first = window_containing(start, minutes)
    if first.start < start:
        first = KpiWindow(first.end, first.end + length)
    out: list[KpiWindow] = []
    cursor = first
    while cursor.end <= end:
        out.append(cursor)
        cursor = KpiWindow(cursor.end, cursor.end + length)
    return out


def newest_first(windows: Sequence[KpiWindow]) -> list[KpiWindow]:
    """The order of a history run: the newest window first, so that every loop has a current
    KPI early, then the rest from newest to oldest (the trends fill backwards from now)."""
    return sorted(windows, reverse=True)


def due_windows(
    now: datetime, minutes: int, last_done: datetime | None, max_catchup: int
) -> list[KpiWindow]:
    """Windows to compute for one loop, oldest first.

    ``last_done`` is the start of the newest window already in kpi_results (None for a loop
    never computed). After downtime the missed windows are caught up, but at most
    ``max_catchup`` of them (the newest); a loop never computed gets only the last window.
    """
    newest = last_complete_window(now, minutes)
    if last_done is None or max_catchup <= 1:
        return [] if last_done is not None and last_done >= newest.start else [newest]
    length = timedelta(minutes=minutes)
    earliest = max(last_done + length, newest.start - (max_catchup - 1) * length)
    return windows_between(earliest, newest.end, minutes)


RECHECK_GAIN = 0.1
"""A stored offline / not_assessed window is computed again when the share of its minutes
with data in agg_1m exceeds its stored completeness by at least this much: enough new data to
change the verdict, without recomputing a window that stays partial every cycle."""


def windows_to_recheck(
    incomplete: Sequence[tuple[str, datetime, float | None]],
    minutes_with_data: Mapping[datetime, Mapping[str, int]],
    minutes: int,
) -> dict[KpiWindow, list[str]]:
    """Loops per window whose data has arrived since the window was stored.

    ``incomplete`` holds ``(loop_id, window_start, stored completeness or None)`` of windows
    stored as offline or not_assessed; ``minutes_with_data[window_start][loop_id]`` counts
    the window's agg_1m minutes with PV samples now.
    """
    length = timedelta(minutes=minutes)
    out: dict[KpiWindow, list[str]] = {}
    for loop_id, start, completeness in incomplete:
        share = minutes_with_data.get(start, {}).get(loop_id, 0) / minutes
        if share >= (completeness or 0.0) + RECHECK_GAIN:
            out.setdefault(KpiWindow(start, start + length), []).append(loop_id)
    return out
