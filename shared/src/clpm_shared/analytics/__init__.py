"""Control-loop performance analytics: pure functions on numpy arrays (no I/O, no clock).

Definitions, formulas and references are in the docstrings of each module; the names exported
here are the stable public API used by the workers, the diagnostics service and outside checks.
"""

from clpm_shared.analytics.apc_attainment import ApcAttainmentResult, apc_attainment
from clpm_shared.analytics.assessment import PeriodAssessment, WindowRating, assess_period
from clpm_shared.analytics.harris import harris_delay, harris_index
from clpm_shared.analytics.health import HealthResult, health_score
from clpm_shared.analytics.kpis import KpiResult, compute_kpis
from clpm_shared.analytics.loop_config import LoopConfig
from clpm_shared.analytics.loop_window import LoopWindow
from clpm_shared.analytics.multiple_oscillations import OscillationComponent
from clpm_shared.analytics.oscillation import (
    OscillationResult,
    detect_oscillation,
    detect_oscillations,
)
from clpm_shared.analytics.ranking import (
    BadActor,
    LoopHealth,
    RollUp,
    bad_actor_value,
    rank_bad_actors,
    roll_up,
    roll_up_by,
)
from clpm_shared.analytics.step_response import StepResponse, find_sp_steps
from clpm_shared.analytics.stiction import StictionResult, stiction_index
from clpm_shared.analytics.verdict import WindowVerdict, window_verdict

__all__ = [
    "ApcAttainmentResult",
    "BadActor",
    "HealthResult",
    "KpiResult",
    "LoopConfig",
    "LoopHealth",
    "LoopWindow",
    "OscillationComponent",
    "OscillationResult",
    "PeriodAssessment",
    "RollUp",
    "StepResponse",
    "StictionResult",
    "WindowRating",
    "WindowVerdict",
    "apc_attainment",
    "assess_period",
    "bad_actor_value",
    "compute_kpis",
    "detect_oscillation",
    "detect_oscillations",
    "find_sp_steps",
    "harris_delay",
    "harris_index",
    "health_score",
    "rank_bad_actors",
    "roll_up",
    "roll_up_by",
    "stiction_index",
    "window_verdict",
]
