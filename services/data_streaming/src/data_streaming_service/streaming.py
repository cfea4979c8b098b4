"""The streaming loop: backfill history, then one sample of every loop per STREAM_INTERVAL.

The simulation is one continuous process, so history and live samples come from it in order:
the backfill writes up to the tick live streaming starts at (it chases the clock for as long
as writing history takes), and live streaming starts at the next tick: no gap.

Timestamps sit on the interval grid (``k * STREAM_INTERVAL`` since the epoch), so restarts and
several loops line up. Generation never waits for the store (:mod:`write_buffer` absorbs
outages, bounded); backfill does wait, so history is never dropped for speed. History is
written in bulk: blocks of ticks turned into per-loop columns, one store transaction each
(``write_series``), the next block generated while the previous one is written. On stop (SIGINT
or SIGTERM) the service stops generating, flushes the buffer within ``flush_timeout_s`` and
returns a summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clpm_shared.ingest.writer import SeriesWriter
from clpm_shared.timeseries import (
    RawSeries,
    StoreUnavailableError,
    TimeSeriesError,
    TimeSeriesStore,
)
from data_streaming_service.checkpoint import save_state
from data_streaming_service.data_generator import (
    FIELDS_PER_SAMPLE,
    ControlLoopDataGenerator,
    SampleChunk,
    history_series,
)
from data_streaming_service.heartbeat import HeartbeatPublisher
from data_streaming_service.write_buffer import PointBuffer, StoreWriter

logger = logging.getLogger(__name__)

_NS = 1_000_000_000


@dataclass(frozen=True)
class StreamOptions:
    """How the service streams (from settings and the command line)."""

    interval_s: float = 1.0
    buffer_max_points: int = 2_000_000
    backfill_hours: float = 0.0
    backfill_only: bool = False
    duration_s: float | None = None
    flush_timeout_s: float = 8.0
    summary_every_s: float = 60.0
    heartbeat_every_s: float = 15.0
    max_lag_ticks: int = 5
    """Further behind than this many ticks, the stream skips ahead instead of catching up."""
    state_file: Path | None = None
    """Where the simulator's state is kept (STREAM_STATE_FILE; None: not kept)."""
    max_replay_s: float = 7200.0
    """A restored simulator runs silently through at most this much of the time it missed."""
    history_block_samples: int = 300_000
    """Samples (loops x ticks) per store transaction while the backfill writes history."""


