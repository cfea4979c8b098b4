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
  FastAPI's routing.

The hit ratio of the shared cache, for instance, is ``hits / (hits + misses)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.datastructures import State

from clpm_api_gateway.cached_hits import CachedHitStats
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


def gateway_registry(state: State) -> CollectorRegistry:
    """A registry of this app's metrics only (not the process-wide default one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(state))
    return registry
