"""ASGI layer answering fresh in-process cache hits of ``/data/realtime`` and ``/data/aggregated``.

Most requests for these two endpoints are cache hits, and for a hit FastAPI's routing,
dependency resolution and parameter conversion cost more than the answer. This layer (outside
FastAPI's own middleware stack, see :class:`clpm_shared.web.layered_app.LayeredFastAPI`: error
pages and CORS are not needed for the answers it gives) answers a request itself only when every
check the routed endpoint would make is already known to pass; everything else goes
to FastAPI unchanged, which then answers exactly as before (401/403/422/404/503, misses, stale
entries and their refresh, ``Cache-Control: no-cache``, CSV, cross-origin requests):

* ``GET`` on the exact path (``API_PREFIX`` or not), no ``root_path``;
* the bearer token is one the token validator has already accepted and still remembers
  (never past its ``exp``): signature, issuer, audience and expiry were checked by the full
  validation, on the routed path, when it was first seen; the caller holds ``viewer``;
* the query holds only the endpoint's parameters, each once (``fields`` may repeat), in a valid
  form: the same parsers as the endpoint, any problem falls through so the endpoint names the
  parameter; ``/data/aggregated`` needs an explicit ``end`` (without it the answer depends on
  the time of the request) and no ``format``;
* no ``Cache-Control`` header (the endpoint handles ``no-cache``), no ``Accept`` asking for CSV,
  no ``Origin`` (a cross-origin request gets its CORS headers from FastAPI's stack);
* the answer is fresh in this process's memory (:meth:`ResponseCache.fresh_hit`).

The answer is the routed endpoint's: the same body (realtime ``age_s`` at answer time through
:func:`~clpm_api_gateway.realtime_age.with_current_age`), status 200 and the same headers
(``content-length``, ``content-type: application/json``, ``vary: Origin``). The principal is
put on the request state as the bearer dependency does. ``API_FAST_CACHED_HITS=false`` routes
every request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from clpm_api_gateway.data_queries import check_bucket_count
from clpm_api_gateway.dependencies import GatewayResources
from clpm_api_gateway.query_parameters import (
    now_utc,
    parse_fields,
    parse_interval,
    parse_loop_id,
    parse_window,
)
from clpm_api_gateway.realtime_age import with_current_age
from clpm_api_gateway.routes_data import (
    AGGREGATED_INTERVAL_MAX_LENGTH,
    aggregated_key,
    realtime_key,
)
from clpm_shared.auth import Role, TokenValidator
from clpm_shared.web.problems import ProblemError

ROUTE_TEMPLATE_KEY = "clpm.route_template"
"""Scope key set to the answered path (a route template without parameters), for the request
metrics, which see no FastAPI route for the answers given here."""
KEY_MEMORY = 4096
"""Query strings whose cache key is remembered per endpoint (cleared when full)."""
JSON_HEADERS = (b"content-type", b"application/json")
VARY_ORIGIN = (b"vary", b"Origin")
"""As FastAPI's CORS layer marks every answer: it would differ for a cross-origin request."""
# requests with these headers are routed: no-cache is the endpoint's; cross-origin ones need
# the CORS headers of FastAPI's stack
_ROUTED_HEADERS = frozenset({b"cache-control", b"origin"})

Query = list[tuple[str, str]]


@dataclass
class CachedHitStats:
    """How many requests this layer answered itself (the others went to FastAPI)."""

    answered: int = 0


@dataclass(frozen=True)
class _Endpoint:
    key_of: Callable[[Query], str | None]  # the cache key of a valid canonical query, else None
    render: Callable[[bytes], bytes]  # the cached payload as served


def _single(query: Query, allowed: frozenset[str], repeatable: frozenset[str]) -> bool:
    """Only ``allowed`` names, and each name outside ``repeatable`` at most once."""
    seen: set[str] = set()
    for name, _ in query:
        if name not in allowed or (name in seen and name not in repeatable):
            return False
        seen.add(name)
    return True


_REALTIME_NAMES = frozenset({"loopId", "fields"})
_AGGREGATED_NAMES = frozenset({"loopId", "start", "end", "interval"})


