"""KPI windows: alignment, due windows and bounded catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clpm_kpi_worker.windows import (
    KpiWindow,
    due_windows,
    last_complete_window,
    newest_first,
    window_containing,
    windows_between,
)

T0 = datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
M15 = timedelta(minutes=15)


def test_windows_are_aligned_to_the_window_length() -> None:
    assert window_containing(T0 + timedelta(minutes=7, seconds=3), 15) == KpiWindow(T0, T0 + M15)
    assert window_containing(T0 + M15, 15).start == T0 + M15


def test_last_complete_window_ends_at_or_before_now() -> None:
    assert last_complete_window(T0 + timedelta(minutes=16), 15) == KpiWindow(T0, T0 + M15)
    assert last_complete_window(T0 + M15, 15) == KpiWindow(T0, T0 + M15)


def test_windows_between_excludes_partial_windows() -> None:
    windows = windows_between(T0 + timedelta(minutes=1), T0 + 4 * M15 + timedelta(minutes=3), 15)
    assert [w.start for w in windows] == [T0 + M15, T0 + 2 * M15, T0 + 3 * M15]


def test_a_new_loop_gets_only_the_last_window() -> None:
    now = T0 + 4 * M15 + timedelta(minutes=2)
    assert due_windows(now, 15, None, 96) == [KpiWindow(T0 + 3 * M15, T0 + 4 * M15)]


def test_nothing_is_due_when_the_last_window_is_done() -> None:
    now = T0 + 4 * M15 + timedelta(minutes=2)
    assert due_windows(now, 15, T0 + 3 * M15, 96) == []


def test_missed_windows_are_caught_up_after_downtime() -> None:
    now = T0 + 10 * M15 + timedelta(seconds=5)
    due = due_windows(now, 15, T0 + 5 * M15, 96)
    assert [w.start for w in due] == [T0 + k * M15 for k in range(6, 10)]


def test_catch_up_is_bounded_to_the_newest_windows() -> None:
    now = T0 + 100 * M15
    due = due_windows(now, 15, T0, 3)
    assert [w.start for w in due] == [T0 + 97 * M15, T0 + 98 * M15, T0 + 99 * M15]


def test_a_history_run_takes_the_newest_window_first_then_goes_back_in_time() -> None:
    history = windows_between(T0, T0 + 4 * M15, 15)
    assert [w.start for w in newest_first(history)] == [
        T0 + 3 * M15,
        T0 + 2 * M15,
        T0 + M15,
        T0,
    ]
