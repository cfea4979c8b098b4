"""When an acknowledgement holds: until its date, or until what was acknowledged changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clpm_shared.work_items import (
    Acknowledgement,
    LoopCondition,
    acknowledgement_holds,
    findings_by_category,
    holding_acknowledgements,
)

NOW = datetime(2025, 3, 4, 6, 0, tzinfo=UTC)
STICKY = LoopCondition(status="poor", main_problem="stiction", findings={"stiction": 0.6})


def holds(
    condition: LoopCondition | None,
    *,
    category: str | None = None,
    until: datetime | None = None,
    state: str = "open",
) -> bool:
    snapshot = None if until is not None else STICKY.snapshot(category)
    return acknowledgement_holds(
        state=state,
        category=category,
        until=until,
        snapshot=snapshot,
        now=NOW,
        current=condition,
    )


def test_a_dated_acknowledgement_holds_until_its_date_only() -> None:
    assert holds(STICKY, until=NOW + timedelta(seconds=1))
    assert not holds(STICKY, until=NOW)
    assert not holds(STICKY, until=NOW - timedelta(days=1))


def test_a_dated_acknowledgement_holds_although_the_loop_changed() -> None:
    changed = LoopCondition(status="poor", main_problem="oscillation", findings={})
    assert holds(changed, until=NOW + timedelta(days=1))


def test_a_loop_acknowledgement_holds_while_nothing_changed_or_the_loop_improved() -> None:
    assert holds(STICKY)
    assert holds(LoopCondition(status="fair", main_problem="stiction", findings={}))
    assert holds(LoopCondition(status="offline", main_problem="stiction", findings={}))


def test_a_loop_acknowledgement_ends_when_the_main_problem_changes() -> None:
    assert not holds(LoopCondition(status="poor", main_problem="oscillation", findings={}))
    assert not holds(LoopCondition(status="good", main_problem=None, findings={}))


def test_a_loop_acknowledgement_ends_when_the_status_gets_worse() -> None:
    fair = LoopCondition(status="fair", main_problem="stiction", findings={})
    snapshot = fair.snapshot(None)
    worse = LoopCondition(status="poor", main_problem="stiction", findings={})
    assert acknowledgement_holds(
        state="open", category=None, until=None, snapshot=snapshot, now=NOW, current=fair
    )
    assert not acknowledgement_holds(
        state="open", category=None, until=None, snapshot=snapshot, now=NOW, current=worse
    )


def test_a_finding_acknowledgement_ends_when_the_finding_clears_or_gets_worse() -> None:
    assert holds(STICKY, category="stiction")
    milder = LoopCondition(status="poor", main_problem="stiction", findings={"stiction": 0.4})
    assert holds(milder, category="stiction")
    worse = LoopCondition(status="poor", main_problem="stiction", findings={"stiction": 0.8})
    assert not holds(worse, category="stiction")
    cleared = LoopCondition(status="poor", main_problem="stiction", findings={"saturation": 0.9})
    assert not holds(cleared, category="stiction")


def test_a_closed_acknowledgement_never_holds() -> None:
    assert not holds(STICKY, state="done")
    assert not holds(STICKY, state="wont_fix", until=NOW + timedelta(days=1))
    assert holds(STICKY, state="in_progress")


def test_an_unknown_condition_counts_as_unchanged() -> None:
    assert holds(None)


def test_findings_keep_the_highest_severity_of_a_category() -> None:
    assert findings_by_category([("stiction", 0.3), ("stiction", 0.7), ("saturation", 0.2)]) == {
        "stiction": 0.7,
        "saturation": 0.2,
    }


def test_a_loop_acknowledgement_ends_when_a_new_finding_category_appears() -> None:
    assert holds(LoopCondition(status="poor", main_problem="stiction", findings={"stiction": 0.9}))
    assert not holds(
        LoopCondition(
            status="poor", main_problem="stiction", findings={"stiction": 0.6, "saturation": 0.2}
        )
    )


def test_holding_acknowledgements_per_loop() -> None:
    dated = Acknowledgement("FIC101", None, "open", NOW + timedelta(hours=1), None)
    expired = Acknowledgement("FIC102", None, "open", NOW - timedelta(hours=1), None)
    finding = Acknowledgement(
        "TIC205", "stiction", "in_progress", None, STICKY.snapshot("stiction")
    )
    changed = Acknowledgement("LIC300", None, "open", None, STICKY.snapshot(None))
    closed = Acknowledgement("PIC400", None, "done", NOW + timedelta(hours=1), None)
    oscillating = LoopCondition(status="poor", main_problem="oscillation", findings={})
    assert holding_acknowledgements(
        [dated, expired, finding, changed, closed],
        {"TIC205": STICKY, "LIC300": oscillating},
        NOW,
    ) == {"FIC101": frozenset({None}), "TIC205": frozenset({"stiction"})}
