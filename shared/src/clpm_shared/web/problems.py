"""RFC 9457 problem details: the one error format of the HTTP services, and its handlers.

Every error the api-gateway and the diagnostics service answer is ``application/problem+json``::

    {"type": "urn:clpm:problem:invalid-parameter", "title": "Invalid parameter", "status": 422,
     "detail": "loopId: must be 1-128 characters ...", "instance": "/api/v1/data/raw",
     "errors": [{"parameter": "loopId", "location": "query", "message": "..."}]}

Validation problems name the offending parameter (``errors[].parameter``, and first in
``detail``); unavailable backends answer 503 with ``Retry-After``; unexpected errors answer a
500 problem without internals (the stack trace goes to the log only); any other failure of the
time-series store a 502. ``backend`` names what is down: ``timeseries``, ``database``, ...
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

from clpm_shared.db.errors import DatabaseFailure, classify, sqlstate_of
from clpm_shared.timeseries import InvalidQueryError, StoreUnavailableError, TimeSeriesError

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
DEFAULT_RETRY_AFTER_S = 5

TYPE_INVALID_PARAMETER = "urn:clpm:problem:invalid-parameter"
TYPE_NOT_FOUND = "urn:clpm:problem:not-found"
TYPE_CONFLICT = "urn:clpm:problem:conflict"
TYPE_UNAVAILABLE = "urn:clpm:problem:backend-unavailable"
TYPE_UPSTREAM = "urn:clpm:problem:upstream-error"
TYPE_INTERNAL = "urn:clpm:problem:internal-error"


class ParameterError(BaseModel):
    """One invalid input: which parameter, where it was, what is wrong."""

    parameter: str = Field(examples=["loopId"])
    location: str = Field(examples=["query"], description="query, path, body or header")
    message: str = Field(examples=["must include a timezone (e.g. 2025-01-10T10:00:00Z)"])


class Problem(BaseModel):
    """RFC 9457 problem details object."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", examples=[TYPE_INVALID_PARAMETER])
    title: str = Field(examples=["Invalid parameter"])
    status: int = Field(examples=[422])
    detail: str | None = Field(default=None, examples=["start: must include a timezone"])
    instance: str | None = Field(default=None, examples=["/api/v1/data/raw"])
    errors: list[ParameterError] | None = Field(
        default=None, description="Present on validation problems: every invalid parameter."
    )


class ProblemError(Exception):
    """Raise anywhere in a request to answer with a problem details response."""

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


def invalid_parameter(parameter: str, message: str, location: str = "query") -> ProblemError:
    """422 naming ``parameter`` (``location``: query, path, body or header)."""
    return ProblemError(
        422,
        f"{parameter}: {message}",
        type_=TYPE_INVALID_PARAMETER,
        title="Invalid parameter",
        errors=[ParameterError(parameter=parameter, location=location, message=message)],
    )


def backend_unavailable(backend: str, retry_after_s: float = DEFAULT_RETRY_AFTER_S) -> ProblemError:
    return ProblemError(
        503,
        f"{backend} is not reachable; try again later",
        type_=TYPE_UNAVAILABLE,
        title="Backend unavailable",
        retry_after_s=retry_after_s,
        extensions={"backend": backend},
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
    headers: Mapping[str, str] | None = None,
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
    all_headers = dict(headers or {})
    if retry_after_s is not None:
        all_headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return JSONResponse(
        body, status_code=status, headers=all_headers, media_type=PROBLEM_MEDIA_TYPE
    )


def _parameter_name(location: Sequence[int | str]) -> tuple[str, str]:
    """('query', 'loopId') from a pydantic error location such as ('query', 'loopId')."""
    if not location:
        return "request", "body"
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
    errors: list[ParameterError] = []
    for error in exc.errors():
        parameter, location = _parameter_name(error.get("loc", ()))
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        errors.append(ParameterError(parameter=parameter, location=location, message=message))
    detail = "; ".join(f"{error.parameter}: {error.message}" for error in errors)
    return problem_response(
        request, 422, detail, type_=TYPE_INVALID_PARAMETER, title="Invalid parameter", errors=errors
    )


async def _on_invalid_query(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidQueryError)
    message = str(exc).removeprefix(f"{exc.parameter}: ")
    error = ParameterError(parameter=exc.parameter, location="query", message=message)
    return problem_response(
        request,
        422,
        f"{exc.parameter}: {message}",
        type_=TYPE_INVALID_PARAMETER,
        title="Invalid parameter",
        errors=[error],
    )


async def _on_store_error(request: Request, exc: Exception) -> JSONResponse:
    """Any other failure of the time-series store: logged, answered as 502 (no internals)."""
    logger.error("time-series store failed on %s: %s", request.url.path, exc)
    return problem_response(
        request,
        502,
        "the time-series store could not answer this query",
        type_=TYPE_UPSTREAM,
        title="Upstream error",
        extensions={"backend": "timeseries"},
    )


async def _on_store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreUnavailableError)
    logger.warning("time-series store unavailable: %s", exc)
    return problem_response(
        request,
        503,
        "the time-series store is not reachable; try again later",
        type_=TYPE_UNAVAILABLE,
        title="Backend unavailable",
        retry_after_s=exc.retry_after_s,
        extensions={"backend": "timeseries"},
    )


def is_connection_error(exc: BaseException) -> bool:
    """True for errors that mean "the database cannot be reached", not a bad statement."""
    return classify(exc) is DatabaseFailure.UNREACHABLE


_DATABASE_PROBLEMS = {
    DatabaseFailure.UNREACHABLE: ("the database is not reachable; try again later", 5),
    DatabaseFailure.NO_SPACE: (
        "the database cannot store data now (out of disk space or memory); try again later",
        60,
    ),
    DatabaseFailure.BUSY: (
        "the database is busy (a statement or a lock wait took too long); try again later",
        5,
    ),
}


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    failure = classify(exc)
    if failure is DatabaseFailure.OTHER:
        return await _on_unexpected(request, exc)
    detail, retry_after_s = _DATABASE_PROBLEMS[failure]
    logger.warning(
        "relational database %s: %s (SQLSTATE %s)",
        failure.value,
        type(exc).__name__,
        sqlstate_of(exc),
    )
    return problem_response(
        request,
        503,
        detail,
        type_=TYPE_UNAVAILABLE,
        title="Backend unavailable",
        retry_after_s=retry_after_s,
        extensions={"backend": "database", "reason": failure.value},
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem_response(
        request,
        exc.status_code,
        detail,
        type_=TYPE_NOT_FOUND if exc.status_code == 404 else "about:blank",
        headers=exc.headers,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        request,
        500,
        "an unexpected error occurred; it has been logged",
        type_=TYPE_INTERNAL,
        title="Internal server error",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem details (never a stack trace)."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(InvalidQueryError, _on_invalid_query)
    app.add_exception_handler(StoreUnavailableError, _on_store_unavailable)
    app.add_exception_handler(TimeSeriesError, _on_store_error)
    app.add_exception_handler(sa_exc.SQLAlchemyError, _on_database_error)
    app.add_exception_handler(OSError, _on_database_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
