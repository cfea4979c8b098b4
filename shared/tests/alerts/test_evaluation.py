"""Alert rule evaluation: conditions, scopes, de-duplication, re-notification, clearing and
quiet hours, on hand-made fleets with known answers."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from clpm_shared.alerts import (
    FLEET,
    AlertRule,
    FleetState,
    OpenAlert,
    QuietHours,
    evaluate,
    validate_rule,
)

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def fleet(**overrides: object) -> FleetState:
    rows = [
        {
            "loop_id": "FIC101",
            "unit": "U1",
            "area": "A",
            "health": 40.0,
            "status": "poor",
            "previous_status": "fair",
            "last_data_at": NOW.timestamp() - 60,
        },
        {
            "loop_id": "FIC102",
            "unit": "U1",
            "area": "A",
            "health": 90.0,
            "status": "good",
            "previous_status": "good",
            "last_data_at": NOW.timestamp() - 7200,
        },
        {
            "loop_id": "TIC201",
            "unit": "U2",
            "area": "B",
            "health": None,
            "status": "offline",
            "previous_status": None,
            "last_data_at": None,
        },
    ]
    findings = overrides.pop("findings", {"FIC101": frozenset({"stiction", "oscillation"})})
    heartbeats = overrides.pop("heartbeats", {"kpi-worker": NOW.timestamp() - 30})
    return FleetState.from_rows(rows, findings, heartbeats)  # type: ignore[arg-type]


def rule(**values: object) -> AlertRule:
    base: dict[str, object] = {"rule_id": 1, "name": "r", "scope": "fleet"}
    base.update(values)
    return AlertRule(**base)  # type: ignore[arg-type]


def opened(
    loop_id: str, key: str, *, rule_id: int = 1, state: str = "open", **times: datetime | None
) -> OpenAlert:
    return OpenAlert(
        event_id=hash((rule_id, loop_id, key)) & 0xFFFF,
        rule_id=rule_id,
        loop_id=loop_id,
        key=key,
        state=state,  # type: ignore[arg-type]
        first_seen=times.get("first_seen") or NOW - timedelta(hours=1),
        last_notified_at=times.get("last_notified_at", NOW - timedelta(hours=1)),
    )


def test_health_below_opens_only_loops_under_the_level() -> None:
    result = evaluate([rule(condition="health_below", threshold=60)], fleet(), [], NOW)
    assert [(a.loop_id, a.key, a.state, a.notify) for a in result.new] == [
        ("FIC101", "health_below", "open", True)
    ]
    assert result.new[0].value == 40.0


def test_a_loop_without_health_is_not_below_any_level() -> None:
    result = evaluate([rule(condition="health_below", threshold=100)], fleet(), [], NOW)
    assert {a.loop_id for a in result.new} == {"FIC101", "FIC102"}


def test_health_below_for_a_period_is_pending_until_it_has_held_that_long() -> None:
    r = rule(condition="health_below", threshold=60, for_s=1800)
    first = evaluate([r], fleet(), [], NOW)
    assert [(a.state, a.notify) for a in first.new] == [("pending", False)]
    young = opened(
        "FIC101",
        "health_below",
        state="pending",
        first_seen=NOW - timedelta(minutes=15),
        last_notified_at=None,
    )
    still = evaluate([r], fleet(), [young], NOW)
    assert [(h.fire, h.notice) for h in still.held] == [(False, None)]
    old = opened(
        "FIC101",
        "health_below",
        state="pending",
        first_seen=NOW - timedelta(minutes=30),
        last_notified_at=None,
    )
    fired = evaluate([r], fleet(), [old], NOW)
    assert [(h.fire, h.notice) for h in fired.held] == [(True, "opened")]


def test_an_open_alert_is_not_opened_again() -> None:
    r = rule(condition="health_below", threshold=60)
    result = evaluate([r], fleet(), [opened("FIC101", "health_below")], NOW)
    assert result.new == []
    assert [(h.notice, h.fire) for h in result.held] == [(None, False)]
    assert result.notices == 0


def test_renotified_after_the_interval_and_not_before() -> None:
    r = rule(condition="health_below", threshold=60, renotify_s=3600)
    recent = opened("FIC101", "health_below", last_notified_at=NOW - timedelta(minutes=59))
    assert evaluate([r], fleet(), [recent], NOW).held[0].notice is None
    due = opened("FIC101", "health_below", last_notified_at=NOW - timedelta(minutes=60))
    assert evaluate([r], fleet(), [due], NOW).held[0].notice == "reminder"


def test_cleared_when_the_condition_ends_with_a_notice_only_if_notified() -> None:
    r = rule(condition="health_below", threshold=30)
    notified = opened("FIC101", "health_below")
    assert evaluate([r], fleet(), [notified], NOW).cleared == [(notified.event_id, True)]
    silent = opened("FIC101", "health_below", state="pending", last_notified_at=None)
    assert evaluate([r], fleet(), [silent], NOW).cleared == [(silent.event_id, False)]


def test_alerts_of_loops_not_evaluated_are_left_alone() -> None:
    r = rule(condition="health_below", threshold=30)
    elsewhere = opened("XIC999", "health_below")
    result = evaluate([r], fleet(), [elsewhere], NOW)
    assert result.cleared == []
    assert result.held == []


def test_alerts_of_a_disabled_or_deleted_rule_clear_silently() -> None:
    r = rule(condition="health_below", threshold=60, enabled=False)
    alert = opened("FIC101", "health_below")
    assert evaluate([r], fleet(), [alert], NOW).cleared == [(alert.event_id, False)]
    assert evaluate([], fleet(), [alert], NOW).cleared == [(alert.event_id, False)]


@pytest.mark.parametrize(
    ("scope", "value", "expected"),
    [
        ("loop", "FIC102", {"FIC102"}),
        ("unit", "U1", {"FIC101", "FIC102"}),
        ("area", "B", {"TIC201"}),
        ("fleet", None, {"FIC101", "FIC102", "TIC201"}),
    ],
)
def test_scopes_pick_their_loops(scope: str, value: str | None, expected: set[str]) -> None:
    r = rule(scope=scope, scope_value=value, condition="stale_data", threshold=1)
    assert {a.loop_id for a in evaluate([r], fleet(), [], NOW).new} == expected


def test_stale_data_after_the_limit_and_a_source_never_heard_of() -> None:
    r = rule(condition="stale_data", threshold=3600)
    new = {a.loop_id: a.value for a in evaluate([r], fleet(), [], NOW).new}
    assert new == {"FIC102": 7200.0, "TIC201": None}


def test_finding_of_a_category_one_alert_per_category() -> None:
    any_category = evaluate([rule(condition="finding")], fleet(), [], NOW)
    assert sorted((a.loop_id, a.key) for a in any_category.new) == [
        ("FIC101", "oscillation"),
        ("FIC101", "stiction"),
    ]
    only = evaluate([rule(condition="finding", categories=("stiction",))], fleet(), [], NOW)
    assert [(a.loop_id, a.key) for a in only.new] == [("FIC101", "stiction")]
    gone = fleet(findings={})
    alert = opened("FIC101", "stiction")
    assert evaluate([rule(condition="finding")], gone, [alert], NOW).cleared == [
        (alert.event_id, True)
    ]


def test_status_change_opens_on_the_change_and_holds_while_the_status_stays() -> None:
    r = rule(condition="status_change", statuses=("poor", "critical"))
    result = evaluate([r], fleet(), [], NOW)
    assert [(a.loop_id, a.key) for a in result.new] == [("FIC101", "poor")]
    # the next cycle: FIC101 still poor (no change any more): the alert holds
    steady = FleetState.from_rows(
        [{"loop_id": "FIC101", "status": "poor", "previous_status": "poor", "health": 40}]
    )
    alert = opened("FIC101", "poor")
    held = evaluate([r], steady, [alert], NOW)
    assert [h.event_id for h in held.held] == [alert.event_id]
    assert held.cleared == []
    back = FleetState.from_rows(
        [{"loop_id": "FIC101", "status": "fair", "previous_status": "poor", "health": 70}]
    )
    assert evaluate([r], back, [alert], NOW).cleared == [(alert.event_id, True)]


def test_no_status_change_no_alert() -> None:
    steady = FleetState.from_rows(
        [{"loop_id": "FIC101", "status": "poor", "previous_status": "poor", "health": 40}]
    )
    assert evaluate([rule(condition="status_change")], steady, [], NOW).new == []


def test_heartbeat_missing_per_service() -> None:
    r = rule(condition="heartbeat_missing", threshold=300, services=("kpi-worker", "aggregation"))
    result = evaluate([r], fleet(), [], NOW)
    assert [(a.loop_id, a.key, a.value) for a in result.new] == [(FLEET, "aggregation", None)]
    late = fleet(heartbeats={"kpi-worker": NOW.timestamp() - 301})
    r_any = rule(condition="heartbeat_missing", threshold=300)
    assert [a.key for a in evaluate([r_any], late, [], NOW).new] == ["kpi-worker"]


def test_quiet_hours_across_midnight_in_local_time() -> None:
    quiet = QuietHours(time(22, 0), time(6, 0), "Europe/Berlin")
    # 12:00 UTC in January is 13:00 in Berlin: not quiet; 22:30 UTC is 23:30: quiet
    assert not quiet.contains(NOW)
    assert quiet.contains(datetime(2026, 1, 15, 22, 30, tzinfo=UTC))
    assert quiet.contains(datetime(2026, 1, 16, 4, 59, tzinfo=UTC))
    assert not quiet.contains(datetime(2026, 1, 16, 5, 0, tzinfo=UTC))
    # summer time: 04:30 UTC is 06:30 in Berlin, no longer quiet
    assert not quiet.contains(datetime(2026, 7, 16, 4, 30, tzinfo=UTC))


def test_quiet_hours_delay_the_notice_until_they_end() -> None:
    quiet = QuietHours(time(11, 0), time(13, 0), "UTC")
    r = rule(condition="health_below", threshold=60, quiet_hours=quiet)
    during = evaluate([r], fleet(), [], NOW)
    assert [(a.state, a.notify) for a in during.new] == [("open", False)]
    waiting = opened("FIC101", "health_below", last_notified_at=None)
    after = evaluate([r], fleet(), [waiting], NOW + timedelta(hours=1))
    assert [h.notice for h in after.held] == ["opened"]


def test_validation_names_the_field() -> None:
    assert validate_rule("unit", "health_below", None, 50, ("inbox",), (), None, None) == [
        ("scope_value", "required for scope 'unit'")
    ]
    problems = validate_rule(
        "fleet", "health_below", None, 150, ("email", "webhook"), (), "ftp://x", "Mars/Base"
    )
    assert {name for name, _ in problems} == {
        "threshold",
        "emails",
        "webhook_url",
        "quiet_timezone",
    }
    assert validate_rule("fleet", "stale_data", None, 600, ("inbox",), (), None, "UTC") == []


# ------------------------------------------------------------------- acknowledgements


def test_an_acknowledged_loop_opens_its_alerts_acked_and_silent() -> None:
    rules = [
        rule(rule_id=1, condition="health_below", threshold=60),
        rule(rule_id=2, condition="finding"),
        rule(rule_id=3, condition="stale_data", threshold=600),
    ]
    result = evaluate(rules, fleet(), [], NOW, {"FIC101": frozenset({None})})
    states = {(a.rule_id, a.loop_id, a.key): (a.state, a.notify) for a in result.new}
    assert states[(1, "FIC101", "health_below")] == ("acked", False)
    assert states[(2, "FIC101", "stiction")] == ("acked", False)
    assert states[(2, "FIC101", "oscillation")] == ("acked", False)
    # stale data is not what was acknowledged: still told
    assert states[(3, "FIC102", "stale_data")] == ("open", True)
    assert result.notices == 2  # FIC102 and TIC201 stale


def test_an_acknowledged_finding_silences_only_its_category() -> None:
    result = evaluate(
        [rule(condition="finding"), rule(rule_id=2, condition="health_below", threshold=60)],
        fleet(),
        [],
        NOW,
        {"FIC101": frozenset({"stiction"})},
    )
    states = {(a.rule_id, a.key): a.state for a in result.new}
    assert states == {
        (1, "stiction"): "acked",
        (1, "oscillation"): "open",
        (2, "health_below"): "open",
    }


def test_an_open_alert_moves_to_acked_without_a_notice_then_stays_quiet() -> None:
    rules = [rule(condition="health_below", threshold=60, renotify_s=60)]
    alert = opened("FIC101", "health_below")
    result = evaluate(rules, fleet(), [alert], NOW, {"FIC101": frozenset({None})})
    [held] = result.held
    assert (held.state, held.notice, held.fire) == ("acked", None, False)
    acked = opened("FIC101", "health_below", state="acked")
    again = evaluate(rules, fleet(), [acked], NOW, {"FIC101": frozenset({None})})
    [held] = again.held
    assert (held.state, held.notice) == (None, None)
    assert again.notices == 0


def test_when_the_acknowledgement_ends_the_alert_is_told_as_newly_opened() -> None:
    rules = [rule(condition="health_below", threshold=60)]
    acked = opened("FIC101", "health_below", state="acked")
    [held] = evaluate(rules, fleet(), [acked], NOW).held
    assert (held.state, held.notice, held.reset_notified) == ("open", "opened", True)
    pending = [rule(condition="health_below", threshold=60, for_s=7200)]
    [held] = evaluate(pending, fleet(), [acked], NOW).held
    assert (held.state, held.notice) == ("pending", None)


def test_an_acked_alert_clears_without_a_notice() -> None:
    acked = opened("FIC102", "health_below", state="acked")
    result = evaluate([rule(condition="health_below", threshold=60)], fleet(), [acked], NOW)
    assert result.cleared == [(acked.event_id, False)]
