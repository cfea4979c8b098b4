"""RFC 9457 problem details: the error format of the diagnostics service and its handlers.

Every error is ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail``
and ``instance``; validation problems (422) list each bad input under ``errors`` with the
parameter's name first in ``detail``; an unreachable database or time-series store answers
503 with ``Retry-After``; anything unexpected a 500 without internals (logged in full).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from clpm_shared.timeseries import InvalidQueryError, StoreUnavailableError

log = logging.getLogger("clpm_diagnostics.problems")

MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_S = 5

TYPE_INVALID_PARAMETER = "urn:clpm:problem:invalid-parameter"
TYPE_NOT_FOUND = "urn:clpm:problem:not-found"
TYPE_UNAVAILABLE = "urn:clpm:problem:backend-unavailable"
TYPE_INTERNAL = "urn:clpm:problem:internal-error"


class ParameterError(BaseModel):
    """One invalid input: which parameter, where, what is wrong."""

    parameter: str = Field(examples=["start"])
    location: str = Field(examples=["body"], description="query, path or body")
    message: str = Field(examples=["Input should have timezone info"])


class Problem(BaseModel):
    """RFC 9457 problem details object."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", examples=[TYPE_INVALID_PARAMETER])
    title: str = Field(examples=["Invalid parameter"])
    status: int = Field(examples=[422])
    detail: str | None = Field(default=None, examples=["end: must be after start"])
    instance: str | None = Field(default=None, examples=["/diagnose"])
    errors: list[ParameterError] | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "Invalid parameter (named in `errors`)"},
    503: {"model": Problem, "description": "Database or time-series store unreachable"},
}


class ProblemError(Exception):
    """Raise in a route to answer with a problem details response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_: str = "about:blank",
        title: str | None = None,
        errors: Sequence[ParameterError] = (),
        retry_after_s: float | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type_
        self.title = title or HTTPStatus(status).phrase
        self.errors = list(errors)
        self.retry_after_s = retry_after_s
        self.extensions = dict(extensions or {})


def invalid_parameter(parameter: str, message: str, location: str = "body") -> ProblemError:
    """422 naming ``parameter``."""
    return ProblemError(
        422,
        f"{parameter}: {message}",
        type_=TYPE_INVALID_PARAMETER,
        title="Invalid parameter",
        errors=[ParameterError(parameter=parameter, location=location, message=message)],
    )


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


def problem_response(
    request: Request,
    status: int,
    detail: str | None,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    errors: Sequence[ParameterError] = (),
    retry_after_s: float | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = [error.model_dump() for error in errors]
    body.update(extensions or {})
    headers = {}
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def unavailable(request: Request, backend: str, retry_after_s: float) -> JSONResponse:
    return problem_response(
        request,
        503,
        f"the {backend} is not reachable; try again later",
        type_=TYPE_UNAVAILABLE,
        title="Backend unavailable",
        retry_after_s=retry_after_s,
        extensions={"backend": backend},
    )


def _parameter(location: Sequence[int | str]) -> tuple[str, str]:
    """('start', 'body') from a pydantic location such as ('body', 'start')."""
    if not location:
        return "body", "body"
    where = str(location[0])
    rest = [str(part) for part in location[1:]]
    if where == "body":
        return (".".join(rest) or "body"), "body"
    return (rest[0] if rest else where), where


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request,
        exc.status,
        exc.detail,
        type_=exc.type,
        title=exc.title,
        errors=exc.errors,
        retry_after_s=exc.retry_after_s,
        extensions=exc.extensions,
    )


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        parameter, location = _parameter(error.get("loc", ()))
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        errors.append(ParameterError(parameter=parameter, location=location, message=message))
    detail = "; ".join(f"{error.parameter}: {error.message}" for error in errors)
    return problem_response(
        request, 422, detail, type_=TYPE_INVALID_PARAMETER, title="Invalid parameter", errors=errors
    )


async def _on_invalid_query(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidQueryError)
    message = str(exc).removeprefix(f"{exc.parameter}: ")
    return await _on_problem(request, invalid_parameter(exc.parameter, message))


async def _on_store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreUnavailableError)
    log.warning("time-series store unavailable: %s", exc)
    return unavailable(request, "time-series store", exc.retry_after_s)


def is_connection_error(exc: BaseException) -> bool:
    """True for errors that mean "the database cannot be reached", not a bad statement."""
    if isinstance(exc, sa_exc.DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return isinstance(exc, OSError | TimeoutError | sa_exc.TimeoutError)


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    if not is_connection_error(exc):
        return await _on_unexpected(request, exc)
    log.warning("database unavailable: %s", type(exc).__name__)
    return unavailable(request, "database", RETRY_AFTER_S)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem_response(
        request,
        exc.status_code,
        detail,
        type_=TYPE_NOT_FOUND if exc.status_code == 404 else "about:blank",
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        request,
        500,
        "an unexpected error occurred; it has been logged",
        type_=TYPE_INTERNAL,
        title="Internal server error",
    )


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem details response."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(InvalidQueryError, _on_invalid_query)
    app.add_exception_handler(StoreUnavailableError, _on_store_unavailable)
    app.add_exception_handler(sa_exc.SQLAlchemyError, _on_database_error)
    app.add_exception_handler(OSError, _on_database_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