@dataclass
class StreamSummary:
    """What a run did; logged every ``summary_every_s`` and at shutdown."""

    loops: int = 0
    cycles: int = 0
    backfilled_points: int = 0
    generated_points: int = 0
    written_points: int = 0
    dropped_points: int = 0
    buffered_points: int = 0
    skipped_ticks: int = 0
    flushed: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def grid_floor(t_ns: int, interval_ns: int) -> int:
    """The last tick of the interval grid at or before ``t_ns``."""
    return (t_ns // interval_ns) * interval_ns


class StreamingService:
    """Runs the generator against a store until stopped.

    Parameters
    ----------
    generator : ControlLoopDataGenerator
        The simulated loops (its ``interval_s`` must equal ``options.interval_s``).
    store : TimeSeriesStore
        Where samples are written.
    options : StreamOptions
    heartbeat : HeartbeatPublisher, optional
        Records liveness for the container health probe.
    """

    def __init__(
        self,
        generator: ControlLoopDataGenerator,
        store: TimeSeriesStore,
        options: StreamOptions,
        heartbeat: HeartbeatPublisher | None = None,
        *,
        restored_ns: int | None = None,
    ) -> None:
        if generator.interval_s != options.interval_s:
            raise ValueError("generator.interval_s must equal options.interval_s")
        self.generator = generator
        self.store = store
        self.options = options
        self.heartbeat = heartbeat
        self.buffer = PointBuffer(options.buffer_max_points)
        self.writer = StoreWriter(store, self.buffer)
        self.summary = StreamSummary(loops=len(generator))
        self._interval_ns = round(options.interval_s * _NS)
        self._next_summary = 0.0
        self._next_heartbeat = 0.0
        self._summary_written = 0
        self._summary_at = time.monotonic()
        self.generated_ns = restored_ns
        """Tick of the last sample the generator produced (restored: of the previous run)."""

    async def run(self, stop: asyncio.Event) -> StreamSummary:
        """Backfill (if asked), stream until ``stop`` is set, then flush; return the summary."""
        writer_stop = asyncio.Event()
        writer_task = asyncio.create_task(self.writer.run(writer_stop), name="store-writer")
        try:
            await self._announce()
            resume_ns: int | None = None
            if self.options.backfill_hours > 0:
                resume_ns = await self._backfill(stop)
            if not self.options.backfill_only:
                await self._stream(stop, resume_ns)
        finally:
            # One deadline for both steps: Docker's stop grace period is 10 s by default.
            deadline = time.monotonic() + self.options.flush_timeout_s
            writer_stop.set()
            self.buffer.wake()
            await self._stop_writer(writer_task, self.options.flush_timeout_s)
            self.summary.flushed = await self.writer.flush(max(0.0, deadline - time.monotonic()))
            self._save_state()
            self._refresh_summary()
            if self.summary.flushed:
                logger.info("data-streaming stopped; buffer flushed", extra=self.summary.as_dict())
            else:
                logger.error(
                    "data-streaming stopped; the store did not take every point in time",
                    extra={**self.summary.as_dict(), "lost_points": self.buffer.points},
                )
            if self.heartbeat is not None:
                await self.heartbeat.remove()
        return self.summary

    async def _stop_writer(self, task: asyncio.Task[None], timeout_s: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _announce(self) -> None:
        try:
            reachable = await self.store.ping()
        except (TimeSeriesError, OSError):
            reachable = False
        logger.info(
            "data-streaming started",
            extra={
                "loops": len(self.generator),
                "interval_s": self.options.interval_s,
                "store": type(self.store).__name__,
                "store_reachable": reachable,
                "buffer_max_points": self.buffer.max_points,
            },
        )
        if not reachable:
            logger.warning("time-series store not reachable yet; samples are buffered")

    # ------------------------------------------------------------------ backfill

    async def _last_stored_ns(self) -> int | None:
        first = self.generator.loop_ids[0]
        try:
            span = await self.store.time_range(first)
        except (TimeSeriesError, OSError) as exc:
            logger.warning("could not read the stored time range", extra={"error": str(exc)})
            return None
        if span is None:
            return None
        return int(span.end.timestamp() * 1_000_000) * 1_000

    def _live_tick(self) -> int:
        """The next tick of the grid after now: where live streaming would start."""
        return grid_floor(time.time_ns(), self._interval_ns) + self._interval_ns

    async def _backfill(self, stop: asyncio.Event) -> int:
        """Write up to ``backfill_hours`` of history ending now; return the next tick.

        History chases the clock: ticks that passed while it was written are written too, so
        live streaming starts at exactly the tick after the last one of history (no gap, however
        long the backfill takes). Waits until the store has taken it all (or ``stop``).
        """
        interval = self._interval_ns
        end = self._live_tick()
        ticks = round(self.options.backfill_hours * 3600 * _NS / interval)
        start = end - ticks * interval
        last = await self._last_stored_ns()
        if last is not None and last >= start:
            start = grid_floor(last, interval) + interval
        start = self._continue_restored(start)
        if start >= end:
            logger.info("backfill skipped: history already present", extra={"from_ns": start})
            return end
        total = (end - start) // interval
        logger.info(
            "backfill started",
            extra={"ticks": total, "loops": len(self.generator), "from_ns": start, "to_ns": end},
        )
        started = time.monotonic()
        t, done = await self._write_history(start, end, total, stop)
        while not self.writer.idle and not stop.is_set():
            await self.buffer.wait_changed(self.buffer.version, timeout_s=0.5)
        # the seconds spent waiting for the store: generated now, written by the live writer
        while not stop.is_set() and t < self._live_tick() - interval:
            self._append_history(t)
            t += interval
            done += 1
        logger.info(
            "backfill interrupted" if stop.is_set() else "backfill written",
            extra={
                "ticks": done,
                "ticks_after_the_start": done - total,
                "points": self.summary.backfilled_points,
                "seconds": round(time.monotonic() - started, 2),
                "live_from_ns": t,
            },
        )
        return t

    async def _write_history(
        self, start: int, end: int, total: int, stop: asyncio.Event
    ) -> tuple[int, int]:
        """Generate and write history from ``start`` until the clock's next tick, in blocks of
        ``history_block_samples`` samples written as per-loop columns (one store transaction
        per block; the next block is generated while the previous one is written). Returns
        the next tick and the ticks written."""
        interval = self._interval_ns
        block_ticks = max(1, self.options.history_block_samples // max(1, len(self.generator)))
        writer = SeriesWriter(self.store)
        writing: asyncio.Task[None] | None = None
        done = 0
        t = start
        next_report = max(1, total // 10)
        try:
            while not stop.is_set():
                if t >= end:
                    end = self._live_tick()  # the clock moved on while history was written
                    if t >= end:
                        break
                ticks = min(block_ticks, (end - t) // interval)
                chunks = []
                for _ in range(ticks):
                    chunks.append(self._generate(t))
                    t += interval
                    if len(chunks) % 50 == 0:
                        await asyncio.sleep(0)  # the writer's completion, the stop signal
                blocks = history_series(chunks)
                if writing is not None:
                    await writing
                writing = asyncio.create_task(self._write_block(writer, blocks, stop))
                self.summary.backfilled_points += FIELDS_PER_SAMPLE * len(self.generator) * ticks
                done += ticks
                if total >= 1000 and done >= next_report and done <= total:
                    logger.info("backfill progress", extra={"ticks_done": done, "ticks": total})
                    next_report += max(1, total // 10)
            if writing is not None:
                await writing
                writing = None
        finally:
            if writing is not None:
                writing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writing
        return t, done

    async def _write_block(
        self, writer: SeriesWriter, blocks: list[RawSeries], stop: asyncio.Event
    ) -> None:
        """Write one block of history; while the store fails, try again with a doubling wait
        (history is never dropped for speed) until it is taken or ``stop`` is set."""
        delay = self.writer.backoff_s
        while True:
            try:
                written = await writer.write(blocks)
            except (StoreUnavailableError, TimeSeriesError, OSError) as exc:
                self.writer.stats.failed_attempts += 1
                self.writer.stats.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "time-series store write failed; retrying the history block",
                    extra={"error": self.writer.stats.last_error, "retry_in_s": delay},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return
                delay = min(2 * delay, self.writer.max_backoff_s)
                continue
            self.writer.stats.written_points += FIELDS_PER_SAMPLE * written
            self.writer.stats.write_calls += 1
            return

    def _generate(self, t_ns: int) -> SampleChunk:
        chunk = self.generator.next_chunk(t_ns)
        self.generated_ns = t_ns
        return chunk

    def _save_state(self) -> None:
        if self.options.state_file is None or self.generated_ns is None:
            return
        try:
            save_state(self.options.state_file, self.generator, self.generated_ns)
        except OSError as exc:
            logger.warning("could not keep the simulator state", extra={"error": str(exc)})

    def _continue_restored(self, start: int) -> int:
        """Where history starts after a restored state: after its last tick, and the ticks it
        missed before ``start`` run silently (at most ``max_replay_s``) so trends continue."""
        interval = self._interval_ns
        if self.generated_ns is None:
            return start
        if self.generated_ns >= start:
            return self.generated_ns + interval
        missed = (start - self.generated_ns) // interval - 1
        if missed * self.options.interval_s > self.options.max_replay_s:
            logger.info("simulator state older than the replay limit; trends continue from it")
            return start
        t = self.generated_ns + interval
        while t < start:
            self._generate(t)
            t += interval
        logger.info("simulator ran through the time it missed", extra={"ticks": int(missed)})
        return start

    def _append_history(self, t_ns: int) -> None:
        chunk = self._generate(t_ns)
        self.buffer.append(chunk)
        self.summary.backfilled_points += chunk.points

    # ------------------------------------------------------------------ live

    async def _stream(self, stop: asyncio.Event, resume_ns: int | None) -> None:
        interval = self._interval_ns
        next_t = self._live_tick() if resume_ns is None else resume_ns
        if resume_ns is not None:
            logger.info(
                "live streaming continues the history without a gap",
                extra={"from_ns": resume_ns, "interval_s": self.options.interval_s},
            )
        deadline = (
            None if self.options.duration_s is None else time.monotonic() + self.options.duration_s
        )
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            wait_s = (next_t - time.time_ns()) / _NS
            if deadline is not None:
                wait_s = min(wait_s, deadline - time.monotonic())
            if wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait_s)
                continue
            now = time.time_ns()
            behind = (now - next_t) // interval
            if behind > self.options.max_lag_ticks:
                self.summary.skipped_ticks += int(behind)
                logger.warning(
                    "stream fell behind; skipping ahead",
                    extra={"skipped_ticks": int(behind), "interval_s": self.options.interval_s},
                )
                next_t = grid_floor(now, interval)
            chunk = self._generate(next_t)
            self.buffer.append(chunk)
            self.summary.cycles += 1
            self.summary.generated_points += chunk.points
            logger.debug(
                "stream cycle",
                extra={"t_ns": next_t, "points": chunk.points, "buffered": self.buffer.points},
            )
            next_t += interval
            await self._periodic()

    async def _periodic(self) -> None:
        now = time.monotonic()
        if now >= self._next_summary:
            self._log_summary(now)
            self._save_state()
            self._next_summary = now + self.options.summary_every_s
        if self.heartbeat is not None and now >= self._next_heartbeat:
            self._next_heartbeat = now + self.options.heartbeat_every_s
            self._refresh_summary()
            await self.heartbeat.beat(
                {**self.summary.as_dict(), "store_down": self.writer.store_down}
            )

    def _refresh_summary(self) -> None:
        self.summary.written_points = self.writer.stats.written_points
        self.summary.dropped_points = self.buffer.dropped_points
        self.summary.buffered_points = self.buffer.points

    def _log_summary(self, now: float) -> None:
        self._refresh_summary()
        elapsed = max(now - self._summary_at, 1e-9)
        written = self.summary.written_points - self._summary_written
        cycles = max(self.summary.cycles, 1)
        logger.info(
            "stream summary",
            extra={
                **self.summary.as_dict(),
                "points_per_cycle": round(self.summary.generated_points / cycles, 1),
                "written_per_s": round(written / elapsed, 1),
                "store_down": self.writer.store_down,
            },
        )
        self._summary_written = self.summary.written_points
        self._summary_at = now
