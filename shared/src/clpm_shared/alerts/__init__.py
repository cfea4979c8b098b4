"""Alert rules and their evaluation against the fleet's latest state (pure; no I/O, no clock).

The KPI worker evaluates the rules after each cycle
(:mod:`clpm_shared.alerts.evaluation`); the store and the notifier live elsewhere
(``clpm_shared.db.repositories.alerts``, ``clpm_shared.notify``).
"""

from clpm_shared.alerts.evaluation import (
    FLEET,
    Evaluation,
    FleetState,
    Held,
    NewAlert,
    NoticeKind,
    OpenAlert,
    evaluate,
)
from clpm_shared.alerts.rules import (
    CHANNELS,
    CONDITIONS,
    SCOPES,
    AlertRule,
    QuietHours,
    validate_rule,
)

__all__ = [
    "CHANNELS",
    "CONDITIONS",
    "FLEET",
    "SCOPES",
    "AlertRule",
    "Evaluation",
    "FleetState",
    "Held",
    "NewAlert",
    "NoticeKind",
    "OpenAlert",
    "QuietHours",
    "evaluate",
    "validate_rule",
]
