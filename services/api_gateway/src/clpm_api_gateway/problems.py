"""Problem details of the gateway: its own problems and their OpenAPI documentation.

The format and the handlers are :mod:`clpm_shared.web.problems` (shared with the diagnostics
service).
"""

from __future__ import annotations

from typing import Any

from clpm_shared.web.problems import (
    PROBLEM_MEDIA_TYPE,
    TYPE_INVALID_PARAMETER,
    TYPE_NOT_FOUND,
    TYPE_UNAVAILABLE,
    ProblemError,
)


def loop_not_found(loop_id: str) -> ProblemError:
    return ProblemError(
        404,
        f"loop {loop_id!r} does not exist",
        type_=TYPE_NOT_FOUND,
        title="Loop not found",
        extensions={"loop_id": loop_id},
    )


def _problem_example(status: int, type_: str, title: str, detail: str, **extra: Any) -> Any:
    return {
        "content": {
            PROBLEM_MEDIA_TYPE: {
                "schema": {"$ref": "#/components/schemas/Problem"},
                "example": {
                    "type": type_,
                    "title": title,
                    "status": status,
                    "detail": detail,
                    "instance": "/api/v1/data/raw",
                    **extra,
                },
            }
        }
    }


PROBLEM_401: dict[int | str, dict[str, Any]] = {
    401: {
        "description": "Missing or invalid bearer token",
        **_problem_example(401, "about:blank", "Unauthorized", "a bearer token is required"),
    },
    403: {
        "description": "The token lacks the required role",
        **_problem_example(403, "about:blank", "Forbidden", "requires role 'viewer'"),
    },
}
PROBLEM_404: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "Unknown loop",
        **_problem_example(404, TYPE_NOT_FOUND, "Loop not found", "loop 'XX-999' does not exist"),
    }
}
PROBLEM_422: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "Invalid parameter (named in `errors[].parameter`)",
        **_problem_example(
            422,
            TYPE_INVALID_PARAMETER,
            "Invalid parameter",
            "start: must include a timezone (e.g. 2025-01-10T10:00:00Z)",
            errors=[
                {
                    "parameter": "start",
                    "location": "query",
                    "message": "must include a timezone (e.g. 2025-01-10T10:00:00Z)",
                }
            ],
        ),
    }
}
PROBLEM_503: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "A backend (time-series store, database, service) is down; see Retry-After",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
        **_problem_example(
            503,
            TYPE_UNAVAILABLE,
            "Backend unavailable",
            "the time-series store is not reachable; try again later",
            backend="timeseries",
        ),
    }
}
