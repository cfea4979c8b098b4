"""Response cache on a real redis-server and in process: hits, TTL, single-flight, invalidation,
and Redis stopped mid-test (answers uncached, then recovers)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from clpm_shared.cache import (
    MAX_KEY_LENGTH,
    MemoryCache,
    RedisCache,
    cache_key,
    create_cache,
    loop_tag,
    open_cache,
    ttl_for_range,
)
from clpm_shared.config import CacheBackend, load_settings
from tests.harness.servers import RedisServer


class Counter:
    """An async compute function that counts its calls and can be slowed down."""

    def __init__(self, value: Any = None, delay_s: float = 0.0) -> None:
        self.calls = 0
        self.value = value
        self.delay_s = delay_s

    async def __call__(self) -> Any:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.value if self.value is not None else {"call": self.calls}


def counting_bytes(counter: Counter) -> Callable[[], Awaitable[bytes]]:
    async def compute() -> bytes:
        result = await counter()
        return str(result).encode()

    return compute


@pytest.fixture(params=["memory", "redis"])
async def cache(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[MemoryCache | RedisCache]:
    if request.param == "memory":
        backend: MemoryCache | RedisCache = MemoryCache()
    else:
        backend = RedisCache.from_url(redis_server.url)
    yield backend
    await backend.aclose()


def ns() -> str:
    """A namespace no other test uses (the Redis server is shared by the session)."""
    return f"test-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------- keys


def test_key_is_independent_of_parameter_order_and_drops_none() -> None:
    assert cache_key("data:raw", loop_id="FIC101", limit=10) == cache_key(
        "data:raw", limit=10, loop_id="FIC101", cursor=None
    )
    assert cache_key("data:raw", loop_id="FIC101", limit=10) != cache_key(
        "data:raw", loop_id="FIC101", limit=11
    )
    assert cache_key("data:raw", loop_id="A") != cache_key("data:agg", loop_id="A")


def test_key_normalises_times_numbers_and_collections() -> None:
    instant = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    same_instant = instant.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert cache_key("q", start=instant) == cache_key("q", start=same_instant)
    assert cache_key("q", interval=60.0) == cache_key("q", interval=60)
    assert cache_key("q", interval=timedelta(minutes=1)) == cache_key("q", interval=60)
    assert cache_key("q", fields={"SP", "PV"}) == cache_key("q", fields=frozenset({"PV", "SP"}))
    assert cache_key("q", fields=["PV", "SP"]) != cache_key("q", fields=["SP", "PV"])
    assert cache_key("q", flag=True) != cache_key("q", flag=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        cache_key("q", start=datetime(2026, 1, 2))  # naive on purpose


def test_key_escapes_delimiters_so_parameters_cannot_collide() -> None:
    assert cache_key("q", a="x&b=y") != cache_key("q", a="x", b="y")
    assert cache_key("q", a="x&b=y") == "q:a=x%26b%3Dy"


def test_long_keys_are_hashed_but_stay_distinct() -> None:
    long_a = cache_key("q", loops=[f"L{i}" for i in range(200)])
    long_b = cache_key("q", loops=[f"L{i}" for i in range(201)])
    assert len(long_a) <= MAX_KEY_LENGTH
    assert long_a.startswith("q:#")
    assert long_a != long_b


def test_ttl_for_range_is_long_only_for_settled_past_ranges() -> None:
    settings = load_settings().cache
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert ttl_for_range(settings, now - timedelta(hours=2), now=now) == (
        settings.cache_ttl_historical_s
    )
    assert ttl_for_range(settings, now - timedelta(seconds=10), now=now) == (
        settings.cache_ttl_recent_s
    )
    assert ttl_for_range(settings, now + timedelta(hours=1), now=now) == (
        settings.cache_ttl_recent_s
    )


# --------------------------------------------------------------------------- both backends


async def test_miss_then_hit_computes_once(cache: MemoryCache | RedisCache) -> None:
    compute = Counter()
    key = cache_key(ns(), loop_id="FIC101")
    first = await cache.get_or_compute(key, 30, compute)
    second = await cache.get_or_compute(key, 30, compute)
    assert first == second == {"call": 1}
    assert compute.calls == 1
    assert cache.stats.hits == 1
    assert cache.stats.misses == 1


async def test_json_values_decode_the_same_on_miss_and_hit(cache: MemoryCache | RedisCache) -> None:
    stamp = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    compute = Counter(value={"ts": stamp, "values": (1.5, 2)})
    key = cache_key(ns())
    miss = await cache.get_or_compute(key, 30, compute)
    hit = await cache.get_or_compute(key, 30, compute)
    assert miss == hit == {"ts": "2026-03-04T05:06:07Z", "values": [1.5, 2]}


async def test_entries_expire_after_their_ttl(cache: MemoryCache | RedisCache) -> None:
    compute = Counter()
    key = cache_key(ns())
    await cache.get_or_compute(key, 0.3, compute)
    await cache.get_or_compute(key, 0.3, compute)
    assert compute.calls == 1
    await asyncio.sleep(0.45)
    assert await cache.get(key) is None
    assert await cache.get_or_compute(key, 0.3, compute) == {"call": 2}


async def test_concurrent_callers_share_one_computation(cache: MemoryCache | RedisCache) -> None:
    compute = Counter(delay_s=0.2)
    key = cache_key(ns(), loop_id="FIC101")
    results = await asyncio.gather(*(cache.get_or_compute(key, 30, compute) for _ in range(50)))
    assert compute.calls == 1
    assert all(result == {"call": 1} for result in results)
    assert cache.stats.coalesced >= 49


async def test_errors_reach_every_waiter_and_are_not_cached(
    cache: MemoryCache | RedisCache,
) -> None:
    calls = 0

    async def failing() -> Any:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        raise RuntimeError("backend down")

    key = cache_key(ns())
    outcomes = await asyncio.gather(
        *(cache.get_or_compute(key, 30, failing) for _ in range(5)), return_exceptions=True
    )
    assert calls == 1
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert await cache.get_or_compute(key, 30, Counter(value={"ok": True})) == {"ok": True}


async def test_a_cancelled_caller_does_not_cancel_the_others(
    cache: MemoryCache | RedisCache,
) -> None:
    compute = Counter(delay_s=0.2)
    key = cache_key(ns())
    impatient = asyncio.create_task(cache.get_or_compute(key, 30, compute))
    patient = asyncio.create_task(cache.get_or_compute(key, 30, compute))
    await asyncio.sleep(0.05)
    impatient.cancel()
    assert await patient == {"call": 1}
    assert compute.calls == 1


async def test_invalidating_a_loop_tag_drops_only_that_loops_entries(
    cache: MemoryCache | RedisCache,
) -> None:
    space = ns()
    loop_a, loop_b = Counter(), Counter()
    key_a1 = cache_key(f"{space}:raw", loop_id="A")
    key_a2 = cache_key(f"{space}:kpis", loop_id="A")
    key_b = cache_key(f"{space}:raw", loop_id="B")
    await cache.get_or_compute(key_a1, 60, loop_a, tags=[loop_tag("A")])
    await cache.get_or_compute(key_a2, 60, loop_a, tags=[loop_tag("A"), "fleet"])
    await cache.get_or_compute(key_b, 60, loop_b, tags=[loop_tag("B")])
    assert loop_a.calls == 2

    assert await cache.invalidate_tags(loop_tag("A")) == 2
    assert await cache.get(key_a1) is None
    assert await cache.get(key_a2) is None
    assert await cache.get(key_b) is not None
    await cache.get_or_compute(key_a1, 60, loop_a, tags=[loop_tag("A")])
    assert loop_a.calls == 3
    assert await cache.invalidate_tags(loop_tag("unknown")) == 0


async def test_invalidating_a_prefix_drops_a_namespace(cache: MemoryCache | RedisCache) -> None:
    space = ns()
    raw = [cache_key(f"{space}:raw", loop_id=f"L{i}") for i in range(3)]
    kpis = cache_key(f"{space}:kpis", loop_id="L0")
    for key in [*raw, kpis]:
        await cache.set(key, b"x", 60)
    assert await cache.invalidate_prefix(f"{space}:raw:") == 3
    assert all([await cache.get(key) is None for key in raw])
    assert await cache.get(kpis) == b"x"


async def test_a_result_computed_across_an_invalidation_is_not_stored(
    cache: MemoryCache | RedisCache,
) -> None:
    started = asyncio.Event()

    async def slow() -> bytes:
        started.set()
        await asyncio.sleep(0.15)
        return b"computed from data before the change"

    key = cache_key(ns(), loop_id="A")
    task = asyncio.create_task(cache.get_or_compute_bytes(key, 60, slow, tags=[loop_tag("A")]))
    await started.wait()
    await cache.invalidate_tags(loop_tag("A"))  # the loop's configuration changed meanwhile
    assert await task == b"computed from data before the change"  # the caller still gets it
    assert await cache.get(key) is None  # but the next caller recomputes


# --------------------------------------------------------------------------- memory only


async def test_memory_cache_is_bounded_least_recently_used_first() -> None:
    cache = MemoryCache(max_entries=3)
    for name in "abc":
        await cache.set(name, name.encode(), 60)
    assert await cache.get("a") == b"a"  # a is now the most recently used
    await cache.set("d", b"d", 60)
    assert await cache.get("b") is None
    assert [await cache.get(k) for k in "acd"] == [b"a", b"c", b"d"]


# --------------------------------------------------------------------------- Redis only


async def test_two_processes_share_one_computation_through_the_redis_lock(
    redis_server: RedisServer,
) -> None:
    # Two RedisCache instances with their own connections behave like two gateway processes:
    # in-process single-flight cannot help here, only the Redis lock can.
    first, second = RedisCache.from_url(redis_server.url), RedisCache.from_url(redis_server.url)
    compute = Counter(delay_s=0.3)
    key = cache_key(ns())
    try:
        results = await asyncio.gather(
            *(c.get_or_compute(key, 30, compute) for c in (first, second) for _ in range(5))
        )
    finally:
        await first.aclose()
        await second.aclose()
    assert compute.calls == 1
    assert all(result == {"call": 1} for result in results)


async def test_redis_entries_are_visible_to_other_processes(redis_server: RedisServer) -> None:
    writer, reader = RedisCache.from_url(redis_server.url), RedisCache.from_url(redis_server.url)
    key = cache_key(ns(), loop_id="FIC101")
    try:
        await writer.get_or_compute(key, 30, Counter(value={"v": 1}))
        assert await reader.get_or_compute(key, 30, Counter(value={"v": 2})) == {"v": 1}
        await reader.invalidate_tags()  # no tags: nothing happens
        assert await writer.invalidate_prefix(key) == 1
        assert await reader.get(key) is None
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_redis_stopped_mid_test_answers_uncached_then_recovers(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisCache.from_url(redis_server.url, retry_interval_s=0.3)
    compute = Counter()
    key = cache_key(ns(), loop_id="FIC101")
    try:
        assert await cache.get_or_compute(key, 60, compute) == {"call": 1}
        assert await cache.get_or_compute(key, 60, compute) == {"call": 1}

        redis_server.stop()
        caplog.set_level(logging.WARNING, logger="clpm_shared.cache")
        began = time.monotonic()
        answers = [await cache.get_or_compute(key, 60, compute) for _ in range(5)]
        elapsed = time.monotonic() - began
        assert answers == [{"call": n} for n in range(2, 7)]  # computed every time: uncached
        assert elapsed < 2.0  # fails fast instead of waiting on timeouts
        assert cache.stats.backend_errors >= 1
        assert sum("redis unavailable" in r.getMessage() for r in caplog.records) == 1
        # tag invalidation while down does not raise either
        assert await cache.invalidate_tags(loop_tag("FIC101")) == 0

        redis_server.start()
        await asyncio.sleep(0.35)  # past retry_interval_s
        first = await cache.get_or_compute(key, 60, compute)
        second = await cache.get_or_compute(key, 60, compute)
        assert first == second == {"call": 7}  # stored in Redis again, then served from it
        assert cache.available
    finally:
        if not redis_server.running:
            redis_server.start()
        await cache.aclose()


async def test_cache_backend_setting_selects_the_backend(redis_server: RedisServer) -> None:
    memory_settings = load_settings(cache={"cache_backend": CacheBackend.MEMORY}).cache
    redis_settings = load_settings(
        cache={"cache_backend": CacheBackend.REDIS, "redis_url": redis_server.url}
    ).cache
    assert isinstance(create_cache(memory_settings), MemoryCache)
    async with open_cache(redis_settings) as cache:
        assert isinstance(cache, RedisCache)
        key = cache_key(ns())
        await cache.set(key, b"v", 5)
        assert await cache.get(key) == b"v"
