"""Evaluation of alert rules against the fleet's latest state: which alerts open, stay, clear
and which are notified now. Pure: no I/O, the clock is an argument.

An alert is identified by (rule, loop, key); the key names the condition's instance (the
finding category, the status changed to, the worker service, or the condition itself). At
most one alert per identity is open at a time (de-duplication); while its condition holds it
stays open and is notified again every ``renotify_s``; once the condition no longer holds it
is cleared (and a "cleared" notice follows when the alert had been notified).

Conditions with a duration (``health_below`` with ``for_s`` > 0) first open *pending*, as
Prometheus' alerting rules do ("pending" until the expression has held for ``for``), and
fire when they have held long enough. Quiet hours delay notifications, never the alert
itself: an alert that opened during quiet hours is notified when they end (if still open).

An acknowledged loop or finding (see :func:`clpm_shared.work_items.holding_acknowledgements`)
suppresses its alerts: they are kept in the state ``acked`` (opened in it, or moved to it
from pending / open) and nothing about them is notified, not even their clearing. A loop's
acknowledgement covers its ``health_below``, ``status_change`` and ``finding`` alerts; a
finding's covers the ``finding`` alerts of its category. Stale data and missing heartbeats
are never suppressed: they say the data stopped, which the acknowledged problem does not
explain. When the acknowledgement no longer holds (its date passed, or what was acknowledged
changed) and the condition still does, the alert becomes pending / open again and is
notified as newly ``opened``.

The fleet is held in columns (:class:`FleetState`, numpy arrays), so a rule's condition over
10,000 loops is a handful of vectorised comparisons; only the matching loops are visited in
Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from clpm_shared.alerts.rules import AlertRule

FLEET = ""
"""Loop id of alerts that belong to no loop (a worker heartbeat)."""

NoticeKind = Literal["opened", "reminder", "cleared"]
AlertState = Literal["pending", "open", "acked"]

_LOOP_ACKNOWLEDGED = ("health_below", "status_change", "finding")
"""Conditions a loop's acknowledgement suppresses."""


@dataclass(frozen=True)
class FleetState:
    """The latest state of the evaluated loops, one array element per loop.

    Parameters
    ----------
    loop_ids, units, areas
        Object arrays (``None`` where a loop has no unit / area).
    health
        Latest window's health score (``nan`` = none).
    status, previous_status
        Latest and previous window's status (object arrays, ``None`` = none).
    last_data_at
        POSIX seconds of the end of the last window that held data (``nan`` = none).
    findings
        Finding categories of the latest window per loop id (loops without findings absent).
    heartbeats
        Last heartbeat (POSIX seconds) per worker service (the newest of its instances).
    """

    loop_ids: npt.NDArray[np.object_]
    units: npt.NDArray[np.object_]
    areas: npt.NDArray[np.object_]
    health: npt.NDArray[np.float64]
    status: npt.NDArray[np.object_]
    previous_status: npt.NDArray[np.object_]
    last_data_at: npt.NDArray[np.float64]
    findings: Mapping[str, frozenset[str]] = field(default_factory=dict)
    heartbeats: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[Mapping[str, object]],
        findings: Mapping[str, frozenset[str]] | None = None,
        heartbeats: Mapping[str, float] | None = None,
    ) -> FleetState:
        """Build the columns from one mapping per loop (keys as the field names, singular:
        ``loop_id``, ``unit``, ``area``, ``health``, ``status``, ``previous_status``,
        ``last_data_at``)."""

        def objects(key: str) -> npt.NDArray[np.object_]:
            column = np.empty(len(rows), dtype=object)
            column[:] = [row.get(key) for row in rows]
            return column

        def floats(key: str) -> npt.NDArray[np.float64]:
            return np.array(
                [np.nan if (v := row.get(key)) is None else float(v) for row in rows],  # type: ignore[arg-type]
                dtype=np.float64,
            )

        return cls(
            loop_ids=objects("loop_id"),
            units=objects("unit"),
            areas=objects("area"),
            health=floats("health"),
            status=objects("status"),
            previous_status=objects("previous_status"),
            last_data_at=floats("last_data_at"),
            findings=dict(findings or {}),
            heartbeats=dict(heartbeats or {}),
        )

    def __len__(self) -> int:
        return len(self.loop_ids)


@dataclass(frozen=True)
class OpenAlert:
    """An alert that is pending, open or acknowledged (``acked``) in the store."""

    event_id: int
    rule_id: int
    loop_id: str
    key: str
    state: AlertState
    first_seen: datetime
    last_notified_at: datetime | None


@dataclass(frozen=True)
class NewAlert:
    """An alert to create: ``state`` open (notified now unless ``notify`` is False), pending,
    or acked (its loop or finding is acknowledged; never notified)."""

    rule_id: int
    loop_id: str
    key: str
    state: AlertState
    value: float | None
    message: str
    notify: bool


