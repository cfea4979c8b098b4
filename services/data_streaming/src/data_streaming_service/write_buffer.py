"""Bounded buffer of samples waiting for the time-series store, and the task that drains it.

The generator never waits for the store: it appends a chunk of samples per tick. The
writer sends batches of chunks with :meth:`TimeSeriesStore.write`; when the store is
unreachable it keeps the batch, waits (exponential backoff with jitter) and tries again.
Memory stays bounded: beyond ``max_points`` buffered points the oldest chunks are dropped and
counted (``dropped_points``), and the writer logs the running total.

A point is one field value, as in the seed's ``_field``/``_value`` records: a sample of one
loop (PV, SP, OP) is three points.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from clpm_shared.timeseries import Point, StoreUnavailableError, TimeSeriesError, TimeSeriesStore

logger = logging.getLogger(__name__)


class Chunk(Protocol):
    """What the buffer holds: the simulator's :class:`SampleChunk`, the bridge's samples."""

    @property
    def points(self) -> int:
        """Field values in the chunk (what the buffer bound counts)."""
        ...

    def to_points(self) -> list[Point]: ...


class PointBuffer:
    """FIFO of sample chunks holding at most ``max_points`` points (oldest dropped first)."""

    def __init__(self, max_points: int) -> None:
        if max_points < 1:
            raise ValueError(f"max_points must be >= 1, got {max_points!r}")
        self.max_points = max_points
        self._chunks: deque[Chunk] = deque()
        self._points = 0
        self.dropped_points = 0
        self.version = 0
        """Grows on every change; pass the value you saw to :meth:`wait_changed`."""
        self._changed = asyncio.Event()

    @property
    def points(self) -> int:
        """Points waiting to be written."""
        return self._points

    def __len__(self) -> int:
        return len(self._chunks)

    def append(self, chunk: Chunk) -> int:
        """Queue ``chunk``; return how many points had to be dropped to stay within bounds."""
        self._chunks.append(chunk)
        self._points += chunk.points
        dropped = self._enforce_bound()
        self._notify()
        return dropped

    def put_back(self, chunks: list[Chunk]) -> int:
        """Return chunks that could not be written to the front (they are the oldest)."""
        for chunk in reversed(chunks):
            self._chunks.appendleft(chunk)
            self._points += chunk.points
        dropped = self._enforce_bound()
        self._notify()
        return dropped

    def _enforce_bound(self) -> int:
        dropped = 0
        while self._points > self.max_points and self._chunks:
            oldest = self._chunks.popleft()
            self._points -= oldest.points
            dropped += oldest.points
        self.dropped_points += dropped
        return dropped

    def take(self, max_points: int) -> list[Chunk]:
        """Remove and return the oldest chunks, about ``max_points`` points (at least one)."""
        taken: list[Chunk] = []
        total = 0
        while self._chunks and (not taken or total + self._chunks[0].points <= max_points):
            chunk = self._chunks.popleft()
            self._points -= chunk.points
            total += chunk.points
            taken.append(chunk)
        self._notify()
        return taken

    def _notify(self) -> None:
        self.version += 1
        self._changed.set()

    def wake(self) -> None:
        """Wake whoever waits in :meth:`wait_changed` (used when stopping)."""
        self._notify()

    async def wait_changed(self, seen: int, timeout_s: float) -> None:
        """Return once :attr:`version` differs from ``seen`` or after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while self.version == seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


@dataclass
class WriterStats:
    written_points: int = 0
    write_calls: int = 0
    failed_attempts: int = 0
    write_seconds: float = 0.0
    last_error: str | None = None


