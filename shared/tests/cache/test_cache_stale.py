"""Stale-while-revalidate and jittered lifetimes of the response cache, on a real redis-server
and in process: stale answers at once with one background refresh, waiting past the grace,
invalidation of stale entries, failed refreshes, jitter bounds and Redis stopped."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from clpm_shared.cache import TTL_JITTER, MemoryCache, RedisCache, cache_key, create_cache, loop_tag
from clpm_shared.config import CacheBackend, load_settings
from tests.harness.servers import RedisServer

TTL_S = 0.2
GRACE_S = 1.0


class Source:
    """An async compute function over a versioned data source; counts calls, can fail or lag."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls = 0
        self.version = 1
        self.delay_s = delay_s
        self.failing = False

    async def __call__(self) -> Any:
        self.calls += 1
        version = self.version  # read the data now, answer after the delay
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.failing:
            raise RuntimeError("database unavailable")
        return {"version": version}


@pytest.fixture(params=["memory", "redis"])
async def swr_cache(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[MemoryCache | RedisCache]:
    backend: MemoryCache | RedisCache
    if request.param == "memory":
        backend = MemoryCache(stale_grace_s=GRACE_S)
    else:
        backend = RedisCache.from_url(redis_server.url, stale_grace_s=GRACE_S)
    yield backend
    await backend.aclose()


def ns() -> str:
    """A namespace no other test uses (the Redis server is shared by the session)."""
    return f"test-{uuid.uuid4().hex[:10]}"


async def timed(awaitable: Any) -> tuple[Any, float]:
    began = time.monotonic()
    result = await awaitable
    return result, time.monotonic() - began


async def test_stale_answer_is_served_at_once_while_one_refresh_runs(
    swr_cache: MemoryCache | RedisCache,
) -> None:
    source = Source(delay_s=0.3)
    key = cache_key(ns(), loop_id="FIC101")
    assert await swr_cache.get_or_compute(key, TTL_S, source) == {"version": 1}
    source.version = 2
    await asyncio.sleep(TTL_S + 0.05)  # stale now, within the grace
    assert await swr_cache.get(key) is None  # get() answers only fresh entries

    answers, elapsed = await timed(
        asyncio.gather(*(swr_cache.get_or_compute(key, TTL_S, source) for _ in range(30)))
    )
    assert answers == [{"version": 1}] * 30  # the stale answer, to every caller
    assert elapsed < 0.2  # without waiting for the 0.3-s recomputation
    assert source.calls == 2  # exactly one refresh for 30 stale hits
    assert swr_cache.stats.stale_hits == 30

    await asyncio.sleep(0.4)  # the refresh has finished and stored its answer
    fresh, elapsed = await timed(swr_cache.get_or_compute(key, TTL_S, source))
    assert fresh == {"version": 2}
    assert elapsed < 0.2
    assert source.calls == 2


async def test_past_the_grace_callers_wait_for_one_computation(
    swr_cache: MemoryCache | RedisCache,
) -> None:
    source = Source(delay_s=0.2)
    key = cache_key(ns(), loop_id="FIC101")
    await swr_cache.get_or_compute(key, TTL_S, source)
    source.version = 2
    await asyncio.sleep(TTL_S + GRACE_S + 0.1)  # past fresh lifetime and grace
    answers, elapsed = await timed(
        asyncio.gather(*(swr_cache.get_or_compute(key, TTL_S, source) for _ in range(10)))
    )
    assert answers == [{"version": 2}] * 10  # nothing stale: everybody got the new answer
    assert elapsed >= 0.18  # they waited for it
    assert source.calls == 2  # single-flight
    assert swr_cache.stats.stale_hits == 0


async def test_get_fresh_or_compute_bytes_recomputes_a_stale_entry_once(
    swr_cache: MemoryCache | RedisCache,
) -> None:
    source = Source(delay_s=0.1)

    async def render() -> bytes:
        return json.dumps(await source()).encode()

    key = cache_key(ns(), loop_id="FIC101")
    assert await swr_cache.get_fresh_or_compute_bytes(key, TTL_S, render) == b'{"version": 1}'
    assert await swr_cache.get_fresh_or_compute_bytes(key, TTL_S, render) == b'{"version": 1}'
    assert source.calls == 1  # fresh: served
    source.version = 2
    await asyncio.sleep(TTL_S + 0.05)  # stale, within the grace
    # a stale hit starts the background refresh; the fresh callers join it, none sees version 1
    stale = await swr_cache.get_or_compute_bytes(key, TTL_S, render)
    answers = await asyncio.gather(
        *(swr_cache.get_fresh_or_compute_bytes(key, TTL_S, render) for _ in range(5))
    )
    assert stale == b'{"version": 1}'
    assert answers == [b'{"version": 2}'] * 5
    assert source.calls == 2  # single-flight with the background refresh


@pytest.mark.parametrize("how", ["tag", "prefix"])
async def test_invalidation_drops_stale_entries_at_once(
    swr_cache: MemoryCache | RedisCache, how: str
) -> None:
    source = Source()
    space = ns()
    key = cache_key(f"{space}:realtime", loop_id="FIC101")
    await swr_cache.get_or_compute(key, TTL_S, source, tags=[loop_tag("FIC101")])
    await asyncio.sleep(TTL_S + 0.05)  # stale, within the grace
    source.version = 2  # the loop's configuration changed
    if how == "tag":
        assert await swr_cache.invalidate_tags(loop_tag("FIC101")) == 1
    else:
        assert await swr_cache.invalidate_prefix(f"{space}:") == 1
    assert await swr_cache.lookup(key) is None
    assert await swr_cache.get_or_compute(key, TTL_S, source) == {"version": 2}
    assert swr_cache.stats.stale_hits == 0


async def test_invalidation_during_a_background_refresh_is_not_undone(
    swr_cache: MemoryCache | RedisCache,
) -> None:
    source = Source(delay_s=0.2)
    key = cache_key(ns(), loop_id="FIC101")
    tags = [loop_tag("FIC101")]
    await swr_cache.get_or_compute(key, TTL_S, source, tags=tags)
    await asyncio.sleep(TTL_S + 0.05)
    # a stale hit starts a refresh that reads the data before the change ...
    assert await swr_cache.get_or_compute(key, TTL_S, source, tags=tags) == {"version": 1}
    await asyncio.sleep(0.05)
    source.version = 2
    await swr_cache.invalidate_tags(loop_tag("FIC101"))  # ... then the configuration changes
    # the next caller neither gets the stale answer nor joins the refresh started before
    assert await swr_cache.get_or_compute(key, TTL_S, source, tags=tags) == {"version": 2}
    await asyncio.sleep(0.2)  # the old refresh ends and must not overwrite the new answer
    assert await swr_cache.get_or_compute(key, TTL_S, source, tags=tags) == {"version": 2}
    assert source.calls == 3


async def test_a_failed_refresh_is_logged_and_the_stale_answer_stays(
    swr_cache: MemoryCache | RedisCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="clpm_shared.cache")
    source = Source()
    key = cache_key(ns(), loop_id="FIC101")
    await swr_cache.get_or_compute(key, TTL_S, source)
    await asyncio.sleep(TTL_S + 0.05)
    source.failing = True
    assert await swr_cache.get_or_compute(key, TTL_S, source) == {"version": 1}
    await asyncio.sleep(0.05)  # the refresh has failed
    assert swr_cache.stats.refresh_errors == 1
    failures = [r for r in caplog.records if "cache refresh failed" in r.getMessage()]
    assert len(failures) == 1
    assert "database unavailable" in failures[0].__dict__["error"]
    # still served stale (and retried) while the grace lasts
    assert await swr_cache.get_or_compute(key, TTL_S, source) == {"version": 1}
    await asyncio.sleep(0.05)
    assert source.calls == 3
    # past the grace the caller waits and sees the error, as on any miss
    await asyncio.sleep(GRACE_S)
    with pytest.raises(RuntimeError, match="database unavailable"):
        await swr_cache.get_or_compute(key, TTL_S, source)
    source.failing = False
    assert await swr_cache.get_or_compute(key, TTL_S, source) == {"version": 1}


async def test_stale_hits_in_two_processes_refresh_once(redis_server: RedisServer) -> None:
    # Two RedisCache instances with their own connections behave like two gateway processes.
    first = RedisCache.from_url(redis_server.url, stale_grace_s=GRACE_S)
    second = RedisCache.from_url(redis_server.url, stale_grace_s=GRACE_S)
    source = Source(delay_s=0.2)
    key = cache_key(ns(), loop_id="FIC101")
    try:
        await first.get_or_compute(key, TTL_S, source)
        source.version = 2
        await asyncio.sleep(TTL_S + 0.05)
        stale = await asyncio.gather(
            first.get_or_compute(key, 30, source), second.get_or_compute(key, 30, source)
        )  # the refreshed answer lives 30 s: still fresh when checked below
        assert stale == [{"version": 1}] * 2
        await asyncio.sleep(0.4)
        assert source.calls == 2  # one refresh across both processes (the Redis lock)
        assert await second.get(key) == b'{"version":2}'  # the waiter took the fresh value
        assert await second.get_or_compute(key, 30, source) == {"version": 2}
    finally:
        await first.aclose()
        await second.aclose()


async def test_memory_lifetimes_are_jittered_within_bounds() -> None:
    cache = MemoryCache(stale_grace_s=GRACE_S, ttl_jitter=0.1)
    for index in range(200):
        await cache.set(f"k{index}", b"v", 10.0)
    lifetimes = [cache.lifetime(f"k{index}") for index in range(200)]
    fresh = [entry[0] for entry in lifetimes if entry is not None]
    assert len(fresh) == 200
    assert all(8.9 <= seconds <= 11.0 for seconds in fresh)  # 10 s ± 10 %
    assert max(fresh) - min(fresh) > 1.0  # spread, not all the same
    assert all(
        entry is not None and entry[1] - entry[0] == pytest.approx(GRACE_S) for entry in lifetimes
    )


async def test_redis_lifetimes_are_jittered_within_bounds(redis_server: RedisServer) -> None:
    cache = RedisCache.from_url(redis_server.url, stale_grace_s=GRACE_S, ttl_jitter=0.1)
    client = aioredis.Redis.from_url(redis_server.url)
    space = ns()
    try:
        for index in range(100):
            await cache.set(f"{space}:k{index}", b"v", 10.0, tags=["fleet-" + space])
        ttls_ms = [await client.pttl(f"clpm:cache:{space}:k{index}") for index in range(100)]
        # Redis keeps an entry for its jittered fresh lifetime plus the grace
        assert all(9_000 + GRACE_S * 1000 - 100 <= ms <= 11_000 + GRACE_S * 1000 for ms in ttls_ms)
        assert max(ttls_ms) - min(ttls_ms) > 1_000
        # the tag set outlives every entry it lists, so invalidation still finds stale ones
        assert await client.pttl(f"clpm:cache-tag:fleet-{space}") >= max(ttls_ms)
        assert await cache.invalidate_tags("fleet-" + space) == 100
    finally:
        await client.aclose()
        await cache.aclose()


async def test_stale_grace_and_jitter_come_from_the_settings(redis_server: RedisServer) -> None:
    settings = load_settings(
        cache={
            "cache_backend": CacheBackend.REDIS,
            "redis_url": redis_server.url,
            "cache_stale_grace_s": 4.5,
        }
    ).cache
    redis_cache = create_cache(settings)
    memory_cache = create_cache(settings.model_copy(update={"cache_backend": CacheBackend.MEMORY}))
    try:
        for backend in (redis_cache, memory_cache):
            assert backend.stale_grace_s == 4.5
            assert backend.ttl_jitter == TTL_JITTER
        assert load_settings().cache.cache_stale_grace_s > 0  # on by default
    finally:
        await redis_cache.aclose()
        await memory_cache.aclose()


async def test_with_redis_stopped_a_grace_cache_answers_uncached(
    redis_server: RedisServer,
) -> None:
    cache = RedisCache.from_url(redis_server.url, retry_interval_s=0.3, stale_grace_s=GRACE_S)
    source = Source()
    key = cache_key(ns(), loop_id="FIC101")
    try:
        assert await cache.get_or_compute(key, TTL_S, source) == {"version": 1}
        redis_server.stop()
        source.version = 2
        answers = [await cache.get_or_compute(key, TTL_S, source) for _ in range(3)]
        assert answers == [{"version": 2}] * 3  # computed every time, no stale from anywhere
        assert source.calls == 4
        assert cache.stats.backend_errors >= 1
    finally:
        if not redis_server.running:
            redis_server.start()
        await cache.aclose()


async def test_peek_gives_fresh_memory_entries_only_and_leaves_stale_ones() -> None:
    cache = MemoryCache(stale_grace_s=GRACE_S)
    source = Source()
    key = cache_key(ns(), item=1)
    try:
        assert cache.peek(key) is None
        await cache.get_or_compute(key, TTL_S, source)
        assert cache.peek(key) == b'{"version":1}'
        await asyncio.sleep(TTL_S * 1.2)
        assert cache.peek(key) is None  # stale: not served without its refresh
        source.version = 2
        assert await cache.get_or_compute(key, TTL_S, source) == {"version": 1}  # stale hit
        await asyncio.sleep(0.05)  # the background refresh
        assert cache.peek(key) == b'{"version":2}'
        assert cache.stats.hits == 1  # peek counts nothing
    finally:
        await cache.aclose()


async def test_background_refreshes_run_at_most_max_refreshes_at_once() -> None:
    cache = MemoryCache(stale_grace_s=GRACE_S, max_refreshes=2)
    running = 0
    most = 0
    calls = 0

    async def slow() -> Any:
        nonlocal running, most, calls
        calls += 1
        number = calls
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1
        return {"call": number}

    keys = [cache_key(ns(), item=i) for i in range(6)]
    try:
        for key in keys:
            await cache.get_or_compute(key, TTL_S, slow)
        most = 0
        await asyncio.sleep(TTL_S * 1.2)  # every key stale
        stale = [await cache.get_or_compute(key, TTL_S, slow) for key in keys * 3]
        assert [answer["call"] for answer in stale[:6]] == [1, 2, 3, 4, 5, 6]  # at once, stale
        await asyncio.sleep(0.4)  # three rounds of two refreshes
        assert calls == 12  # one refresh per key, none twice while queued
        assert most == 2
        refreshed = [(await cache.get_or_compute(key, TTL_S, slow))["call"] for key in keys]
        assert sorted(refreshed) == [7, 8, 9, 10, 11, 12]  # every key holds its refreshed answer
    finally:
        await cache.aclose()
