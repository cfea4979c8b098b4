"""Cached JSON answers of the gateway on top of :mod:`clpm_shared.cache`.

Answers are cached as rendered JSON bytes (served as they are on a hit), keyed by every
normalised parameter, with a TTL per endpoint: ``CACHE_TTL_REALTIME_S`` for latest values,
``ttl_for_range`` (recent vs. closed historical range) for range queries. Entries about a loop
carry its tag, fleet-wide ones the fleet tag; a change of a loop or of its configuration drops
both. A cache outage never fails a request (the shared cache answers uncached).

With Redis, each process also keeps an answer in its own memory for ``CACHE_NEAR_TTL_S``
(default 1 s, never longer than the answer's TTL; answers up to 64 KiB, at most 2000 of them):
hot keys then cost no Redis round trip. A change made through another process shows here after
at most that long; one made through this process drops both copies at once.

A near copy that is read in the second half of its lifetime (:data:`NEAR_RENEW_AHEAD`) is
renewed in the background (refresh-ahead): the answer is read again from Redis, or recomputed
and stored there if Redis holds it stale or not at all, and kept near for another lifetime.
Hot keys therefore never expire in the middle of traffic: without this, every expiry sent the
next requests for the key down the slow path (a Redis round trip, or a recomputation) - on a
busy gateway about one request in a hundred, and so its p99 latency. Cold keys still expire.
At most :data:`MAX_NEAR_RENEWALS` renewals run at once (one per key); a renewal started before
an invalidation through this process does not put the old answer back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pydantic_core
from fastapi.responses import Response

from clpm_shared.cache import Cache, MemoryCache, create_cache, loop_tag
from clpm_shared.config import CacheBackend, CacheSettings

logger = logging.getLogger(__name__)

FLEET_TAG = "fleet"
NEAR_MAX_ENTRIES = 2000
NEAR_MAX_BYTES = 64 * 1024
"""Answers larger than this (long raw pages) are not kept near: at most ~128 MB per process."""
JSON_MEDIA_TYPE = "application/json"
NEAR_RENEW_AHEAD = 0.5
"""A near copy read when less than this fraction of its lifetime is left is renewed."""
MAX_NEAR_RENEWALS = 16
"""Near-copy renewals running at once per process; a hit finding them all busy starts none."""

Body = dict[str, Any]


def render_json(body: Any) -> bytes:
    return pydantic_core.to_json(body)


@dataclass(frozen=True)
class _NearSource:
    """How to renew a near copy: the answer's TTL, its computation and tags."""

    ttl_s: float
    near_ttl_s: float
    render: Callable[[], Awaitable[bytes]]
    tags: tuple[str, ...]


@dataclass
class NearCopyStats:
    """Counters of the near copy's renewals (for tests and metrics)."""

    renewals: int = 0  # renewals started
    renewed: int = 0  # renewals that replaced the near copy
    renewal_errors: int = 0  # renewals that failed (the copy expires; requests then decide)


