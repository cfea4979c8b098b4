"""Problem details of the diagnostics service: its own problems and their OpenAPI entries.

The format and the handlers are :mod:`clpm_shared.web.problems` (shared with the api-gateway):
validation problems (422) name each bad input under ``errors``; an unreachable database or
time-series store answers 503 with ``Retry-After``; anything unexpected a 500 without internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clpm_shared.web.problems import TYPE_NOT_FOUND, Problem, ProblemError

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "Invalid parameter (named in `errors`)"},
    503: {"model": Problem, "description": "Database or time-series store unreachable"},
}


def loops_not_found(loop_ids: Sequence[str]) -> ProblemError:
    """404 for loops that are not registered."""
    names = ", ".join(repr(loop_id) for loop_id in loop_ids)
    return ProblemError(
        404,
        f"loop {names} does not exist",
        type_=TYPE_NOT_FOUND,
        title="Loop not found",
        extensions={"loop_ids": list(loop_ids)},
    )
