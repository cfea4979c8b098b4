"""Alert rules: what to watch (scope, condition), how often to remind and when to keep quiet.

A rule is plain data, checked once when it is saved (:func:`validate_rule`); the evaluation
(:mod:`clpm_shared.alerts.evaluation`) trusts it afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Scope = Literal["loop", "unit", "area", "fleet"]
Condition = Literal["health_below", "finding", "status_change", "stale_data", "heartbeat_missing"]
Channel = Literal["inbox", "email", "webhook"]

SCOPES: tuple[str, ...] = ("loop", "unit", "area", "fleet")
CONDITIONS: tuple[str, ...] = (
    "health_below",
    "finding",
    "status_change",
    "stale_data",
    "heartbeat_missing",
)
CHANNELS: tuple[str, ...] = ("inbox", "email", "webhook")
STATUSES: tuple[str, ...] = ("good", "fair", "poor", "critical", "offline", "not_assessed")


@dataclass(frozen=True)
class QuietHours:
    """A daily span of local time in which no notification goes out (events still open).

    ``start`` > ``end`` spans midnight (22:00-06:00). The time zone is an IANA name, so the
    span follows daylight-saving changes.
    """

    start: time
    end: time
    timezone: str = "UTC"

    def contains(self, moment: datetime) -> bool:
        """Whether the aware ``moment`` falls in the span (start inclusive, end exclusive)."""
        local = moment.astimezone(ZoneInfo(self.timezone)).time().replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class AlertRule:
    """One alert rule.

    Parameters
    ----------
    rule_id
        Database id.
    scope, scope_value
        Which loops: one loop (``scope_value`` = loop id), a unit or an area (its name), or the
        whole fleet (``scope_value`` ignored). ``heartbeat_missing`` is always fleet-wide.
    condition
        ``health_below``: the latest window's health score below ``threshold`` for at least
        ``for_s`` seconds; ``finding``: a finding of one of ``categories`` (any when empty) in
        the latest window; ``status_change``: the latest status differs from the previous
        window's and is one of ``statuses`` (any when empty); ``stale_data``: no data for
        more than ``threshold`` seconds; ``heartbeat_missing``: a worker service (one of
        ``services``, any seen when empty) has not beaten for more than ``threshold`` s.
    renotify_s
        A still-open alert is notified again after this many seconds; 0 = never again.
    channels
        Where notifications go: the recipients' inbox, e-mail to ``emails``, a webhook POST
        to ``webhook_url``.
    """

    rule_id: int
    name: str
    scope: Scope
    condition: Condition
    scope_value: str | None = None
    threshold: float | None = None
    for_s: float = 0.0
    categories: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    renotify_s: float = 0.0
    channels: tuple[str, ...] = ("inbox",)
    recipients: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    webhook_url: str | None = None
    quiet_hours: QuietHours | None = None
    enabled: bool = True


def validate_rule(
    scope: str,
    condition: str,
    scope_value: str | None,
    threshold: float | None,
    channels: tuple[str, ...],
    emails: tuple[str, ...],
    webhook_url: str | None,
    quiet_timezone: str | None,
) -> list[tuple[str, str]]:
    """Problems of a rule as (field, reason) pairs; empty when the rule is usable."""
    problems: list[tuple[str, str]] = []
    if scope not in SCOPES:
        problems.append(("scope", f"must be one of {list(SCOPES)}"))
    elif scope != "fleet" and not scope_value:
        problems.append(("scope_value", f"required for scope {scope!r}"))
    if condition not in CONDITIONS:
        problems.append(("condition", f"must be one of {list(CONDITIONS)}"))
    elif condition == "heartbeat_missing" and scope != "fleet":
        problems.append(("scope", "heartbeat_missing rules are fleet-wide"))
    elif condition == "health_below" and (threshold is None or not 0 <= threshold <= 100):
        problems.append(("threshold", "a health score between 0 and 100 is required"))
    elif condition in ("stale_data", "heartbeat_missing") and (threshold is None or threshold <= 0):
        problems.append(("threshold", "a positive number of seconds is required"))
    for channel in channels:
        if channel not in CHANNELS:
            problems.append(("channels", f"must be among {list(CHANNELS)}, got {channel!r}"))
    if "email" in channels and not emails:
        problems.append(("emails", "at least one address is required for the email channel"))
    if "webhook" in channels and not webhook_url:
        problems.append(("webhook_url", "required for the webhook channel"))
    if webhook_url is not None and not webhook_url.startswith(("http://", "https://")):
        problems.append(("webhook_url", "must be an http(s) URL"))
    if quiet_timezone is not None:
        try:
            ZoneInfo(quiet_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(("quiet_timezone", f"unknown time zone {quiet_timezone!r}"))
    return problems
