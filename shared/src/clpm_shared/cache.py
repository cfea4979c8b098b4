"""Response cache: Redis or in-process TTL store, with single-flight and tag/prefix invalidation.

Typical use in a FastAPI service (the gateway)::

    from clpm_shared.cache import cache_key, loop_tag, open_cache, ttl_for_range

    # lifespan
    async with open_cache(settings.cache) as cache:      # CACHE_BACKEND=redis|memory
        app.state.cache = cache
        yield

    # endpoint
    key = cache_key("data:aggregated", loop_id=loop_id, start=start, end=end, interval="1h")
    ttl = ttl_for_range(settings.cache, end)           # closed past range: long; else short
    body = await cache.get_or_compute(key, ttl, lambda: load_aggregates(...),
                                      tags=[loop_tag(loop_id)])

    # after a loop or its configuration changed
    await cache.invalidate_tags(loop_tag(loop_id))

What it guarantees:

* **Keys from all normalised parameters** (:func:`cache_key`): sorted names; ``None`` dropped;
  aware datetimes in UTC (naive ones refused); ``60.0`` == ``60``; enums by value; sets sorted,
  lists in order (sort them first if order does not matter); long keys hashed.
* **TTL per use**: every write names its TTL (``CACHE_TTL_*`` settings, :func:`ttl_for_range`).
* **Single-flight**: concurrent ``get_or_compute`` calls for one key in one process run
  ``compute`` once and share its result (or its exception; errors are never cached). With Redis
  a short lock key (``SET NX PX``) extends this across processes: the other processes wait for
  the value (up to ``lock_ttl_s``) instead of computing it too.
* **Invalidation** by tag (:meth:`Cache.invalidate_tags`, atomic in Redis through a Lua script)
  and by key prefix (:meth:`Cache.invalidate_prefix`, e.g. a whole namespace). A computation
  that was running when its tag was invalidated does not store its (possibly stale) result in
  this process; across processes that window remains, bounded by the entry's TTL.
* **Stale-while-revalidate** (``stale_grace_s``, ``CACHE_STALE_GRACE_S``): an entry is fresh
  for its TTL, then stale for the grace. A stale hit returns at once and starts one background
  recomputation for the key (single-flight: never two per key in a process; with Redis the lock
  key keeps other processes from computing it too). A failed background recomputation is logged
  and the stale value is served until the grace ends; past it callers wait as on a miss.
  Invalidation deletes stale entries too: nothing stale is served after it. At most
  :data:`MAX_BACKGROUND_REFRESHES` background recomputations run at once per cache; the others
  queue (single-flight still holds: a queued key is not recomputed twice).
* **Jittered lifetimes** (``ttl_jitter``, ±10 % by default from :func:`create_cache`): each write
  lives ``ttl_s`` times a random factor in ``[1 - jitter, 1 + jitter]``, so keys filled
  together do not expire together.
* **Redis down never fails a request**: every Redis error is logged (once when it goes down,
  once when it comes back), the value is computed and returned uncached, and Redis is retried
  after ``retry_interval_s``; single-flight still holds within the process.

``get_or_compute`` stores JSON (anything pydantic can serialise: dicts, lists, datetimes,
models...) and returns the decoded JSON, the same on a hit and on a miss.
``get_or_compute_bytes`` stores bytes as they are: the fast path for pre-rendered responses.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import random
import struct
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any, Protocol
from urllib.parse import quote

import pydantic_core
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from clpm_shared.config import CacheBackend, CacheSettings

logger = logging.getLogger(__name__)

MAX_KEY_LENGTH = 200
_KEY_PREFIX = "clpm:cache:"
_TAG_PREFIX = "clpm:cache-tag:"
_LOCK_PREFIX = "clpm:cache-lock:"
TTL_JITTER = 0.1
"""Default spread of lifetimes from :func:`create_cache`: ±10 % of the TTL."""
MAX_BACKGROUND_REFRESHES = 16
"""Stale-while-revalidate recomputations running at once per cache (the rest queue, their
stale values being served meanwhile): keys that turn stale together do not take every
database connection of the pool at once."""
# A Redis value starts with this marker and the wall-clock time (big-endian double, seconds)
# until which it is fresh; JSON never starts with a NUL byte. Values without it count as fresh.
_ENVELOPE_MAGIC = b"\x00clpm-swr1"
_ENVELOPE = struct.Struct("!d")
_HEADER_LENGTH = len(_ENVELOPE_MAGIC) + _ENVELOPE.size

# Deletes every key listed in a tag set, then the set; atomic, so a key tagged concurrently is
# either deleted now or tagged after (and caught by the next invalidation).
_INVALIDATE_TAG_LUA = """
local members = redis.call('SMEMBERS', KEYS[1])
for i = 1, #members, 500 do
  redis.call('UNLINK', unpack(members, i, math.min(i + 499, #members)))
end
redis.call('UNLINK', KEYS[1])
return #members
"""
_RELEASE_LOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# --------------------------------------------------------------------------- keys and TTLs


def _normalise(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Enum):
        return _normalise(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("cache key datetimes must be timezone-aware")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _normalise(value.total_seconds())
    if isinstance(value, str):
        return quote(value, safe="")
    if isinstance(value, set | frozenset):
        return ",".join(sorted(str(_normalise(item)) for item in value))
    if isinstance(value, list | tuple):
        return ",".join(str(_normalise(item)) for item in value)
    if isinstance(value, Mapping):
        return quote(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str), safe="")
    raise TypeError(f"cannot build a cache key from {type(value).__name__}")


def cache_key(namespace: str, /, **params: Any) -> str:
    """``namespace:name=value&...`` from every parameter, normalised (see module docstring).

    Keys longer than :data:`MAX_KEY_LENGTH` keep the namespace and hash the parameters.
    """
    if not namespace:
        raise ValueError("cache key namespace must not be empty")
    parts = []
    for name in sorted(params):
        normalised = _normalise(params[name])
        if normalised is not None:
            parts.append(f"{name}={normalised}")
    key = f"{namespace}:{'&'.join(parts)}"
    if len(key) > MAX_KEY_LENGTH:
        digest = hashlib.sha256(key.encode()).hexdigest()
        key = f"{namespace}:#{digest}"
    return key


def loop_tag(loop_id: str) -> str:
    """The tag of every cache entry derived from one loop's data or configuration."""
    return f"loop:{loop_id}"


def ttl_for_range(
    settings: CacheSettings,
    end: datetime,
    *,
    now: datetime | None = None,
    settle_s: float = 300.0,
) -> float:
    """TTL for a time-range query: long once the range is closed and settled, else short.

    A range that ended more than ``settle_s`` ago (late points and aggregation have landed)
    gets ``CACHE_TTL_HISTORICAL_S``; a range reaching into the recent past or the future gets
    ``CACHE_TTL_RECENT_S``. Latest-value queries use ``CACHE_TTL_REALTIME_S`` directly.
    """
    current = now or datetime.now(UTC)
    if end <= current - timedelta(seconds=settle_s):
        return settings.cache_ttl_historical_s
    return settings.cache_ttl_recent_s


# --------------------------------------------------------------------------- protocol


@dataclass
class CacheStats:
    """Counters for tests and metrics."""

    hits: int = 0
    misses: int = 0
    computations: int = 0
    coalesced: int = 0  # callers that shared another caller's computation
    stale_hits: int = 0  # hits answered with a stale value (a refresh was due)
    refresh_errors: int = 0  # background refreshes that failed (the stale value stays)
    backend_errors: int = 0


class Cache(Protocol):
    """What the services use; both backends implement it."""

    stats: CacheStats

    async def get(self, key: str) -> bytes | None:
        """The fresh cached bytes; ``None`` on a miss, a stale entry or an unavailable backend."""
        ...

    async def set(
        self, key: str, value: bytes, ttl_s: float, *, tags: Iterable[str] = ()
    ) -> None: ...

    async def get_or_compute(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[Any]],
        *,
        tags: Iterable[str] = (),
    ) -> Any:
        """The cached JSON value, or ``await compute()`` stored for ``ttl_s`` (single-flight)."""
        ...

    async def get_or_compute_bytes(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[bytes]],
        *,
        tags: Iterable[str] = (),
    ) -> bytes: ...

    async def get_fresh_or_compute_bytes(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[bytes]],
        *,
        tags: Iterable[str] = (),
    ) -> bytes:
        """The fresh cached bytes, or a recomputation's when the entry is stale or missing."""
        ...

    async def invalidate_tags(self, *tags: str) -> int:
        """Drop every entry stored with any of ``tags``; returns how many were dropped."""
        ...

    async def invalidate_prefix(self, prefix: str) -> int:
        """Drop every entry whose key starts with ``prefix``."""
        ...

    async def aclose(self) -> None: ...