@dataclass(frozen=True)
class Held:
    """An existing alert whose condition still holds."""

    event_id: int
    value: float | None
    message: str
    fire: bool
    """pending -> open now."""
    notice: NoticeKind | None
    """``opened`` / ``reminder`` to send now, or None."""
    state: AlertState | None = None
    """The state it moves to other than by ``fire``: ``acked`` (acknowledged now), or
    pending / open (its acknowledgement ended), else None."""
    reset_notified: bool = False
    """Forget the notices sent before the acknowledgement: the alert is told as newly opened."""


@dataclass
class Evaluation:
    """What to write after one evaluation."""

    new: list[NewAlert] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    cleared: list[tuple[int, bool]] = field(default_factory=list)
    """(event id, send a "cleared" notice)."""

    @property
    def notices(self) -> int:
        """Number of notifications this evaluation sends (per rule, before channels)."""
        return (
            sum(1 for a in self.new if a.notify)
            + sum(1 for h in self.held if h.notice is not None)
            + sum(1 for _, notify in self.cleared if notify)
        )


@dataclass(frozen=True)
class _Match:
    loop_id: str
    key: str
    value: float | None
    message: str
    opens: bool = True
    """False: the match may keep an open alert open but not open a new one."""


def evaluate(
    rules: Sequence[AlertRule],
    fleet: FleetState,
    open_alerts: Sequence[OpenAlert],
    now: datetime,
    acknowledged: Mapping[str, frozenset[str | None]] | None = None,
) -> Evaluation:
    """Evaluate every rule against ``fleet`` at ``now``.

    ``acknowledged`` maps a loop id to what of it is acknowledged now (``None``: the loop,
    else finding categories); its alerts are suppressed as the module docstring says.
    Only alerts of loops in ``fleet`` (and fleet-wide ones) are opened, kept or cleared:
    replicas that evaluate disjoint shares of the loops leave each other's alerts alone.
    Alerts of a disabled rule, or of a rule not in ``rules``, are cleared without a notice.
    """
    result = Evaluation()
    evaluated = set(fleet.loop_ids.tolist())
    evaluated.add(FLEET)
    by_rule: dict[int, dict[tuple[str, str], OpenAlert]] = {}
    for stored in open_alerts:
        if stored.loop_id in evaluated:
            by_rule.setdefault(stored.rule_id, {})[(stored.loop_id, stored.key)] = stored
    known = {rule.rule_id for rule in rules if rule.enabled}
    for rule_id, alerts in by_rule.items():
        if rule_id not in known:
            result.cleared.extend((a.event_id, False) for a in alerts.values())
    stamp = now.timestamp()
    acks = acknowledged or {}
    for rule in rules:
        if not rule.enabled:
            continue
        existing = by_rule.get(rule.rule_id, {})
        quiet = rule.quiet_hours is not None and rule.quiet_hours.contains(now)
        matched: set[tuple[str, str]] = set()
        for match in _matches(rule, fleet, existing, stamp):
            identity = (match.loop_id, match.key)
            alert = existing.get(identity)
            suppressed = bool(acks) and _suppressed(rule, match, acks)
            if alert is None:
                if not match.opens:
                    continue
                matched.add(identity)
                state: AlertState = (
                    "acked" if suppressed else "pending" if rule.for_s > 0 else "open"
                )
                result.new.append(
                    NewAlert(
                        rule.rule_id,
                        match.loop_id,
                        match.key,
                        state,
                        match.value,
                        match.message,
                        notify=state == "open" and not quiet,
                    )
                )
                continue
            matched.add(identity)
            if suppressed:
                moved: AlertState | None = None if alert.state == "acked" else "acked"
                result.held.append(
                    Held(alert.event_id, match.value, match.message, False, None, moved)
                )
                continue
            due = stamp - alert.first_seen.timestamp() >= rule.for_s
            if alert.state == "acked":
                # the acknowledgement ended while the condition holds: alert again, as new
                result.held.append(
                    Held(
                        alert.event_id,
                        match.value,
                        match.message,
                        False,
                        "opened" if due and not quiet else None,
                        "open" if due else "pending",
                        reset_notified=True,
                    )
                )
                continue
            fire = alert.state == "pending" and due
            firing = fire or alert.state == "open"
            notice: NoticeKind | None = None
            if firing and not quiet:
                if alert.last_notified_at is None:
                    notice = "opened"
                elif (
                    rule.renotify_s > 0
                    and stamp - alert.last_notified_at.timestamp() >= rule.renotify_s
                ):
                    notice = "reminder"
            result.held.append(Held(alert.event_id, match.value, match.message, fire, notice))
        for identity, ended in existing.items():
            if identity not in matched:
                notify = ended.last_notified_at is not None and not quiet and ended.state != "acked"
                result.cleared.append((ended.event_id, notify))
    return result


