"""Cached JSON answers of the gateway on top of :mod:`clpm_shared.cache`.

Answers are cached as rendered JSON bytes (served as they are on a hit), keyed by every
normalised parameter, with a TTL per endpoint: ``CACHE_TTL_REALTIME_S`` for latest values,
``ttl_for_range`` (recent vs. closed historical range) for range queries. Entries about a loop
carry its tag, fleet-wide ones the fleet tag; a change of a loop or of its configuration drops
both. A cache outage never fails a request (the shared cache answers uncached).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pydantic_core
from clpm_shared.cache import Cache, loop_tag
from fastapi.responses import Response

FLEET_TAG = "fleet"
JSON_MEDIA_TYPE = "application/json"

Body = dict[str, Any]


def render_json(body: Any) -> bytes:
    return pydantic_core.to_json(body)


async def cached_json(
    cache: Cache,
    key: str,
    ttl_s: float,
    compute: Callable[[], Awaitable[Body]],
    tags: Iterable[str],
    *,
    fresh: bool = False,
) -> bytes:
    """The rendered JSON answer under ``key``; computed, rendered and stored on a miss.

    ``fresh`` (the client sent ``Cache-Control: no-cache``) computes the answer even when one
    is cached, and stores it for the next callers.
    """

    async def render() -> bytes:
        return render_json(await compute())

    if fresh:
        payload = await render()
        await cache.set(key, payload, ttl_s, tags=tuple(tags))
        return payload
    return await cache.get_or_compute_bytes(key, ttl_s, render, tags=tuple(tags))


def loop_tags(loop_id: str) -> tuple[str, ...]:
    return (loop_tag(loop_id),)


def json_response(payload: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(payload, media_type=JSON_MEDIA_TYPE, headers=headers)


async def invalidate_loop(cache: Cache, loop_id: str) -> None:
    """Drop every cached answer about ``loop_id`` and every fleet-wide answer."""
    await cache.invalidate_tags(loop_tag(loop_id), FLEET_TAG)