# --------------------------------------------------------------------------- shared logic


class _SingleFlightCache:
    """get_or_compute on top of a backend's get/set, with per-key in-process single-flight."""

    def __init__(
        self,
        *,
        stale_grace_s: float = 0.0,
        ttl_jitter: float = 0.0,
        max_refreshes: int = MAX_BACKGROUND_REFRESHES,
    ) -> None:
        if stale_grace_s < 0:
            raise ValueError("stale_grace_s must not be negative")
        if not 0 <= ttl_jitter < 1:
            raise ValueError("ttl_jitter must be in [0, 1)")
        if max_refreshes < 1:
            raise ValueError("max_refreshes must be at least 1")
        self.stats = CacheStats()
        self.stale_grace_s = stale_grace_s
        self.ttl_jitter = ttl_jitter
        # background refreshes computing at once; the others wait their turn (stale is served)
        self._refresh_slots = asyncio.Semaphore(max_refreshes)
        self._inflight: dict[str, asyncio.Task[bytes]] = {}
        self._refreshes: set[asyncio.Task[bytes]] = set()  # background ones, ended on close
        self._epoch = 0  # bumped by every invalidation: in-flight results are then not stored

    def _fresh_lifetime(self, ttl_s: float) -> float:
        """``ttl_s`` spread by ±``ttl_jitter`` (uniform), so keys filled together expire apart."""
        if not self.ttl_jitter:
            return ttl_s
        return ttl_s * random.uniform(1.0 - self.ttl_jitter, 1.0 + self.ttl_jitter)  # noqa: S311

    async def lookup(self, key: str) -> tuple[bytes, bool] | None:
        """``(value, fresh)`` for a fresh or stale entry, ``None`` on a miss."""
        raise NotImplementedError

    async def get(self, key: str) -> bytes | None:
        found = await self.lookup(key)
        if found is None or not found[1]:
            return None
        return found[0]

    async def set(self, key: str, value: bytes, ttl_s: float, *, tags: Iterable[str] = ()) -> None:
        raise NotImplementedError

    @asynccontextmanager
    async def _leadership(self, key: str, ttl_s: float) -> AsyncIterator[bytes | None]:
        """Across processes: yields a value another process stored meanwhile, else None."""
        yield None

    async def get_or_compute(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[Any]],
        *,
        tags: Iterable[str] = (),
    ) -> Any:
        async def compute_json() -> bytes:
            return pydantic_core.to_json(await compute())

        return json.loads(await self.get_or_compute_bytes(key, ttl_s, compute_json, tags=tags))

    async def get_or_compute_bytes(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[bytes]],
        *,
        tags: Iterable[str] = (),
    ) -> bytes:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        tag_tuple = tuple(tags)
        found = await self.lookup(key)
        if found is not None:
            self.stats.hits += 1
            cached, fresh = found
            if not fresh:
                self.stats.stale_hits += 1
                self._refresh_in_background(key, ttl_s, compute, tag_tuple)
            return cached
        return await self._computed(key, ttl_s, compute, tag_tuple)

    async def get_fresh_or_compute_bytes(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[bytes]],
        *,
        tags: Iterable[str] = (),
    ) -> bytes:
        """Like :meth:`get_or_compute_bytes`, but a stale entry is not served: it is recomputed
        (single-flight, joining a background refresh already running) and the new value
        returned. For renewing a copy kept elsewhere, where a stale value would live on."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        found = await self.lookup(key)
        if found is not None and found[1]:
            self.stats.hits += 1
            return found[0]
        return await self._computed(key, ttl_s, compute, tuple(tags))

    async def _computed(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[bytes]],
        tags: tuple[str, ...],
    ) -> bytes:
        """The result of the computation running for ``key``, or of a new one (a miss)."""
        task = self._inflight.get(key)
        if task is None:
            self.stats.misses += 1
            task = asyncio.create_task(self._fill(key, ttl_s, compute, tags))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        else:
            self.stats.coalesced += 1
        # shield: a caller that goes away (client disconnect) does not cancel the others' result
        return await asyncio.shield(task)

    def _refresh_in_background(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[bytes]],
        tags: tuple[str, ...],
    ) -> None:
        """Start one recomputation of a stale ``key`` unless one is already running."""
        if key in self._inflight:
            return
        self.stats.misses += 1
        task = asyncio.create_task(self._refresh(key, ttl_s, compute, tags))
        self._inflight[key] = task
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)
        task.add_done_callback(lambda done: self._forget(key, done, background=True))

    async def _refresh(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[bytes]],
        tags: tuple[str, ...],
    ) -> bytes:
        async with self._refresh_slots:
            return await self._fill(key, ttl_s, compute, tags)

    async def _end_refreshes(self) -> None:
        """Cancel background refreshes still running (on close: the backend goes away)."""
        running = list(self._refreshes)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _forget(self, key: str, task: asyncio.Task[bytes], *, background: bool = False) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if task.cancelled():
            return
        error = task.exception()  # retrieved: no "exception never retrieved" when nobody waits
        if background and error is not None:
            self.stats.refresh_errors += 1
            logger.warning(
                "cache refresh failed: serving the stale value until its grace ends",
                extra={"key": key, "error": f"{type(error).__name__}: {error}"},
            )

    async def _fill(
        self,
        key: str,
        ttl_s: float,
        compute: Callable[[], Awaitable[bytes]],
        tags: tuple[str, ...],
    ) -> bytes:
        epoch = self._epoch
        async with self._leadership(key, ttl_s) as stored_elsewhere:
            if stored_elsewhere is not None:
                self.stats.coalesced += 1
                return stored_elsewhere
            self.stats.computations += 1
            value = await compute()
            if not isinstance(value, bytes | bytearray):
                raise TypeError("compute() for get_or_compute_bytes must return bytes")
            value = bytes(value)
            if self._epoch == epoch:
                await self.set(key, value, ttl_s, tags=tags)
            return value

    def _invalidated(self) -> None:
        self._epoch += 1
        # Computations started before the invalidation keep their current waiters but take no
        # new ones: a caller arriving now computes from the changed data.
        self._inflight.clear()


# --------------------------------------------------------------------------- memory


@dataclass
class _Entry:
    value: bytes
    fresh_until: float
    expires_at: float  # fresh_until + stale grace
    tags: tuple[str, ...]


class MemoryCache(_SingleFlightCache):
    """In-process TTL cache (LRU-bounded); for the embedded run and single-process services."""

    def __init__(
        self,
        max_entries: int = 10_000,
        *,
        stale_grace_s: float = 0.0,
        ttl_jitter: float = 0.0,
        max_refreshes: int = MAX_BACKGROUND_REFRESHES,
    ) -> None:
        super().__init__(
            stale_grace_s=stale_grace_s, ttl_jitter=ttl_jitter, max_refreshes=max_refreshes
        )
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._tags: dict[str, set[str]] = {}
        self._max_entries = max_entries

    async def lookup(self, key: str) -> tuple[bytes, bool] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = time.monotonic()
        if entry.expires_at <= now:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value, entry.fresh_until > now

    def peek(self, key: str) -> bytes | None:
        """The fresh value under ``key``, synchronously (``get`` without a coroutine).

        ``None`` on a miss and on a stale entry, which stays for ``get_or_compute`` to serve
        and refresh. Counts no statistics, like ``get``.
        """
        entry = self._entries.get(key)
        if entry is None or entry.fresh_until <= time.monotonic():
            return None
        self._entries.move_to_end(key)
        return entry.value

    def peek_fresh(self, key: str) -> tuple[bytes, float] | None:
        """:meth:`peek` with the seconds the value stays fresh: ``(value, fresh_for_s)``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        fresh_for_s = entry.fresh_until - time.monotonic()
        if fresh_for_s <= 0:
            return None
        self._entries.move_to_end(key)
        return entry.value, fresh_for_s

    def lifetime(self, key: str) -> tuple[float, float] | None:
        """Seconds until ``key`` turns stale and until it is gone, or ``None`` if absent."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = time.monotonic()
        return entry.fresh_until - now, entry.expires_at - now

    async def set(self, key: str, value: bytes, ttl_s: float, *, tags: Iterable[str] = ()) -> None:
        if key in self._entries:
            self._drop(key)
        fresh_until = time.monotonic() + self._fresh_lifetime(ttl_s)
        entry = _Entry(bytes(value), fresh_until, fresh_until + self.stale_grace_s, tuple(tags))
        self._entries[key] = entry
        for tag in entry.tags:
            self._tags.setdefault(tag, set()).add(key)
        if len(self._entries) > self._max_entries:
            self._evict()

    def _evict(self) -> None:
        now = time.monotonic()
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            self._drop(key)
        while len(self._entries) > self._max_entries:
            self._drop(next(iter(self._entries)))  # least recently used

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for tag in entry.tags:
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[tag]

    async def invalidate_tags(self, *tags: str) -> int:
        self._invalidated()
        doomed = {key for tag in tags for key in self._tags.get(tag, ())}
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def invalidate_prefix(self, prefix: str) -> int:
        self._invalidated()
        doomed = [key for key in self._entries if key.startswith(prefix)]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def aclose(self) -> None:
        await self._end_refreshes()
        self._entries.clear()
        self._tags.clear()


# --------------------------------------------------------------------------- Redis


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _unwrap(stored: bytes) -> tuple[bytes, bool]:
    """``(value, fresh)`` from a stored Redis value (see ``_ENVELOPE_MAGIC``)."""
    if not stored.startswith(_ENVELOPE_MAGIC):
        return stored, True
    (fresh_until,) = _ENVELOPE.unpack_from(stored, len(_ENVELOPE_MAGIC))
    return stored[_HEADER_LENGTH:], fresh_until > time.time()


def _glob_escape(text: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


def fail_fast_client(url: str) -> aioredis.Redis:
    """A Redis client on ``url`` with short timeouts and no client-side retries: a caller
    that can do without Redis learns within half a second that it is down."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