class ResponseCache:
    """The shared cache (Redis or memory) with an optional near copy in this process."""

    def __init__(self, shared: Cache, near: MemoryCache | None, near_ttl_s: float) -> None:
        self.shared = shared
        self.near = near
        self.near_ttl_s = near_ttl_s
        self.near_stats = NearCopyStats()
        # key -> how to renew its near copy; as many as the near copies, least recent first
        self._near_sources: OrderedDict[str, _NearSource] = OrderedDict()
        self._renewals: dict[str, asyncio.Task[None]] = {}
        self._generation = 0  # bumped by every invalidation through this process

    @classmethod
    def from_settings(cls, settings: CacheSettings) -> ResponseCache:
        near_ttl_s = settings.cache_near_ttl_s
        with_near = settings.cache_backend is CacheBackend.REDIS and near_ttl_s > 0
        near = MemoryCache(max_entries=NEAR_MAX_ENTRIES) if with_near else None
        return cls(create_cache(settings), near, near_ttl_s)

    async def json(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[Body]],
        tags: Iterable[str],
        *,
        fresh: bool = False,
    ) -> bytes:
        """The rendered JSON answer under ``key``; computed, rendered and stored on a miss.

        ``fresh`` (the client sent ``Cache-Control: no-cache``) computes the answer even when
        one is cached, and stores it for the next callers.
        """
        tag_list = tuple(tags)

        async def render() -> bytes:
            return render_json(await compute())

        generation = self._generation
        if fresh:
            payload = await render()
            await self.shared.set(key, payload, ttl_s, tags=tag_list)
        else:
            if self.near is not None:
                near = self._near_hit(key)
                if near is not None:
                    return near
            payload = await self.shared.get_or_compute_bytes(key, ttl_s, render, tags=tag_list)
        if self.near is not None and len(payload) <= NEAR_MAX_BYTES:
            source = _NearSource(ttl_s, min(self.near_ttl_s, ttl_s), render, tag_list)
            await self._keep_near(key, payload, source, generation)
        return payload

    def fresh_hit(self, key: str) -> bytes | None:
        """The fresh answer under ``key`` if this process holds it, without awaiting.

        The near copy with Redis (renewed ahead of its expiry, see the module docstring), the
        cache itself with the memory backend (counted as a hit, as :meth:`json` counts it
        there); ``None`` otherwise (missing, stale, Redis only): then :meth:`json` decides.
        """
        if self.near is not None:
            return self._near_hit(key)
        if isinstance(self.shared, MemoryCache):
            found = self.shared.peek(key)
            if found is not None:
                self.shared.stats.hits += 1
            return found
        return None

    def _near_hit(self, key: str) -> bytes | None:
        """The fresh near copy of ``key``; one late in its lifetime starts its renewal."""
        assert self.near is not None
        found = self.near.peek_fresh(key)
        if found is None:
            return None
        payload, fresh_for_s = found
        source = self._near_sources.get(key)
        if (
            source is not None
            and fresh_for_s < source.near_ttl_s * NEAR_RENEW_AHEAD
            and key not in self._renewals
            and len(self._renewals) < MAX_NEAR_RENEWALS
        ):
            self.near_stats.renewals += 1
            task = asyncio.get_running_loop().create_task(
                self._renew_near(key, source, self._generation)
            )
            self._renewals[key] = task
            task.add_done_callback(lambda _: self._renewals.pop(key, None))
        return payload

    async def _renew_near(self, key: str, source: _NearSource, generation: int) -> None:
        """Read ``key`` fresh from the shared cache (recomputed there if it is not) and keep it
        near for another lifetime. A failure is left to the requests after the copy expired,
        which answer it (stale value, 503, 404...) as they would without the near copy."""
        try:
            payload = await self.shared.get_fresh_or_compute_bytes(
                key, source.ttl_s, source.render, tags=source.tags
            )
        except Exception as exc:  # any failure of the computation: let the copy expire
            self.near_stats.renewal_errors += 1
            logger.debug(
                "near copy not renewed: it expires",
                extra={"key": key, "error": f"{type(exc).__name__}: {exc}"},
            )
            return
        if len(payload) <= NEAR_MAX_BYTES and await self._keep_near(
            key, payload, source, generation
        ):
            self.near_stats.renewed += 1

    async def _keep_near(
        self, key: str, payload: bytes, source: _NearSource, generation: int
    ) -> bool:
        """Keep ``payload`` near unless an invalidation happened since it was read."""
        assert self.near is not None
        if generation != self._generation:
            return False
        await self.near.set(key, payload, source.near_ttl_s, tags=source.tags)
        self._near_sources[key] = source
        self._near_sources.move_to_end(key)
        while len(self._near_sources) > NEAR_MAX_ENTRIES:
            self._near_sources.popitem(last=False)
        return True

    @property
    def renewals_running(self) -> int:
        """Near-copy renewals running now."""
        return len(self._renewals)

    async def renewals_finished(self) -> None:
        """Wait until the renewals running now have ended (they never raise)."""
        await asyncio.gather(*self._renewals.values(), return_exceptions=True)

    async def invalidate_tags(self, *tags: str) -> None:
        self._generation += 1
        if self.near is not None:
            await self.near.invalidate_tags(*tags)
        await self.shared.invalidate_tags(*tags)

    async def aclose(self) -> None:
        renewals = list(self._renewals.values())
        for task in renewals:
            task.cancel()
        await asyncio.gather(*renewals, return_exceptions=True)
        if self.near is not None:
            await self.near.aclose()
        await self.shared.aclose()


async def cached_json(
    cache: ResponseCache,
    key: str,
    ttl_s: float,
    compute: Callable[[], Awaitable[Body]],
    tags: Iterable[str],
    *,
    fresh: bool = False,
) -> bytes:
    """``cache.json(...)``: the cached or freshly computed JSON answer under ``key``."""
    return await cache.json(key, ttl_s, compute, tags, fresh=fresh)


def loop_tags(loop_id: str) -> tuple[str, ...]:
    return (loop_tag(loop_id),)


def json_response(payload: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(payload, media_type=JSON_MEDIA_TYPE, headers=headers)


async def invalidate_loop(cache: ResponseCache, loop_id: str) -> None:
    """Drop every cached answer about ``loop_id`` and every fleet-wide answer."""
    await cache.invalidate_tags(loop_tag(loop_id), FLEET_TAG)
