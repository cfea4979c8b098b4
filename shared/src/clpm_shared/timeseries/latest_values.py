"""InfluxQL store that keeps each loop's latest values in Redis as it writes them.

influxd answers "the newest PV, SP, OP and Mode of 1,000 loops" by opening a few cursors per
loop (~120 ms); a table of latest values kept at ingest answers it with one ``MGET``.

**Writing.** After influxd accepted a request, each loop's newest sample per field of that
request is merged into the loop's key by a Lua script (atomic per call): per field the newest
time wins (equal times: the later write, as influxd overwrites a field of the same series and
time), so a late older sample never overwrites a newer one, and a field missing from a sample
keeps its value and its own time. Every merge sets the key's TTL (``LATEST_VALUES_TTL_S``). A
key is only created by a sample newer than that TTL: an import of old history for a loop that
another program writes live into influxd does not shadow its live values. A request influxd
accepted only in part deletes its loops' keys (which samples were dropped is unknown).

**Reading.** ``latest_many`` reads all keys with one ``MGET``. A loop without a key (expired,
written by a program that does not keep this table, Redis down) is read from influxd
(:meth:`InfluxQLStore.latest_many`); a field its key does not know yet (the key was created by a
sample without it) is read from influxd too and then merged into the key (its value, or a
marker that the loop has none), so it is read from influxd once per key.

**Key** ``clpm:latest:<database>:<measurement>:<loop_id>``, value
``t_pv|pv|t_sp|sp|t_op|op|t_mode|mode``: times as 19-digit zero-padded epoch nanoseconds, ``''``
for "not known", ``'-'`` for "the loop has none"; values as written (``repr`` of the float).

Redis errors never fail a read or a write: reads fall back to influxd (logged once until Redis
answers again); loops whose merge failed are read from influxd by this process and deleted
from Redis at the next successful merge (a reader in another process sees their previous values
until the writer's next merge or the TTL).
Only correct while every writer of a loop keeps the table (or none does); not for Redis Cluster
(one script call and one ``MGET`` take keys of many hash slots).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from clpm_shared.cache import fail_fast_client
from clpm_shared.config import CacheSettings, InfluxSettings
from clpm_shared.timeseries.base import (
    FIELDS,
    MODE_TAG,
    LatestPoint,
    LatestValue,
    RawSeries,
    from_ns,
    normalise_mode,
    to_ns,
    validate_loop_id,
)
from clpm_shared.timeseries.influxql import InfluxQLStore
from clpm_shared.timeseries.points import SampleRow
from clpm_shared.timeseries.raw_columns import requested_columns

logger = logging.getLogger(__name__)

NAMES: tuple[str, ...] = (*FIELDS, MODE_TAG)
"""The values kept per loop, in the order of the stored text."""
UNKNOWN = ""
"""Time of a value the key does not know (read it from influxd)."""
NONE = "-"
"""Time of a value the loop has none of (as influxd said)."""
LOOPS_PER_CALL = 1000
"""Loops per script call or ``MGET`` (one pipeline): Redis runs each call alone."""

# KEYS: one key per loop. ARGV[1]: TTL in ms ('0': keep the key's); then one text per key:
# 'c|' if the key may be created (else 'k|'), then time|value of PV, SP, OP and Mode as stored
# ('' time: not in the sample). Times are 19-digit strings (compared as two numbers: Lua
# numbers are doubles) or '-' (none). One text per key, not nine arguments: the client encodes
# each argument on its own (measured: half the client's cost of a merge).
MERGE_LUA = """
local function split(text, count)
  local parts, start = {}, 1
  for i = 1, count do
    local stop = string.find(text, '|', start, true) or (#text + 1)
    parts[i] = string.sub(text, start, stop - 1)
    start = stop + 1
  end
  return parts
end
local function newer_or_same(t, old)
  if old == '' or old == '-' then return true end
  if t == '-' then return false end
  local a, b = tonumber(string.sub(t, 1, 10)), tonumber(string.sub(old, 1, 10))
  if a ~= b then return a > b end
  return tonumber(string.sub(t, 11)) >= tonumber(string.sub(old, 11))
end
local written = 0
for k = 1, #KEYS do
  local new = split(ARGV[k + 1], 9)
  local old = redis.call('GET', KEYS[k])
  local parts = nil
  if old then
    parts = split(old, 8)
  elseif new[1] == 'c' then
    parts = {'', '', '', '', '', '', '', ''}
  end
  if parts then
    for i = 1, 7, 2 do
      local t = new[i + 1]
      if t ~= '' and newer_or_same(t, parts[i]) then
        parts[i] = t
        parts[i + 1] = new[i + 2]
      end
    end
    if ARGV[1] == '0' then
      redis.call('SET', KEYS[k], table.concat(parts, '|'), 'KEEPTTL')
    else
      redis.call('SET', KEYS[k], table.concat(parts, '|'), 'PX', ARGV[1])
    end
    written = written + 1
  end
end
return written
"""


def time_text(t_ns: int) -> str:
    """Epoch nanoseconds as the 19-digit text the script compares."""
    return f"{t_ns:019d}"


@dataclass
class NewestValues:
    """A loop's newest value of each field in one request: name -> (time text, value text)."""

    values: dict[str, tuple[str, str]]
    newest_ns: int

    def offer(self, name: str, t_ns: int, value: str) -> None:
        held = self.values.get(name)
        if held is None or t_ns >= int(held[0]):
            self.values[name] = (time_text(t_ns), value)
        self.newest_ns = max(self.newest_ns, t_ns)


def newest_of_rows(rows: Iterable[SampleRow]) -> dict[str, NewestValues]:
    """Each loop's newest value per field among ``rows`` (later rows win ties, as in influxd).

    Samples before 1970 are left out (the key would not know their field: read from influxd).
    """
    found: dict[str, NewestValues] = {}
    for row in rows:
        t_ns = row.t_ns
        if t_ns < 0:
            continue
        newest = found.get(row.loop_id)
        if newest is None:  # the first row of a loop (one per loop and tick when streaming)
            text = f"{t_ns:019d}"
            values: dict[str, tuple[str, str]] = {}
            if row.pv is not None:
                values["PV"] = (text, repr(row.pv))
            if row.sp is not None:
                values["SP"] = (text, repr(row.sp))
            if row.op is not None:
                values["OP"] = (text, repr(row.op))
            if row.mode is not None:
                values[MODE_TAG] = (text, row.mode)
            found[row.loop_id] = NewestValues(values, t_ns)
            continue
        for name, value in (("PV", row.pv), ("SP", row.sp), ("OP", row.op)):
            if value is not None:
                newest.offer(name, t_ns, repr(value))
        if row.mode is not None:
            newest.offer(MODE_TAG, t_ns, row.mode)
    return found


def _last_index(t_ns: np.ndarray, mask: np.ndarray) -> int | None:
    """Index of the newest sample where ``mask`` holds (the last one of equal times)."""
    if not mask.any():
        return None
    masked = np.where(mask, t_ns, np.iinfo(np.int64).min)
    return int(masked.size - 1 - np.argmax(masked[::-1]))


def _newest_mode(
    t_ns: np.ndarray, modes: np.ndarray, written: np.ndarray
) -> tuple[int, str] | None:
    """Time and mode of the newest written sample with a valid mode (usually the newest)."""
    newest = _last_index(t_ns, written)
    if newest is None:
        return None
    mode = normalise_mode(modes[newest])
    if mode is not None:
        return int(t_ns[newest]), mode
    candidates = np.flatnonzero(written)
    for index in candidates[np.argsort(t_ns[candidates], kind="stable")[::-1]]:
        mode = normalise_mode(modes[index])
        if mode is not None:
            return int(t_ns[index]), mode
    return None


def newest_of_series(blocks: Iterable[RawSeries]) -> dict[str, NewestValues]:
    """Each loop's newest value per field among columnar ``blocks`` (NaN: field missing)."""
    found: dict[str, NewestValues] = {}
    for block in blocks:
        if not len(block):
            continue
        t_ns = np.asarray(block.t_ns, dtype=np.int64)
        columns = [np.asarray(c, dtype=np.float64) for c in (block.pv, block.sp, block.op)]
        finite = [np.isfinite(column) & (t_ns >= 0) for column in columns]
        for name, column, mask in zip(FIELDS, columns, finite, strict=True):
            index = _last_index(t_ns, mask)
            if index is not None:
                newest = found.setdefault(block.loop_id, NewestValues({}, int(t_ns[index])))
                newest.offer(name, int(t_ns[index]), repr(float(column[index])))
        written = finite[0] | finite[1] | finite[2]
        if block.loop_id not in found:
            continue
        newest_mode = _newest_mode(t_ns, block.mode, written)
        if newest_mode is not None:
            found[block.loop_id].offer(MODE_TAG, *newest_mode)
    return found


_NOT_IN_SAMPLE = (UNKNOWN, "")


def merge_argument(newest: NewestValues, may_create: bool) -> str:
    """The script's text of one loop: ``c|`` or ``k|``, then time|value of each name."""
    values = newest.values
    return "|".join(
        (
            "c" if may_create else "k",
            *values.get("PV", _NOT_IN_SAMPLE),
            *values.get("SP", _NOT_IN_SAMPLE),
            *values.get("OP", _NOT_IN_SAMPLE),
            *values.get(MODE_TAG, _NOT_IN_SAMPLE),
        )
    )


class LatestValuesStore(InfluxQLStore):
    """:class:`InfluxQLStore` whose writes keep each loop's latest values in Redis, and whose
    ``latest``/``latest_many`` read them from there (influxd for what Redis lacks)."""

    def __init__(
        self,
        settings: InfluxSettings,
        cache: CacheSettings,
        *,
        redis_client: aioredis.Redis | None = None,
        retry_interval_s: float = 1.0,
        **options: object,
    ) -> None:
        super().__init__(settings, **options)  # type: ignore[arg-type]
        self.ttl_s = cache.latest_values_ttl_s
        self.key_prefix = f"clpm:latest:{self.database}:{self.measurement}:"
        self.redis = redis_client or fail_fast_client(cache.redis_url.get_secret_value())
        self._merge = self.redis.register_script(MERGE_LUA)
        self._retry_interval_s = retry_interval_s
        self._down_until = 0.0
        self._down = False
        self._unmerged: set[str] = set()
        """Loops whose newest samples reached influxd but not Redis: deleted at the next merge."""

    def key(self, loop_id: str) -> str:
        return self.key_prefix + loop_id

    # ------------------------------------------------------------------ Redis state

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        self._down_until = time.monotonic() + self._retry_interval_s
        if not self._down:
            self._down = True
            logger.warning(
                "redis unavailable: latest values are read from influxdb",
                extra={"error": str(exc)[:300]},
            )

    def _answered(self) -> None:
        if self._down:
            self._down = False
            logger.info("redis available again: latest values are read from redis")

    # ------------------------------------------------------------------ writing

    async def _write_rows(self, rows: Sequence[SampleRow]) -> int:
        accepted = await super()._write_rows(rows)
        await self._after_write(accepted, len(rows), lambda: newest_of_rows(rows))
        return accepted

    async def _write_encoded(self, blocks: Sequence[RawSeries], body: bytes, count: int) -> int:
        accepted = await super()._write_encoded(blocks, body, count)
        await self._after_write(accepted, count, lambda: newest_of_series(blocks))
        return accepted

    async def _after_write(
        self, accepted: int, count: int, newest: Callable[[], dict[str, NewestValues]]
    ) -> None:
        if accepted == count:
            await self.merge(newest())
        elif accepted:  # which samples influxd dropped is unknown: forget these loops
            await self.forget(newest())

    async def merge(self, found: Mapping[str, NewestValues], *, written: bool = True) -> None:
        """Merge each loop's newest values into its key; a Redis error is logged and the
        loops remembered.

        ``written``: the values were just written (the key's TTL starts again; a key is created
        by a sample newer than the TTL); else they were read from influxd (only an existing key
        takes them, its TTL kept).
        """
        if not found and not self._unmerged:
            return
        if not self._available():
            self._unmerged.update(found)
            return
        ttl_ms = max(1, round(self.ttl_s * 1000))
        recent_ns = time.time_ns() - ttl_ms * 1_000_000 if written else None
        loops = list(found)
        stale = list(self._unmerged)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for offset in range(0, len(stale), LOOPS_PER_CALL):
                    pipe.unlink(*(self.key(i) for i in stale[offset : offset + LOOPS_PER_CALL]))
                for offset in range(0, len(loops), LOOPS_PER_CALL):
                    batch = loops[offset : offset + LOOPS_PER_CALL]
                    arguments: list[str | int] = [ttl_ms if written else 0]
                    for loop_id in batch:
                        values = found[loop_id]
                        creates = recent_ns is not None and values.newest_ns >= recent_ns
                        arguments.append(merge_argument(values, creates))
                    await self._merge(
                        keys=[self.key(i) for i in batch], args=arguments, client=pipe
                    )
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._unmerged.update(found)
            self._failed(exc)
            return
        self._unmerged.difference_update(stale)
        self._answered()

    async def forget(self, loop_ids: Iterable[str]) -> None:
        """Delete these loops' keys (their next reads go to influxd)."""
        loops = list(loop_ids)
        if not loops:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for offset in range(0, len(loops), LOOPS_PER_CALL):
                    pipe.unlink(*(self.key(i) for i in loops[offset : offset + LOOPS_PER_CALL]))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._unmerged.update(loops)
            self._failed(exc)

    # ------------------------------------------------------------------ reading

    async def cached(self, loop_ids: Sequence[str]) -> dict[str, list[str]] | None:
        """The stored parts of each loop's key (loops without a key, or whose last merge failed,
        left out); None when Redis cannot be asked."""
        if not self._available():
            return None
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for offset in range(0, len(loop_ids), LOOPS_PER_CALL):
                    batch = loop_ids[offset : offset + LOOPS_PER_CALL]
                    pipe.mget([self.key(i) for i in batch])
                answers = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        self._answered()
        found: dict[str, list[str]] = {}
        values = (value for answer in answers for value in answer)
        for loop_id, value in zip(loop_ids, values, strict=True):
            if value is not None and loop_id not in self._unmerged:
                parts = value.decode().split("|")
                if len(parts) == 2 * len(NAMES):
                    found[loop_id] = parts
        return found

    async def latest(self, loop_id: str, fields: Sequence[str] | None = None) -> LatestPoint | None:
        validate_loop_id(loop_id)
        chosen = requested_columns(fields)
        entry = (await self.cached([loop_id]) or {}).get(loop_id)
        if entry is None or any(entry[2 * NAMES.index(name)] == UNKNOWN for name in chosen):
            return await super().latest(loop_id, fields)
        known = _decode(entry)
        values = {name: known.get(name, LatestValue(None, None)) for name in chosen}
        if all(value.time is None for value in values.values()):
            return None
        return LatestPoint(loop_id, values)

    async def latest_many(self, loop_ids: Sequence[str]) -> dict[str, LatestPoint]:
        """:meth:`InfluxQLStore.latest_many` answered from Redis: one ``MGET``; loops without a
        key, and fields a key does not know, are read from influxd."""
        wanted = list(dict.fromkeys(validate_loop_id(i, "loop_ids") for i in loop_ids))
        if not wanted:
            return {}
        entries = await self.cached(wanted)
        if entries is None:
            return await super().latest_many(wanted)
        found: dict[str, dict[str, LatestValue]] = {}
        lacking: dict[str, list[str]] = {name: [] for name in NAMES}
        moments: dict[str, datetime] = {}
        for loop_id, entry in entries.items():
            found[loop_id] = _decode(entry, moments)
            for index, name in enumerate(NAMES):
                if entry[2 * index] == UNKNOWN:
                    lacking[name].append(loop_id)
        missing = [loop_id for loop_id in wanted if loop_id not in entries]
        from_influxd: dict[str, LatestPoint] = {}

        async def read_missing() -> None:
            if missing:
                from_influxd.update(await super(LatestValuesStore, self).latest_many(missing))

        async def read_lacking() -> None:
            if any(lacking.values()):
                await self._read_older_values(found, lacking)
                await self.merge(_learned(found, lacking), written=False)

        await asyncio.gather(read_missing(), read_lacking())
        empty = LatestValue(None, None)
        answer: dict[str, LatestPoint] = {}
        for loop_id in wanted:
            if loop_id in from_influxd:
                answer[loop_id] = from_influxd[loop_id]
            elif loop_id in found:
                values = {name: found[loop_id].get(name, empty) for name in NAMES}
                if any(value.time is not None for value in values.values()):
                    answer[loop_id] = LatestPoint(loop_id, values)
        return answer

    async def close(self) -> None:
        try:
            await self.redis.aclose()
        finally:
            await super().close()


def _decode(
    entry: Sequence[str], moments: dict[str, datetime] | None = None
) -> dict[str, LatestValue]:
    """The values a key holds (fields not known or without a value left out); ``moments``
    remembers each distinct time text's datetime (the loops of one tick share their times)."""
    moments = {} if moments is None else moments
    values: dict[str, LatestValue] = {}
    for index, name in enumerate(NAMES):
        t_text = entry[2 * index]
        if t_text in (UNKNOWN, NONE):
            continue
        moment = moments.get(t_text)
        if moment is None:
            moment = moments[t_text] = from_ns(int(t_text))
        value = entry[2 * index + 1]
        values[name] = LatestValue(value if name == MODE_TAG else float(value), moment)
    return values


def _learned(
    found: Mapping[str, Mapping[str, LatestValue]], lacking: Mapping[str, Sequence[str]]
) -> dict[str, NewestValues]:
    """What influxd said about the fields keys did not know: a value, or that there is none."""
    learned: dict[str, NewestValues] = {}
    for name, loops in lacking.items():
        for loop_id in loops:
            newest = learned.setdefault(loop_id, NewestValues({}, 0))
            value = found[loop_id].get(name)
            if value is None or value.time is None:
                newest.values[name] = (NONE, "")
            else:
                t_ns = to_ns(value.time)
                if t_ns < 0:
                    continue
                text = value.value if name == MODE_TAG else repr(value.value)
                newest.values[name] = (time_text(t_ns), str(text))
    return learned