def realtime_query_key(query: Query) -> str | None:
    """Cache key of ``loopId=…[&fields=…]`` as ``/data/realtime`` builds it; None if not valid."""
    if not _single(query, _REALTIME_NAMES, frozenset({"fields"})):
        return None
    loop_ids = [value for name, value in query if name == "loopId"]
    fields = [value for name, value in query if name == "fields"]
    if len(loop_ids) != 1:
        return None
    try:
        return realtime_key(parse_loop_id(loop_ids[0]), parse_fields(fields or None))
    except ProblemError:
        return None


def aggregated_query_key(query: Query) -> str | None:
    """Cache key of ``loopId&start&end[&interval]`` as ``/data/aggregated`` builds it."""
    if not _single(query, _AGGREGATED_NAMES, frozenset()):
        return None
    values = dict(query)
    if "loopId" not in values or "start" not in values or "end" not in values:
        return None
    interval = values.get("interval", "1m")
    if len(interval) > AGGREGATED_INTERVAL_MAX_LENGTH:
        return None
    try:
        loop_id = parse_loop_id(values["loopId"])
        interval_s = parse_interval(interval)
        # both ends given: the window does not depend on "now"
        window = parse_window(values["start"], values["end"], default_span=None, now=now_utc())
        check_bucket_count(window, interval_s)
    except ProblemError:
        return None
    return aggregated_key(loop_id, window, interval_s)


def _realtime_render(payload: bytes) -> bytes:
    return with_current_age(payload, now_utc())


def _as_is(payload: bytes) -> bytes:
    return payload


class CachedHitAnswers:
    """The ASGI layer (see the module docstring); ``prefix`` is ``API_PREFIX``."""

    def __init__(self, app: ASGIApp, *, prefix: str, stats: CachedHitStats) -> None:
        self.app = app
        self.stats = stats
        realtime = _Endpoint(realtime_query_key, _realtime_render)
        aggregated = _Endpoint(aggregated_query_key, _as_is)
        self._endpoints: dict[str, _Endpoint] = {}
        for base in ("", prefix.rstrip("/")):
            self._endpoints[f"{base}/data/realtime"] = realtime
            self._endpoints[f"{base}/data/aggregated"] = aggregated
        # (path, raw query string) -> cache key: a repeated query is parsed once
        self._keys: dict[tuple[str, bytes], str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            body = self._answer(scope)
            if body is not None:
                self.stats.answered += 1
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-length", str(len(body)).encode()),
                            JSON_HEADERS,
                            VARY_ORIGIN,
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope) -> bytes | None:
        """The answer to serve now, or None to let FastAPI handle the request."""
        path = scope["path"]
        endpoint = self._endpoints.get(path)
        if endpoint is None or scope.get("root_path"):
            return None
        app = scope.get("app")
        state = getattr(app, "state", None)
        resources = getattr(state, "resources", None)
        validator = getattr(state, "token_validator", None)
        if not isinstance(resources, GatewayResources) or not isinstance(validator, TokenValidator):
            return None
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:  # the first one, as the bearer dependency reads it
                    authorization = value
            elif name in _ROUTED_HEADERS or (name == b"accept" and b"text/csv" in value.lower()):
                return None
        if authorization is None:
            return None
        scheme, _, param = authorization.decode("latin-1").partition(" ")
        token = param.strip()  # as fastapi.security.HTTPBearer reads it
        if not token or scheme.lower() != "bearer":
            return None
        principal = validator.remembered(token)
        if principal is None or not principal.has_role(Role.VIEWER):
            return None
        key = self._key(path, scope["query_string"], endpoint)
        if key is None:
            return None
        payload = resources.cache.fresh_hit(key)
        if payload is None:
            return None
        try:
            body = endpoint.render(payload)
        except ProblemError:  # a cached answer the endpoint itself refuses: let it answer
            return None
        scope.setdefault("state", {})["principal"] = principal  # as current_principal does
        scope[ROUTE_TEMPLATE_KEY] = path  # for the request metrics: the path has no parameters
        return body

    def _key(self, path: str, query_string: bytes, endpoint: _Endpoint) -> str | None:
        memo = (path, query_string)
        key = self._keys.get(memo)
        if key is None:
            query = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
            key = endpoint.key_of(query)
            if key is None:
                return None
            if len(self._keys) >= KEY_MEMORY:
                self._keys.clear()
            self._keys[memo] = key
        return key
