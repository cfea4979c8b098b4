"""Streaming into the real influxd: the seed's schema read back via InfluxQL, outages, shutdown."""

import asyncio
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clpm_shared.config import InfluxSettings
from clpm_shared.simulation import SimulatedLoopSpec
from clpm_shared.timeseries import InfluxQLStore
from data_streaming_service.catalogue import loop_specs
from data_streaming_service.checkpoint import load_state
from data_streaming_service.data_generator import ControlLoopDataGenerator
from data_streaming_service.streaming import StreamingService, StreamOptions, grid_floor
from tests.harness.servers import InfluxServer, free_port, wait_for

REPO_ROOT = Path(__file__).resolve().parents[3]


def _renamed(specs: Sequence[SimulatedLoopSpec], prefix: str) -> list[SimulatedLoopSpec]:
    """The specs under new loop ids, a coupled loop still driven by its (renamed) driver."""
    ids = {spec.loop_id: f"{prefix}{i}" for i, spec in enumerate(specs)}
    return [
        replace(
            spec,
            loop_id=ids[spec.loop_id],
            driven_by=None if spec.driven_by is None else ids[spec.driven_by],
        )
        for spec in specs
    ]


def influx_settings(server: InfluxServer, database: str, **extra: Any) -> InfluxSettings:
    return InfluxSettings(
        timeseries_backend="influxql",
        influxdb_url=server.url,
        influxdb_database=database,
        influxdb_username=None,
        **extra,
    )


@pytest.fixture
async def store(influx_server: InfluxServer, influx_database: str) -> AsyncIterator[InfluxQLStore]:
    created = InfluxQLStore(influx_settings(influx_server, influx_database))
    yield created
    await created.close()


def select(server: InfluxServer, database: str, query: str) -> list[dict[str, Any]]:
    """Rows of an InfluxQL answer as dicts (one per row, across series)."""
    answer = server.query(query, database)
    rows: list[dict[str, Any]] = []
    for result in answer["results"]:
        assert "error" not in result, result
        for series in result.get("series", []):
            tags = series.get("tags", {})
            rows += [
                {**tags, **dict(zip(series["columns"], v, strict=True))} for v in series["values"]
            ]
    return rows


async def test_backfill_writes_the_seed_schema_read_back_via_influxql(
    influx_server: InfluxServer, influx_database: str, store: InfluxQLStore
) -> None:
    seconds = 90
    generator = ControlLoopDataGenerator(seed=7)
    options = StreamOptions(backfill_hours=seconds / 3600, backfill_only=True)
    summary = await StreamingService(generator, store, options).run(asyncio.Event())
    loops = len(generator)
    assert summary.flushed
    # the ticks that passed while history was written are history too (no gap before live)
    ticks = summary.backfilled_points // (3 * loops)
    assert seconds <= ticks <= seconds + 5
    assert summary.written_points == summary.backfilled_points == 3 * loops * ticks

    measurements = select(influx_server, influx_database, "SHOW MEASUREMENTS")
    assert [row["name"] for row in measurements] == ["control_loops"]
    tag_keys = select(influx_server, influx_database, "SHOW TAG KEYS FROM control_loops")
    assert sorted(row["tagKey"] for row in tag_keys) == ["Mode", "loop_id"]
    field_keys = select(influx_server, influx_database, "SHOW FIELD KEYS FROM control_loops")
    assert {row["fieldKey"]: row["fieldType"] for row in field_keys} == {
        "OP": "float",
        "PV": "float",
        "SP": "float",
    }
    rows = select(
        influx_server,
        influx_database,
        "SELECT PV, SP, OP, Mode, loop_id FROM control_loops WHERE loop_id = 'TIC208031'",
    )
    assert len(rows) == ticks
    times = np.array([row["time"] for row in rows], dtype=np.int64)
    assert np.all(np.diff(times) == 1_000_000_000)  # one sample per STREAM_INTERVAL
    assert times[-1] == grid_floor(times[-1], 1_000_000_000)  # on the interval grid
    assert abs(times[-1] / 1e9 - time.time()) < 30  # history ends now

    # the values are the simulation's: the same seed reproduces them exactly
    replay = ControlLoopDataGenerator(seed=7)
    index = replay.loop_ids.index("TIC208031")
    expected = [replay.next_chunk(int(t)) for t in times]
    assert [row["PV"] for row in rows] == [chunk.pv[index] for chunk in expected]
    assert [row["OP"] for row in rows] == [chunk.op[index] for chunk in expected]
    assert {row["Mode"] for row in rows} == {"AUT"}
    counts = select(
        influx_server, influx_database, "SELECT count(PV) FROM control_loops GROUP BY loop_id"
    )
    assert {row["loop_id"]: row["count"] for row in counts} == dict.fromkeys(
        generator.loop_ids, ticks
    )


