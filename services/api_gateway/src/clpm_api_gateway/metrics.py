"""Prometheus metrics of one gateway process (``GET /metrics``): its response cache at work.

Counters since the process started (with ``--workers N`` each worker counts its own; scrape
the replicas, not a shared port):

* ``clpm_gateway_cache_operations_total{cache, operation}``: ``cache`` is ``shared`` (Redis or
  the in-process cache of the embedded run) or ``near`` (this process's copy of Redis
  answers); ``operation`` one of :class:`clpm_shared.cache.CacheStats`' counters: ``hits``,
  ``misses``, ``computations``, ``coalesced``, ``stale_hits``, ``refresh_errors``,
  ``backend_errors``;
* ``clpm_gateway_near_renewals_total{outcome}``: near copies renewed ahead of their expiry,
  ``started``, ``renewed`` or ``failed``;
* ``clpm_gateway_cached_hits_answered_total``: requests the cached-hit layer answered before
  FastAPI's routing;
* ``clpm_gateway_request_duration_seconds{method, route, status}`` (histogram, so also the
  request counts): every HTTP request from reaching the gateway to its last byte, ``route``
  the route's template (``/api/v1/loops/{loop_id}``), ``unmatched`` for paths no route serves
  (so unknown paths cannot blow up the label set).

The hit ratio of the shared cache, for instance, is ``hits / (hits + misses)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.datastructures import State
from starlette.types import Scope

from clpm_api_gateway.cached_hits import ROUTE_TEMPLATE_KEY, CachedHitStats
from clpm_api_gateway.dependencies import GatewayResources
from clpm_shared.cache import CacheStats


class GatewayCollector(Collector):
    """Reads the counters of the app whose ``state`` it is given, at each scrape."""

    def __init__(self, state: State) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        operations = CounterMetricFamily(
            "clpm_gateway_cache_operations",
            "Response cache operations since the process started",
            labels=["cache", "operation"],
        )
        renewals = CounterMetricFamily(
            "clpm_gateway_near_renewals",
            "Near copies renewed ahead of their expiry",
            labels=["outcome"],
        )
        resources = getattr(self.state, "resources", None)
        if isinstance(resources, GatewayResources):
            cache = resources.cache
            caches: list[tuple[str, CacheStats]] = [("shared", cache.shared.stats)]
            if cache.near is not None:
                caches.append(("near", cache.near.stats))
            for name, stats in caches:
                for counter in fields(stats):
                    operations.add_metric([name, counter.name], getattr(stats, counter.name))
            near = cache.near_stats
            renewals.add_metric(["started"], near.renewals)
            renewals.add_metric(["renewed"], near.renewed)
            renewals.add_metric(["failed"], near.renewal_errors)
        yield operations
        yield renewals
        answered = getattr(self.state, "cached_hits", None)
        yield CounterMetricFamily(
            "clpm_gateway_cached_hits_answered",
            "Requests answered from the cache before FastAPI's routing",
            value=answered.answered if isinstance(answered, CachedHitStats) else 0,
        )


DURATION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"


def gateway_registry(state: State) -> CollectorRegistry:
    """A registry of this app's metrics only (not the process-wide default one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(state))
    return registry


def request_duration_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "clpm_gateway_request_duration_seconds",
        "HTTP requests by method, route template and status: time to the last byte",
        labelnames=("method", "route", "status"),
        buckets=DURATION_BUCKETS_S,
        registry=registry,
    )


class RequestDurations:
    """Observer of :class:`~clpm_shared.web.observed_requests.ObservedRequests` putting each
    request's duration into ``histogram`` (see the module docstring).

    The route template is rebuilt from the path and the parameters FastAPI's routing found in
    it (``scope["path_params"]``), or, for a parameter spanning segments (the web front's
    catch-all), is the route's own path; a layer answering before the routing (the cached-hit
    layer) puts its path's template under :data:`ROUTE_TEMPLATE_KEY`.
    """

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram

    def __call__(self, scope: Scope, status: int, elapsed_s: float) -> None:
        self.histogram.labels(scope["method"], self._route(scope), str(status)).observe(elapsed_s)

    def _route(self, scope: Scope) -> str:
        answered_before_routing = scope.get(ROUTE_TEMPLATE_KEY)
        if isinstance(answered_before_routing, str):
            return answered_before_routing
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        return route_template(scope["path"], scope.get("path_params") or {}) or str(
            getattr(route, "path", UNMATCHED)
        )


def route_template(path: str, path_params: dict[str, object]) -> str | None:
    """``/api/v1/loops/{loop_id}`` from the request path and the parameters routing found in it
    (each the last whole segment equal to its value); None when a value spans segments."""
    segments = path.split("/")
    for name, value in path_params.items():
        text = str(value)
        for index in range(len(segments) - 1, -1, -1):
            if segments[index] == text:
                segments[index] = "{" + name + "}"
                break
        else:
            return None
    return "/".join(segments)
