"""OPC UA bridge against a real OPC UA server (asyncua's own) with simulated loops behind it.

The server's variables carry the project's simulator: PV in raw counts (x10, the tag map
scales by 0.1), OP in % and the mode as a code (0/1/2, mapped to AUT/MAN/CAS by the tag
map). The bridge streams into the real influxd of the test harness and the embedded store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clpm_shared.config import InfluxSettings, OpcUaMode, load_settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.repositories import LoopConfigRepository, LoopRepository
from clpm_shared.ingest.tag_map import TagMap, parse_tag_map_csv
from clpm_shared.simulation import MODES
from clpm_shared.timeseries import EmbeddedStore, InfluxQLStore, TimeSeriesStore
from data_streaming_service.app import main
from data_streaming_service.catalogue import loop_specs
from data_streaming_service.data_generator import ControlLoopDataGenerator
from data_streaming_service.opcua_bridge import (
    BridgeOptions,
    OpcUaAccessError,
    OpcUaBridge,
)
from data_streaming_service.opcua_catalogue import save_tag_map_loops
from tests.harness.opcua_server import OpcUaTestServer, make_certificate
from tests.harness.servers import InfluxServer, free_port

INTERVAL = 0.2
PV_RAW_PER_UNIT = 10.0


@dataclass
class Plant:
    """Simulated loops behind the nodes of an OPC UA server, stepped every INTERVAL / 2."""

    server: OpcUaTestServer
    generator: ControlLoopDataGenerator
    tag_map: TagMap
    written_pv: dict[str, set[float]]
    written_modes: dict[str, set[str]]

    async def step(self) -> None:
        chunk = self.generator.next_chunk(time.time_ns())
        values: dict[str, Any] = {}
        for i, loop_id in enumerate(chunk.loop_ids):
            pv = float(chunk.pv[i])
            values[f"{loop_id}.PV"] = pv * PV_RAW_PER_UNIT
            values[f"{loop_id}.SP"] = float(chunk.sp[i]) * PV_RAW_PER_UNIT
            values[f"{loop_id}.OP"] = float(chunk.op[i])
            values[f"{loop_id}.MODE"] = int(chunk.mode[i])
            self.written_pv[loop_id].add(round(pv, 6))
            self.written_modes[loop_id].add(MODES[int(chunk.mode[i])])
        await self.server.write(values)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), INTERVAL / 2)


def tag_map_csv(loop_ids: list[str], node_id: Callable[[str], str]) -> str:
    lines = [
        "loop_id,pv_tag,sp_tag,op_tag,mode_tag,pv_scale,op_scale,pv_lo,pv_hi,units,loop_type,"
        "unit,area,mode_map"
    ]
    for loop_id in loop_ids:
        tags = [f'"{node_id(f"{loop_id}.{role}")}"' for role in ("PV", "SP", "OP", "MODE")]
        lines.append(
            f"{loop_id},{','.join(tags)},0.1,1,0,500,degC,temperature,U200,Reactor,"
            "0=AUT;1=MAN;2=CAS"
        )
    return "\n".join(lines) + "\n"


def make_plant(prefix: str, n_loops: int = 3, users: dict[str, str] | None = None) -> Plant:
    specs = [
        replace(spec, loop_id=f"{prefix}{i}")
        for i, spec in enumerate(loop_specs(n_loops, seed=5, interval_s=INTERVAL)[:n_loops])
    ]
    specs[-1] = replace(specs[-1], mode="MAN")
    generator = ControlLoopDataGenerator(specs, interval_s=INTERVAL, seed=5)
    loop_ids = list(generator.loop_ids)
    initial: dict[str, Any] = {}
    for loop_id in loop_ids:
        initial |= {f"{loop_id}.PV": 0.0, f"{loop_id}.SP": 0.0, f"{loop_id}.OP": 0.0}
        initial[f"{loop_id}.MODE"] = 0
    server = OpcUaTestServer(initial, users=users)
    tag_map = parse_tag_map_csv(tag_map_csv(loop_ids, OpcUaTestServer.node_id))
    return Plant(
        server,
        generator,
        tag_map,
        {loop_id: set() for loop_id in loop_ids},
        {loop_id: set() for loop_id in loop_ids},
    )


@pytest.fixture
async def running_plant(request: pytest.FixtureRequest) -> AsyncIterator[Plant]:
    prefix = f"OPC{abs(hash(request.node.name)) % 10_000:04d}L"
    plant = make_plant(prefix)
    await plant.server.start()
    stop = asyncio.Event()
    feeder = asyncio.create_task(plant.run(stop))
    yield plant
    stop.set()
    await feeder
    await plant.server.stop()


def options(plant: Plant, **extra: Any) -> BridgeOptions:
    values: dict[str, Any] = {
        "endpoint": plant.server.endpoint,
        "interval_s": INTERVAL,
        "reconnect_initial_s": 0.1,
        "reconnect_max_s": 0.5,
        "timeout_s": 2.0,
        "summary_every_s": 0.5,
    }
    values.update(extra)
    return BridgeOptions(**values)


async def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.02)


def influx_store(server: InfluxServer, database: str, **extra: Any) -> InfluxQLStore:
    return InfluxQLStore(
        InfluxSettings(
            timeseries_backend="influxql",
            influxdb_url=server.url,
            influxdb_database=database,
            influxdb_username=None,
            **extra,
        ),
        backoff_s=0.05,
    )


async def stored(store: TimeSeriesStore, loop_ids: list[str]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return await store.query_raw_many(loop_ids, now - timedelta(hours=1), now + timedelta(hours=1))


@pytest.mark.parametrize("mode", [OpcUaMode.SUBSCRIBE, OpcUaMode.POLL])
async def test_bridge_streams_scaled_samples_with_mapped_modes_into_influxdb(
    running_plant: Plant, influx_server: InfluxServer, influx_database: str, mode: OpcUaMode
) -> None:
    store = influx_store(influx_server, influx_database)
    bridge = OpcUaBridge(running_plant.tag_map, store, options(running_plant, mode=mode))
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    await wait_until(lambda: bridge.summary.ticks >= 10, 15, "ten ticks")
    stop.set()
    summary = await task
    series = await stored(store, list(running_plant.written_pv))
    await store.close()

    assert summary.flushed
    assert summary.dropped_points == 0
    assert summary.written_points == summary.generated_points > 0
    for loop_id, written in running_plant.written_pv.items():
        raw = series[loop_id]
        assert len(raw) == summary.samples // len(running_plant.written_pv)
        # stored PV = raw counts x 0.1: exactly the simulated values, one per grid tick
        assert {round(float(v), 6) for v in raw.pv} <= written
        assert np.all(np.diff(raw.t_ns) % round(INTERVAL * 1e9) == 0)
        assert set(raw.mode.tolist()) <= running_plant.written_modes[loop_id]
    manual = list(running_plant.written_pv)[-1]
    assert set(series[manual].mode.tolist()) == {"MAN"}  # code 1 mapped by the tag map
    assert np.all(series[manual].op <= 100.0)


async def test_bridge_writes_the_embedded_store(running_plant: Plant, tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "ts.db")
    bridge = OpcUaBridge(running_plant.tag_map, store, options(running_plant))
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    await wait_until(lambda: bridge.summary.ticks >= 5, 15, "five ticks")
    stop.set()
    summary = await task
    series = await stored(store, list(running_plant.written_pv))
    await store.close()
    assert summary.written_points == summary.generated_points > 0
    assert sum(3 * len(s) for s in series.values()) == summary.written_points
    first = next(iter(running_plant.written_pv))
    assert {round(float(v), 6) for v in series[first].pv} <= running_plant.written_pv[first]


async def test_server_restart_mid_stream_reconnects_and_loses_nothing(
    running_plant: Plant, influx_server: InfluxServer, influx_database: str
) -> None:
    store = influx_store(influx_server, influx_database)
    bridge = OpcUaBridge(running_plant.tag_map, store, options(running_plant))
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    await wait_until(lambda: bridge.summary.ticks >= 5, 15, "streaming before the restart")
    await running_plant.server.stop()
    await wait_until(lambda: not bridge.connected.is_set(), 10, "the bridge noticing the loss")
    samples_down = bridge.summary.samples
    await asyncio.sleep(1.0)
    assert bridge.summary.samples == samples_down, "no held values while the server is away"
    await running_plant.server.start()
    await wait_until(lambda: bridge.summary.connects >= 2, 15, "reconnected")
    loops = len(running_plant.written_pv)
    await wait_until(
        lambda: bridge.summary.samples >= samples_down + 8 * loops, 15, "streaming again"
    )
    stop.set()
    summary = await task
    series = await stored(store, list(running_plant.written_pv))
    await store.close()

    assert summary.connection_losses >= 1
    assert summary.dropped_points == 0
    assert summary.written_points == summary.generated_points
    assert sum(3 * len(s) for s in series.values()) == summary.written_points
    # a gap of at least the second the server was away, and samples on both sides of it
    gaps = np.diff(next(iter(series.values())).t_ns) / 1e9
    assert gaps.max() >= 1.0
    assert int((gaps == INTERVAL).sum()) >= 10


async def test_store_unavailable_keeps_the_buffer_bounded_logs_overflow_once_and_counts(
    running_plant: Plant, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = InfluxQLStore(
        InfluxSettings(
            timeseries_backend="influxql",
            influxdb_url=f"http://127.0.0.1:{free_port()}",
            influxdb_max_retries=0,
            influxdb_timeout_s=0.5,
        ),
        backoff_s=0.05,
    )
    bound = 30  # 3 loops x 3 fields: a bit more than three ticks
    bridge = OpcUaBridge(
        running_plant.tag_map,
        unreachable,
        options(running_plant, buffer_max_points=bound, flush_timeout_s=0.5),
    )
    caplog.set_level(logging.INFO)
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    peak = 0
    deadline = time.monotonic() + 20
    while bridge.buffer.dropped_points < 3 * bound and time.monotonic() < deadline:
        peak = max(peak, bridge.buffer.points)
        await asyncio.sleep(0.01)
    stop.set()
    summary = await task
    await unreachable.close()

    assert peak <= bound
    assert summary.dropped_points >= 3 * bound
    assert not summary.flushed
    assert summary.written_points == 0
    assert summary.buffered_points + summary.dropped_points == summary.generated_points
    overflow = [r for r in caplog.records if "buffer full while the store" in r.getMessage()]
    assert len(overflow) == 1
    assert overflow[0].levelno == logging.ERROR
    assert overflow[0].buffer_max_points == bound


async def test_store_outage_within_the_bound_loses_nothing(
    running_plant: Plant, influx_server: InfluxServer, influx_database: str
) -> None:
    store = influx_store(influx_server, influx_database, influxdb_max_retries=0)
    bridge = OpcUaBridge(running_plant.tag_map, store, options(running_plant))
    bridge.writer.backoff_s = 0.05
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    try:
        await wait_until(lambda: bridge.summary.ticks >= 3, 15, "streaming")
        influx_server.stop()
        await wait_until(lambda: bridge.writer.store_down, 10, "the store noticed down")
        await wait_until(lambda: bridge.buffer.points >= 45, 10, "points buffered")
    finally:
        influx_server.start()
    await wait_until(lambda: not bridge.writer.store_down, 20, "the store back")
    stop.set()
    summary = await task
    series = await stored(store, list(running_plant.written_pv))
    await store.close()
    assert summary.dropped_points == 0
    assert summary.written_points == summary.generated_points
    assert sum(3 * len(s) for s in series.values()) == summary.written_points


async def test_password_is_accepted_and_a_wrong_one_refused_with_a_clear_error(
    tmp_path: Path,
) -> None:
    plant = make_plant("OPCAUTH", n_loops=1, users={"clpm": "s3cret"})
    await plant.server.start()
    await plant.step()
    try:
        store = EmbeddedStore(tmp_path / "ts.db")
        good = OpcUaBridge(plant.tag_map, store, options(plant, user="clpm", password="s3cret"))
        stop = asyncio.Event()
        task = asyncio.create_task(good.run(stop))
        await wait_until(lambda: good.summary.samples >= 2, 15, "streaming with a password")
        stop.set()
        assert (await task).written_points > 0

        wrong = OpcUaBridge(plant.tag_map, store, options(plant, user="clpm", password="nope"))
        with pytest.raises(OpcUaAccessError, match="OPCUA_USER, OPCUA_PASSWORD"):
            await asyncio.wait_for(wrong.run(asyncio.Event()), 15)
        assert wrong.summary.connects == 0
        anonymous = OpcUaBridge(plant.tag_map, store, options(plant))
        with pytest.raises(OpcUaAccessError):
            await asyncio.wait_for(anonymous.run(asyncio.Event()), 15)
        await store.close()
    finally:
        await plant.server.stop()


async def test_tag_map_loops_are_created_in_the_loop_catalogue(postgres_url: str) -> None:
    plant = make_plant("OPCCAT", n_loops=2)
    engine = create_engine(postgres_url)
    sessions = create_session_factory(engine)
    try:
        assert await save_tag_map_loops(sessions, plant.tag_map, "opc.tcp://plant:4840") == 2
        async with sessions() as session:
            loop = await LoopRepository(session).get("OPCCAT0")
            config = await LoopConfigRepository(session).get("OPCCAT0")
    finally:
        await engine.dispose()
    assert loop is not None
    assert config is not None
    assert (loop.unit, loop.area, loop.engineering_units) == ("U200", "Reactor", "degC")
    assert (config.pv_lo, config.pv_hi, config.loop_type) == (0.0, 500.0, "temperature")
    assert loop.data_source == "opcua"
    assert loop.data_source_detail is not None
    assert loop.data_source_detail.startswith("opc.tcp://plant:4840: ns=")


def test_settings_name_the_bridge_options() -> None:
    settings = load_settings(
        streaming={
            "opcua_endpoint": "opc.tcp://plant:4840",
            "opcua_mode": "poll",
            "opcua_password": "x",
            "stream_interval": 2.0,
        }
    )
    built = BridgeOptions.from_settings(settings.streaming)
    assert (built.endpoint, built.mode, built.interval_s, built.password) == (
        "opc.tcp://plant:4840",
        OpcUaMode.POLL,
        2.0,
        "x",
    )
    with pytest.raises(SystemExit, match="OPCUA_ENDPOINT"):
        load_settings(streaming={"opcua_endpoint": "http://plant"})


async def test_cli_bridges_into_the_embedded_store_and_creates_the_loops(
    running_plant: Plant, postgres_url: str, tmp_path: Path
) -> None:
    tags = tmp_path / "tags.csv"
    loop_ids = list(running_plant.written_pv)
    tags.write_text(tag_map_csv(loop_ids, OpcUaTestServer.node_id))
    log_file = tmp_path / "bridge.log"
    env = {  # hermetic: nothing from the developer's environment or a .env file
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TIMESERIES_BACKEND": "embedded",
        "EMBEDDED_TSDB_PATH": str(tmp_path / "ts.db"),
        "DATABASE_URL": postgres_url,
        "OPCUA_ENDPOINT": running_plant.server.endpoint,
        "OPCUA_MODE": "poll",
        "STREAM_LOG_FILE": str(log_file),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "data_streaming_service",
        "--source",
        "opcua",
        "--tag-map",
        str(tags),
        "--interval",
        str(INTERVAL),
        "--duration",
        "4",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode()[-2000:]
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    final = events[-1]
    assert final["event"] == "OPC UA bridge stopped; buffer flushed"
    assert final["written_points"] == final["generated_points"] > 0
    assert any(e["event"] == "OPC UA bridge starting" and e["mode"] == "poll" for e in events)

    store = EmbeddedStore(tmp_path / "ts.db")
    series = await stored(store, loop_ids)
    await store.close()
    assert sum(3 * len(s) for s in series.values()) == final["written_points"]
    engine = create_engine(postgres_url)
    try:
        async with create_session_factory(engine)() as session:
            found = [await LoopRepository(session).get(loop_id) for loop_id in loop_ids]
    finally:
        await engine.dispose()
    assert [loop.area if loop else None for loop in found] == ["Reactor"] * len(loop_ids)


def test_cli_names_line_and_column_of_a_bad_tag_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tags = tmp_path / "tags.csv"
    tags.write_text("loop_id,pv_tag,pv_scale\nFIC1,ns=2;s=X,ten\n")
    with pytest.raises(SystemExit) as done:
        main(["--source", "opcua", "--tag-map", str(tags)])
    assert str(done.value.code) == f"{tags}: line 2: pv_scale: not a number: 'ten'"


async def test_certificate_security_sign_and_encrypt(tmp_path: Path) -> None:
    plant = make_plant("OPCSEC", n_loops=1)
    plant.server.certificate_dir = tmp_path / "pki"
    await plant.server.start()
    await plant.step()
    cert, key = await make_certificate(
        tmp_path / "pki", "client", "urn:example.org:FreeOpcUa:opcua-asyncio"
    )
    security = f"Basic256Sha256,SignAndEncrypt,{cert},{key}"
    store = EmbeddedStore(tmp_path / "ts.db")
    try:
        bridge = OpcUaBridge(plant.tag_map, store, options(plant, security=security))
        stop = asyncio.Event()
        task = asyncio.create_task(bridge.run(stop))
        await wait_until(lambda: bridge.summary.samples >= 2, 20, "streaming encrypted")
        stop.set()
        assert (await task).written_points > 0
        plain = OpcUaBridge(plant.tag_map, store, options(plant))
        with pytest.raises(OpcUaAccessError, match="OPCUA_SECURITY"):
            await asyncio.wait_for(plain.run(asyncio.Event()), 15)
    finally:
        await store.close()
        await plant.server.stop()