class StoreWriter:
    """Drains a :class:`PointBuffer` into a store; retries with backoff while it is down.

    Parameters
    ----------
    store : TimeSeriesStore
        Where the points go.
    buffer : PointBuffer
        What to write.
    batch_points : int
        Points per ``store.write`` call (several chunks are joined up to this size).
    max_in_flight : int
        Concurrent ``store.write`` calls while the store is up: the next batch is converted
        while the previous one is on the wire. After a failure, one attempt at a time.
    backoff_s, max_backoff_s : float
        First and largest wait after a failed write (doubling, with ±25 % jitter).
    """

    def __init__(
        self,
        store: TimeSeriesStore,
        buffer: PointBuffer,
        *,
        batch_points: int = 30_000,
        max_in_flight: int = 2,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.store = store
        self.buffer = buffer
        self.batch_points = max(1, min(batch_points, buffer.max_points // 2 or 1))
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_in_flight = max(1, max_in_flight)
        self.stats = WriterStats()
        self.in_flight_points = 0
        self._failures = 0
        self._reported_dropped = 0

    @property
    def store_down(self) -> bool:
        """True after a failed write until the next successful one."""
        return self._failures > 0

    def backoff_delay(self) -> float:
        """Wait before the next attempt after ``self._failures`` failures in a row."""
        if self._failures == 0:
            return 0.0
        base = min(self.backoff_s * 2.0 ** (self._failures - 1), self.max_backoff_s)
        return base * (0.75 + random.random() / 2)  # noqa: S311 - jitter, not cryptography

    async def write_once(self) -> int:
        """Write one batch from the buffer; return points written (0 when empty or failed)."""
        chunks = self.buffer.take(self.batch_points)
        if not chunks:
            return 0
        taken = sum(chunk.points for chunk in chunks)
        self.in_flight_points += taken
        try:
            return await self._write_chunks(chunks)
        finally:
            self.in_flight_points -= taken
            self.buffer.wake()  # whoever waits for the writer to become idle

    @property
    def idle(self) -> bool:
        """Nothing buffered and nothing on the way to the store."""
        return self.buffer.points == 0 and self.in_flight_points == 0

    async def _write_chunks(self, chunks: list[Chunk]) -> int:
        points = [point for chunk in chunks for point in chunk.to_points()]
        started = time.perf_counter()
        try:
            await self.store.write(points)
        except asyncio.CancelledError:
            self.buffer.put_back(chunks)  # rewriting a point only overwrites it
            raise
        except (StoreUnavailableError, TimeSeriesError, OSError) as exc:
            self._failures += 1
            self.stats.failed_attempts += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            dropped = self.buffer.put_back(chunks)
            self._report_failure(dropped)
            return 0
        self.stats.write_seconds += time.perf_counter() - started
        written = sum(chunk.points for chunk in chunks)
        self.stats.written_points += written
        self.stats.write_calls += 1
        if self._failures:
            logger.info(
                "time-series store reachable again; writing buffered points",
                extra={
                    "failed_attempts": self._failures,
                    "buffered_points": self.buffer.points,
                    "dropped_points_total": self.buffer.dropped_points,
                },
            )
            self._failures = 0
        return written

    def _report_failure(self, dropped_now: int) -> None:
        dropped_total = self.buffer.dropped_points
        logger.warning(
            "time-series store write failed; keeping points in the buffer",
            extra={
                "error": self.stats.last_error,
                "attempt": self._failures,
                "buffered_points": self.buffer.points,
                "buffer_max_points": self.buffer.max_points,
                "dropped_points": dropped_now,
                "dropped_points_total": dropped_total,
            },
        )

    def report_drops(self) -> None:
        """Log the dropped-points counter when it has grown since the last report."""
        total = self.buffer.dropped_points
        if total > self._reported_dropped:
            logger.warning(
                "buffer full: dropped the oldest points",
                extra={
                    "dropped_points": total - self._reported_dropped,
                    "dropped_points_total": total,
                    "buffered_points": self.buffer.points,
                    "buffer_max_points": self.buffer.max_points,
                },
            )
            self._reported_dropped = total

    async def run(self, stop: asyncio.Event) -> None:
        """Write until ``stop`` is set (what is left is for :meth:`flush`)."""
        pending: set[asyncio.Task[int]] = set()
        try:
            while not stop.is_set():
                pending = {task for task in pending if not task.done()}
                seen = self.buffer.version
                if self.store_down:
                    if pending:  # let the attempts under way finish first
                        await asyncio.wait(pending)
                        continue
                    self.report_drops()
                    await _sleep_unless(stop, self.backoff_delay())
                    if not stop.is_set():
                        await self.write_once()  # one probe at a time while the store is down
                    continue
                if self.buffer.points == 0 or len(pending) >= self.max_in_flight:
                    waiter = asyncio.ensure_future(self.buffer.wait_changed(seen, 1.0))
                    await asyncio.wait({waiter, *pending}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    continue
                pending.add(asyncio.create_task(self.write_once(), name="store-write"))
                self.report_drops()
                await asyncio.sleep(0)  # the new task takes its batch before the next check
        except asyncio.CancelledError:
            for task in pending:
                task.cancel()  # each puts its batch back into the buffer
            await asyncio.gather(*pending, return_exceptions=True)
            raise
        if pending:
            await asyncio.wait(pending)

    async def flush(self, timeout_s: float) -> bool:
        """Write everything buffered, retrying until ``timeout_s`` passes; True when empty."""
        deadline = time.monotonic() + timeout_s
        while not self.idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self.write_once(), remaining)
            except TimeoutError:
                return False
            if self.store_down:
                delay = min(self.backoff_delay(), deadline - time.monotonic())
                if delay > 0:
                    await asyncio.sleep(delay)
        self.report_drops()
        return True


async def _sleep_unless(stop: asyncio.Event, delay_s: float) -> None:
    if delay_s <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay_s)