async def test_backfill_only_writes_history_that_is_missing(
    influx_server: InfluxServer, influx_database: str, store: InfluxQLStore
) -> None:
    generator = ControlLoopDataGenerator(loop_specs(2, seed=1), seed=1)
    specs = _renamed(generator.specs, "GAP")
    options = StreamOptions(backfill_hours=30 / 3600, backfill_only=True)
    first = await StreamingService(ControlLoopDataGenerator(specs), store, options).run(
        asyncio.Event()
    )
    again = await StreamingService(ControlLoopDataGenerator(specs), store, options).run(
        asyncio.Event()
    )
    assert 3 * 2 * 30 <= first.backfilled_points <= 3 * 2 * 32  # + ticks passed meanwhile
    assert again.backfilled_points < first.backfilled_points / 3  # only the seconds since
    rows = select(
        influx_server, influx_database, "SELECT PV FROM control_loops WHERE loop_id = 'GAP0'"
    )
    times = [row["time"] for row in rows]
    assert len(times) == len(set(times))
    assert np.all(np.diff(times) == 1_000_000_000)


async def test_live_streaming_continues_the_backfilled_history_without_a_gap(
    influx_server: InfluxServer,
    influx_database: str,
    store: InfluxQLStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At 50 ms per tick, writing 3 minutes of history for 20 loops takes many ticks: those
    used to be missing between the end of history and the first live sample."""
    interval = 0.05
    specs = _renamed(loop_specs(20, 3), "LIVE")
    generator = ControlLoopDataGenerator(specs, interval_s=interval, seed=3)
    options = StreamOptions(interval_s=interval, backfill_hours=3 / 60, duration_s=1.0)
    caplog.set_level(logging.INFO, logger="data_streaming_service.streaming")
    summary = await StreamingService(generator, store, options).run(asyncio.Event())
    assert summary.flushed
    assert summary.cycles > 0
    rows = select(
        influx_server, influx_database, "SELECT PV FROM control_loops WHERE loop_id = 'LIVE7'"
    )
    times = np.array([row["time"] for row in rows], dtype=np.int64)
    steps = np.diff(times)
    assert steps.max() == steps.min() == round(interval * 1e9), "a gap or a double"
    history_ticks = round(3 * 60 / interval)
    assert len(times) >= history_ticks + summary.cycles
    written = [r for r in caplog.records if r.getMessage() == "backfill written"]
    assert written
    assert written[0].ticks_after_the_start > 0  # type: ignore[attr-defined]
    assert any(
        r.getMessage() == "live streaming continues the history without a gap"
        for r in caplog.records
    )


async def test_outage_keeps_the_buffer_bounded_counts_drops_and_recovers(
    influx_server: InfluxServer,
    influx_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = influx_settings(influx_server, influx_database, influxdb_max_retries=0)
    outage_store = InfluxQLStore(settings, backoff_s=0.05)
    generator = ControlLoopDataGenerator(
        _renamed(loop_specs(10, seed=2, interval_s=0.05), "OUT"),
        interval_s=0.05,
    )
    options = StreamOptions(interval_s=0.05, buffer_max_points=600, summary_every_s=0.5)
    service = StreamingService(generator, outage_store, options)
    service.writer.backoff_s, service.writer.max_backoff_s = 0.05, 0.2
    stop = asyncio.Event()
    peak = 0
    caplog.set_level(logging.INFO)
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.sleep(0.5)
        influx_server.stop()
        deadline = time.monotonic() + 20
        while service.buffer.dropped_points < 600 and time.monotonic() < deadline:
            peak = max(peak, service.buffer.points)
            await asyncio.sleep(0.02)
        written_before = service.writer.stats.written_points
    finally:
        influx_server.start()
    assert service.buffer.dropped_points >= 600
    assert peak <= options.buffer_max_points
    assert service.writer.store_down
    warnings = [r for r in caplog.records if getattr(r, "dropped_points_total", 0) > 0]
    assert warnings, "the dropped-points counter must appear in the logs"
    assert max(r.dropped_points_total for r in warnings) <= service.buffer.dropped_points

    for _ in range(400):  # poll with a deadline (20 s)
        if not service.writer.store_down and service.buffer.points <= 60:
            break
        await asyncio.sleep(0.05)
    assert not service.writer.store_down
    stop.set()
    summary = await task
    await outage_store.close()
    assert summary.flushed
    assert summary.written_points > written_before
    assert summary.written_points + summary.dropped_points == summary.generated_points
    rows = select(
        influx_server, influx_database, "SELECT count(PV) FROM control_loops WHERE loop_id = 'OUT0'"
    )
    assert rows[0]["count"] * 3 * 10 == summary.written_points  # 10 loops, 3 fields each


def test_sigterm_flushes_every_point_and_exits_zero(
    influx_server: InfluxServer, influx_database: str, postgres_url: str, tmp_path: Path
) -> None:
    log_file = tmp_path / "data_streaming_service.log"
    env = {  # hermetic: nothing from the developer's environment or a .env file
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TIMESERIES_BACKEND": "influxql",
        "INFLUXDB_URL": influx_server.url,
        "INFLUXDB_DATABASE": "clpm_sigterm",
        "INFLUXDB_USERNAME": "",
        "DATABASE_URL": postgres_url,
        "STREAM_INTERVAL": "0.25",
        "STREAM_LOG_FILE": str(log_file),
        "LOG_LEVEL": "INFO",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "data_streaming_service.app", "--loops", "6", "--backfill", "0.01"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def streaming() -> None:
            text = log_file.read_text() if log_file.exists() else ""
            if text.count('"stream cycle"') + text.count('"stream summary"') < 1:
                raise AssertionError("not streaming yet")

        wait_for(streaming, None, timeout=60)
        time.sleep(1.5)  # a few live cycles
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output.decode()[-2000:]
    console = [json.loads(line) for line in output.decode().splitlines() if line.startswith("{")]
    in_file = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [e["event"] for e in console] == [e["event"] for e in in_file]  # console and file
    final = in_file[-1]
    assert final["event"] == "data-streaming stopped; buffer flushed"
    assert final["cycles"] >= 3
    assert final["written_points"] == final["generated_points"] + final["backfilled_points"]
    assert any(e["event"] == "shutdown requested" and e["signal"] == "SIGTERM" for e in in_file)
    rows = select(
        influx_server, "clpm_sigterm", "SELECT count(PV), count(SP), count(OP) FROM control_loops"
    )
    assert rows[0]["count"] * 3 == final["written_points"]
    assert rows[0]["count_1"] == rows[0]["count_2"] == rows[0]["count"]


async def test_stop_while_the_store_is_unreachable_ends_within_the_flush_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nobody = InfluxSettings(influxdb_url=f"http://127.0.0.1:{free_port()}", influxdb_username=None)
    unreachable = InfluxQLStore(nobody, backoff_s=0.05)
    generator = ControlLoopDataGenerator(loop_specs(3, seed=4, interval_s=0.05), interval_s=0.05)
    options = StreamOptions(interval_s=0.05, flush_timeout_s=1.5)
    service = StreamingService(generator, unreachable, options)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.sleep(0.5)
    stop.set()
    started = time.monotonic()
    summary = await task
    took = time.monotonic() - started
    await unreachable.close()
    assert took < options.flush_timeout_s + 1.0
    assert not summary.flushed
    assert summary.written_points == 0
    assert summary.generated_points > 0
    assert any("did not take every point" in r.getMessage() for r in caplog.records)


async def test_a_restarted_simulator_continues_its_trends_instead_of_starting_at_base(
    influx_server: InfluxServer, influx_database: str, store: InfluxQLStore, tmp_path: Path
) -> None:
    """Two runs (a restart between them, STREAM_STATE_FILE kept) write exactly what one
    uninterrupted simulation writes: no step back to the base operating point at the seam."""
    interval = 0.1
    specs = _renamed(loop_specs(3, 11), "RST")
    state_file = tmp_path / "simulator-state.pickle"
    options = StreamOptions(
        interval_s=interval, backfill_hours=6 / 3600, backfill_only=True, state_file=state_file
    )
    first = ControlLoopDataGenerator(specs, interval_s=interval, seed=11)
    await StreamingService(first, store, options).run(asyncio.Event())
    assert state_file.stat().st_mode & 0o077 == 0
    await asyncio.sleep(1.0)  # ten ticks pass while "stopped"

    restored = load_state(state_file, ControlLoopDataGenerator(specs, interval_s=interval))
    assert restored is not None
    second = StreamingService(restored.generator, store, options, restored_ns=restored.t_ns)
    summary = await second.run(asyncio.Event())
    assert summary.backfilled_points >= 3 * 3 * 5  # the ticks since the first run

    rows = select(
        influx_server, influx_database, "SELECT PV, OP FROM control_loops WHERE loop_id = 'RST1'"
    )
    times = np.array([row["time"] for row in rows], dtype=np.int64)
    assert np.all(np.diff(times) == round(interval * 1e9))  # contiguous across the restart
    uninterrupted = ControlLoopDataGenerator(specs, interval_s=interval, seed=11)
    expected = [uninterrupted.next_chunk(int(t)) for t in times]
    assert [row["PV"] for row in rows] == [chunk.pv[1] for chunk in expected]
    assert [row["OP"] for row in rows] == [chunk.op[1] for chunk in expected]
