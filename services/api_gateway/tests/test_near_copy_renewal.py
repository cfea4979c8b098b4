"""Refresh-ahead of the gateway's near copies, on a real redis-server: a copy read in the second
half of its lifetime is renewed from Redis (or recomputed when Redis holds it stale or not at
all) before it expires; cold copies expire; an invalidation during a renewal is not undone; a
failed renewal lets the copy expire; at most MAX_NEAR_RENEWALS run at once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from clpm_api_gateway.response_cache import (
    MAX_NEAR_RENEWALS,
    NEAR_RENEW_AHEAD,
    ResponseCache,
)
from clpm_shared.cache import MemoryCache, RedisCache, loop_tag
from tests.harness.servers import RedisServer

NEAR_TTL_S = 0.4
TTL_S = 30.0
GRACE_S = 30.0


class Source:
    """An answer computed from a versioned source; counts calls, can lag or fail."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.version = 1
        self.calls = 0
        self.delay_s = delay_s
        self.failing = False

    async def __call__(self) -> dict[str, int]:
        self.calls += 1
        version = self.version
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.failing:
            raise RuntimeError("influxd unavailable")
        return {"version": version}


@pytest.fixture
async def cache(redis_server: RedisServer) -> AsyncIterator[ResponseCache]:
    shared = RedisCache.from_url(redis_server.url, stale_grace_s=GRACE_S)
    response_cache = ResponseCache(shared, MemoryCache(), NEAR_TTL_S)
    yield response_cache
    await response_cache.aclose()


def new_key() -> str:
    return f"test-near-{uuid.uuid4().hex[:10]}"


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


async def test_a_copy_read_late_in_its_life_is_renewed_from_redis_before_it_expires(
    cache: ResponseCache,
) -> None:
    key, source = new_key(), Source()
    assert await cache.json(key, TTL_S, source, ()) == b'{"version":1}'
    stored_at = time.monotonic()
    await cache.shared.set(key, b'{"version":2}', TTL_S)  # changed through another process

    # first half of the near lifetime: the near copy, no renewal
    assert cache.fresh_hit(key) == b'{"version":1}'
    assert cache.near_stats.renewals == 0

    await sleep_until(stored_at + NEAR_TTL_S * NEAR_RENEW_AHEAD + 0.05)
    assert cache.fresh_hit(key) == b'{"version":1}', "the copy is served while it renews"
    assert cache.near_stats.renewals == 1
    assert cache.fresh_hit(key) == b'{"version":1}'
    assert cache.near_stats.renewals == 1, "one renewal per key at a time"
    await cache.renewals_finished()
    assert cache.near_stats.renewed == 1
    assert cache.fresh_hit(key) == b'{"version":2}', "the renewal read Redis again"

    # past the first copy's expiry the renewed copy is still fresh: no request missed it
    await sleep_until(stored_at + NEAR_TTL_S + 0.05)
    assert cache.fresh_hit(key) == b'{"version":2}'
    assert source.calls == 1, "Redis held the answer fresh: nothing recomputed"


async def test_a_copy_nobody_reads_late_in_its_life_expires(cache: ResponseCache) -> None:
    key, source = new_key(), Source()
    await cache.json(key, TTL_S, source, ())
    assert cache.fresh_hit(key) is not None
    await asyncio.sleep(NEAR_TTL_S + 0.05)
    assert cache.fresh_hit(key) is None
    assert cache.near_stats.renewals == 0


async def test_a_renewal_recomputes_an_answer_redis_holds_stale(cache: ResponseCache) -> None:
    key, source = new_key(), Source()
    await cache.json(key, TTL_S, source, (loop_tag("FIC-101"),))
    stored_at = time.monotonic()
    await cache.shared.set(key, b'{"version":1}', 0.05)  # stale in Redis from now on
    source.version = 2
    await sleep_until(stored_at + NEAR_TTL_S * NEAR_RENEW_AHEAD + 0.05)
    assert cache.fresh_hit(key) == b'{"version":1}'
    await cache.renewals_finished()
    assert source.calls == 2, "the stale Redis answer was recomputed, not kept near"
    assert cache.fresh_hit(key) == b'{"version":2}'
    found = await cache.shared.lookup(key)
    assert found == (b'{"version":2}', True), "and stored fresh in Redis for the others"


async def test_an_invalidation_during_a_renewal_is_not_undone(cache: ResponseCache) -> None:
    key, source = new_key(), Source(delay_s=0.2)
    tag = loop_tag(f"LOOP-{uuid.uuid4().hex[:6]}")
    await cache.json(key, TTL_S, source, (tag,))
    stored_at = time.monotonic()
    await cache.shared.set(key, b'{"version":1}', 0.05)  # the renewal will recompute (slowly)
    await sleep_until(stored_at + NEAR_TTL_S * NEAR_RENEW_AHEAD + 0.05)
    assert cache.fresh_hit(key) is not None
    assert cache.near_stats.renewals == 1
    await asyncio.sleep(0.05)  # the recomputation has read version 1
    await cache.invalidate_tags(tag)  # e.g. the loop's configuration changed
    await cache.renewals_finished()
    assert cache.near_stats.renewed == 0
    assert cache.fresh_hit(key) is None, "the answer computed before the change came back"
    assert await cache.shared.get(key) is None


async def test_a_failed_renewal_lets_the_copy_expire(cache: ResponseCache) -> None:
    key, source = new_key(), Source()
    await cache.json(key, TTL_S, source, ())
    stored_at = time.monotonic()
    await cache.shared.invalidate_prefix(key)  # gone from Redis: the renewal must compute
    source.failing = True
    await sleep_until(stored_at + NEAR_TTL_S * NEAR_RENEW_AHEAD + 0.05)
    assert cache.fresh_hit(key) == b'{"version":1}'
    await cache.renewals_finished()
    assert cache.near_stats.renewal_errors == 1
    assert cache.near_stats.renewed == 0
    await sleep_until(stored_at + NEAR_TTL_S + 0.05)
    assert cache.fresh_hit(key) is None, "a copy that could not be renewed expires"
    with pytest.raises(RuntimeError, match="influxd unavailable"):
        await cache.json(key, TTL_S, source, ())  # the request now sees the failure itself


async def test_at_most_max_near_renewals_run_at_once(cache: ResponseCache) -> None:
    source = Source(delay_s=0.1)
    keys = [new_key() for _ in range(MAX_NEAR_RENEWALS + 8)]
    await asyncio.gather(*(cache.json(key, TTL_S, source, ()) for key in keys))
    stored_at = time.monotonic()
    for key in keys:
        await cache.shared.invalidate_prefix(key)  # the renewals must recompute (slowly)
    await sleep_until(stored_at + NEAR_TTL_S * NEAR_RENEW_AHEAD + 0.02)
    for key in keys:
        assert cache.fresh_hit(key) is not None
    assert cache.renewals_running == MAX_NEAR_RENEWALS
    assert cache.near_stats.renewals == MAX_NEAR_RENEWALS
    await cache.renewals_finished()
    assert source.calls == len(keys) + MAX_NEAR_RENEWALS
