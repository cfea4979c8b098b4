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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pydantic_core
from fastapi.responses import Response

from clpm_shared.cache import Cache, MemoryCache, create_cache, loop_tag
from clpm_shared.config import CacheBackend, CacheSettings

FLEET_TAG = "fleet"
NEAR_MAX_ENTRIES = 2000
NEAR_MAX_BYTES = 64 * 1024
"""Answers larger than this (long raw pages) are not kept near: at most ~128 MB per process."""
JSON_MEDIA_TYPE = "application/json"

Body = dict[str, Any]


def render_json(body: Any) -> bytes:
    return pydantic_core.to_json(body)


class ResponseCache:
    """The shared cache (Redis or memory) with an optional near copy in this process."""

    def __init__(self, shared: Cache, near: MemoryCache | None, near_ttl_s: float) -> None:
        self.shared = shared
        self.near = near
        self.near_ttl_s = near_ttl_s

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

        if fresh:
            payload = await render()
            await self.shared.set(key, payload, ttl_s, tags=tag_list)
        else:
            if self.near is not None:
                near = await self.near.get(key)
                if near is not None:
                    return near
            payload = await self.shared.get_or_compute_bytes(key, ttl_s, render, tags=tag_list)
        if self.near is not None and len(payload) <= NEAR_MAX_BYTES:
            await self.near.set(key, payload, min(self.near_ttl_s, ttl_s), tags=tag_list)
        return payload

    def fresh_hit(self, key: str) -> bytes | None:
        """The fresh answer under ``key`` if this process holds it, without awaiting.

        The near copy with Redis, the cache itself with the memory backend (counted as a hit,
        as :meth:`json` counts it there); ``None`` otherwise (missing, stale, Redis only):
        then :meth:`json` decides.
        """
        if self.near is not None:
            return self.near.peek(key)
        if isinstance(self.shared, MemoryCache):
            found = self.shared.peek(key)
            if found is not None:
                self.shared.stats.hits += 1
            return found
        return None

    async def invalidate_tags(self, *tags: str) -> None:
        if self.near is not None:
            await self.near.invalidate_tags(*tags)
        await self.shared.invalidate_tags(*tags)

    async def aclose(self) -> None:
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
