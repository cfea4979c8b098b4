"""Control-loop performance analytics: pure functions on numpy arrays (no I/O, no clock).

Definitions, formulas and references are in the docstrings of each module; the names exported
here are the stable public API used by the workers, the diagnostics service and outside checks.
"""

from clpm_shared.analytics.oscillation import OscillationResult, detect_oscillation

__all__ = [
    "OscillationResult",
    "detect_oscillation",
]