def _suppressed(
    rule: AlertRule, match: _Match, acknowledged: Mapping[str, frozenset[str | None]]
) -> bool:
    """Whether an acknowledgement of the match's loop or finding covers it."""
    what = acknowledged.get(match.loop_id)
    if not what:
        return False
    if None in what and rule.condition in _LOOP_ACKNOWLEDGED:
        return True
    return rule.condition == "finding" and match.key in what


def _present(column: npt.NDArray[np.object_]) -> npt.NDArray[np.bool_]:
    return np.fromiter((value is not None for value in column), dtype=bool, count=len(column))


def _scope_mask(rule: AlertRule, fleet: FleetState) -> npt.NDArray[np.bool_]:
    if rule.scope == "fleet":
        return np.ones(len(fleet), dtype=bool)
    column = {"loop": fleet.loop_ids, "unit": fleet.units, "area": fleet.areas}[rule.scope]
    return np.asarray(column == rule.scope_value, dtype=bool)


def _matches(
    rule: AlertRule,
    fleet: FleetState,
    existing: Mapping[tuple[str, str], OpenAlert],
    stamp: float,
) -> list[_Match]:
    """The (loop, key) instances for which the rule's condition holds now."""
    if rule.condition == "heartbeat_missing":
        limit = float(rule.threshold or 0.0)
        services = rule.services or tuple(sorted(fleet.heartbeats))
        matches = []
        for service in services:
            seen = fleet.heartbeats.get(service)
            if seen is None or stamp - seen > limit:
                silent = "never seen" if seen is None else f"silent for {stamp - seen:.0f} s"
                matches.append(
                    _Match(
                        FLEET,
                        service,
                        None if seen is None else stamp - seen,
                        f"worker {service}: no heartbeat ({silent}, limit {limit:.0f} s)",
                    )
                )
        return matches
    if len(fleet) == 0:
        return []
    scope = _scope_mask(rule, fleet)
    ids = fleet.loop_ids
    if rule.condition == "health_below":
        threshold = float(rule.threshold or 0.0)
        with np.errstate(invalid="ignore"):
            hit = scope & (fleet.health < threshold)
        return [
            _Match(
                str(ids[i]),
                "health_below",
                float(fleet.health[i]),
                f"{ids[i]}: health {fleet.health[i]:.1f} below {threshold:g}",
            )
            for i in np.flatnonzero(hit)
        ]
    if rule.condition == "stale_data":
        limit = float(rule.threshold or 0.0)
        age = stamp - fleet.last_data_at
        with np.errstate(invalid="ignore"):
            hit = scope & (np.isnan(age) | (age > limit))
        return [
            _Match(
                str(ids[i]),
                "stale_data",
                None if np.isnan(age[i]) else float(age[i]),
                f"{ids[i]}: no data "
                + ("in the recent past" if np.isnan(age[i]) else f"for {age[i]:.0f} s")
                + f" (limit {limit:.0f} s)",
            )
            for i in np.flatnonzero(hit)
        ]
    if rule.condition == "status_change":
        wanted = set(rule.statuses)
        has_status = _present(fleet.status)
        in_wanted = np.isin(fleet.status, list(wanted)) if wanted else has_status
        changed = (
            np.not_equal(fleet.status, fleet.previous_status)
            & has_status
            & _present(fleet.previous_status)
        )
        opening = scope & in_wanted & changed
        matches = [
            _Match(
                str(ids[i]),
                str(fleet.status[i]),
                None,
                f"{ids[i]}: status {fleet.previous_status[i]} -> {fleet.status[i]}",
            )
            for i in np.flatnonzero(opening)
        ]
        # an open alert holds while the loop keeps the status it changed to
        position = {loop_id: i for i, loop_id in enumerate(ids.tolist())}
        for loop_id, key in existing:
            i = position.get(loop_id)
            if i is not None and scope[i] and not opening[i] and fleet.status[i] == key:
                matches.append(_Match(loop_id, key, None, f"{loop_id}: status {key}", False))
        return matches
    # finding: one alert per category present in the latest window
    wanted = set(rule.categories)
    scoped = set(ids[scope].tolist()) if rule.scope != "fleet" else None
    matches = []
    for loop_id, categories in fleet.findings.items():
        if scoped is not None and loop_id not in scoped:
            continue
        for category in sorted(categories):
            if not wanted or category in wanted:
                matches.append(_Match(loop_id, category, None, f"{loop_id}: finding {category}"))
    return matches