class RedisCache(_SingleFlightCache):
    """Redis-backed cache shared by every gateway process; degrades to uncached when down."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        retry_interval_s: float = 1.0,
        lock_ttl_s: float = 10.0,
        lock_poll_s: float = 0.02,
        stale_grace_s: float = 0.0,
        ttl_jitter: float = 0.0,
        max_refreshes: int = MAX_BACKGROUND_REFRESHES,
    ) -> None:
        super().__init__(
            stale_grace_s=stale_grace_s, ttl_jitter=ttl_jitter, max_refreshes=max_refreshes
        )
        self._client = client
        self._retry_interval_s = retry_interval_s
        self._lock_ttl_s = lock_ttl_s
        self._lock_poll_s = lock_poll_s
        self._down_until = 0.0
        self._down = False
        self._release_lock = client.register_script(_RELEASE_LOCK_LUA)
        self._invalidate_tag = client.register_script(_INVALIDATE_TAG_LUA)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisCache:
        """A cache on ``url`` with a :func:`fail_fast_client`."""
        return cls(fail_fast_client(url), **options)

    @property
    def available(self) -> bool:
        """False while Redis is considered down (between a failure and the next retry)."""
        return not self._down or time.monotonic() >= self._down_until

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.stats.backend_errors += 1
        self._down_until = time.monotonic() + self._retry_interval_s
        if not self._down:
            self._down = True
            logger.warning(
                "redis unavailable: serving uncached",
                extra={"operation": operation, "error": f"{type(exc).__name__}: {exc}"},
            )
        else:
            logger.debug("redis still unavailable", extra={"operation": operation})

    def _succeeded(self) -> None:
        if self._down:
            self._down = False
            logger.info("redis available again: caching resumed")

    async def lookup(self, key: str) -> tuple[bytes, bool] | None:
        if not self.available:
            return None
        try:
            value = await self._client.get(_KEY_PREFIX + key)
        except (RedisError, OSError) as exc:
            self._failed("get", exc)
            return None
        self._succeeded()
        return _unwrap(_as_bytes(value)) if value is not None else None

    async def set(self, key: str, value: bytes, ttl_s: float, *, tags: Iterable[str] = ()) -> None:
        if not self.available:
            return
        full_key = _KEY_PREFIX + key
        fresh_s = self._fresh_lifetime(ttl_s)
        lifetime_s = fresh_s + self.stale_grace_s
        tag_ttl = math.ceil(lifetime_s) + 1  # the tag outlives its stale entries too
        stored = _ENVELOPE_MAGIC + _ENVELOPE.pack(time.time() + fresh_s) + value
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.set(full_key, stored, px=max(1, round(lifetime_s * 1000)))
                for tag in tags:
                    pipe.sadd(_TAG_PREFIX + tag, full_key)
                    pipe.expire(_TAG_PREFIX + tag, tag_ttl, nx=True)
                    pipe.expire(_TAG_PREFIX + tag, tag_ttl, gt=True)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("set", exc)
            return
        self._succeeded()

    @asynccontextmanager
    async def _leadership(self, key: str, ttl_s: float) -> AsyncIterator[bytes | None]:
        """Take the per-key lock, or wait for the process that holds it to store the value."""
        if not self.available:
            yield None
            return
        lock_key = _LOCK_PREFIX + key
        token = f"{time.time_ns()}-{id(self)}"
        lock_ms = max(1, round(self._lock_ttl_s * 1000))
        try:
            acquired = bool(await self._client.set(lock_key, token, nx=True, px=lock_ms))
        except (RedisError, OSError) as exc:
            self._failed("lock", exc)
            acquired = None  # no Redis: compute without a cross-process lock
        if acquired is None:
            yield None
        elif acquired:
            try:
                yield None
            finally:
                try:
                    await self._release_lock(keys=[lock_key], args=[token])
                except (RedisError, OSError) as exc:
                    self._failed("unlock", exc)
        else:
            yield await self._wait_for_other_process(key, lock_key)

    async def _wait_for_other_process(self, key: str, lock_key: str) -> bytes | None:
        deadline = time.monotonic() + self._lock_ttl_s
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(self._lock_poll_s)
                value = await self._client.get(_KEY_PREFIX + key)
                if value is not None:
                    found, fresh = _unwrap(_as_bytes(value))
                    if fresh:  # a stale value is what the holder is replacing: keep waiting
                        return found
                if not await self._client.exists(lock_key):
                    return None  # the holder failed or its result was not stored: compute
        except (RedisError, OSError) as exc:
            self._failed("wait", exc)
        return None

    async def invalidate_tags(self, *tags: str) -> int:
        self._invalidated()
        dropped = 0
        try:
            for tag in tags:
                dropped += int(await self._invalidate_tag(keys=[_TAG_PREFIX + tag]))
        except (RedisError, OSError) as exc:
            self._failed("invalidate_tags", exc)
            logger.error("cache invalidation failed; entries expire by TTL", extra={"tags": tags})
        return dropped

    async def invalidate_prefix(self, prefix: str) -> int:
        self._invalidated()
        dropped = 0
        pattern = _glob_escape(_KEY_PREFIX + prefix) + "*"
        try:
            batch: list[bytes] = []
            async for found in self._client.scan_iter(match=pattern, count=500):
                batch.append(found)
                if len(batch) >= 500:
                    dropped += int(await self._client.unlink(*batch))
                    batch = []
            if batch:
                dropped += int(await self._client.unlink(*batch))
        except (RedisError, OSError) as exc:
            self._failed("invalidate_prefix", exc)
            logger.error(
                "cache invalidation failed; entries expire by TTL", extra={"prefix": prefix}
            )
        return dropped

    async def aclose(self) -> None:
        await self._end_refreshes()
        await self._client.aclose()


# --------------------------------------------------------------------------- factory


def create_cache(settings: CacheSettings) -> RedisCache | MemoryCache:
    """The backend that ``CACHE_BACKEND`` names (``redis`` uses ``REDIS_URL``)."""
    grace_s = settings.cache_stale_grace_s
    if settings.cache_backend is CacheBackend.MEMORY:
        return MemoryCache(stale_grace_s=grace_s, ttl_jitter=TTL_JITTER)
    return RedisCache.from_url(
        settings.redis_url.get_secret_value(), stale_grace_s=grace_s, ttl_jitter=TTL_JITTER
    )


@asynccontextmanager
async def open_cache(settings: CacheSettings) -> AsyncIterator[Cache]:
    """A cache for the lifetime of a service (closed on exit)."""
    cache = create_cache(settings)
    try:
        yield cache
    finally:
        await cache.aclose()


__all__ = [
    "MAX_BACKGROUND_REFRESHES",
    "Cache",
    "CacheStats",
    "MemoryCache",
    "RedisCache",
    "cache_key",
    "create_cache",
    "loop_tag",
    "open_cache",
    "ttl_for_range",
]
