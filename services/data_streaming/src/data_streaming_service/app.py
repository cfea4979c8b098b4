"""Entry point of the data-streaming service: ``python -m data_streaming_service.app``.

Reads settings (STREAM_*, OPCUA_*, LOG_LEVEL, INFLUXDB_* / TIMESERIES_BACKEND, DATABASE_URL)
through :mod:`clpm_shared.config`, simulates the plant's loops (or, with ``--source opcua``,
reads them from an OPC UA server) and streams one sample of each per STREAM_INTERVAL into the
time-series store until SIGINT or SIGTERM, then flushes and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from clpm_shared.config import OpcUaMode, Settings, TimeSeriesBackend, load_settings
from clpm_shared.db.engine import create_engine, create_session_factory
from clpm_shared.ingest.tag_map import TagMap, TagMapError, load_tag_map
from clpm_shared.logs import configure_logging
from clpm_shared.loop_catalogue import CatalogueError
from clpm_shared.timeseries import InfluxQLStore, TimeSeriesError, create_store
from data_streaming_service.catalogue import catalogue_csv, loop_specs
from data_streaming_service.checkpoint import load_state
from data_streaming_service.data_generator import ControlLoopDataGenerator
from data_streaming_service.heartbeat import HeartbeatPublisher, new_instance_id
from data_streaming_service.opcua_bridge import BridgeOptions, OpcUaAccessError, OpcUaBridge
from data_streaming_service.opcua_catalogue import catalogue_entries, save_tag_map_loops
from data_streaming_service.streaming import StreamingService, StreamOptions

logger = logging.getLogger("data_streaming_service")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_streaming_service",
        description=(
            "Simulate a plant's control loops (process, PI controller, valve with stiction, "
            "noise, disturbances, SP changes, manual periods) and stream PV, SP, OP and Mode "
            "of every loop into the CLPM time-series store (measurement control_loops, tags "
            "loop_id and Mode). Stops cleanly on SIGINT/SIGTERM after flushing its buffer."
        ),
        epilog=(
            "Settings come from the environment or .env (see env.example): STREAM_INTERVAL, "
            "STREAM_LOOPS, STREAM_SEED, STREAM_BUFFER_MAX_POINTS, STREAM_LOG_FILE, LOG_LEVEL, "
            "TIMESERIES_BACKEND and INFLUXDB_* (or EMBEDDED_TSDB_PATH), DATABASE_URL for the "
            "heartbeat. Command-line options override them. Examples: '--backfill 2' writes "
            "two hours of history first, then streams; '--loops 10000 --duration 60' is a "
            "one-minute scale test; '--source opcua --endpoint opc.tcp://plant:4840 "
            "--tag-map tags.csv' streams a plant's loops from its OPC UA server instead "
            "(OPCUA_ENDPOINT, OPCUA_TAG_MAP, OPCUA_MODE, OPCUA_USER, OPCUA_PASSWORD, "
            "OPCUA_SECURITY, OPCUA_BUFFER_POINTS)."
        ),
    )
    parser.add_argument(
        "--source",
        choices=["simulator", "opcua"],
        default="simulator",
        help="where the samples come from: the built-in plant simulator (default), or an OPC "
        "UA server read through the tag map (its loops are created in the loop catalogue)",
    )
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="with --source opcua: the server, e.g. opc.tcp://plant:4840 (default: OPCUA_ENDPOINT)",
    )
    parser.add_argument(
        "--tag-map",
        type=Path,
        metavar="FILE",
        help="with --source opcua: CSV or JSON tag map whose tags are node ids, e.g. "
        "ns=2;s=FIC101.PV (default: OPCUA_TAG_MAP)",
    )
    parser.add_argument(
        "--opcua-mode",
        choices=[mode.value for mode in OpcUaMode],
        help="with --source opcua: subscribe to data changes or poll every node once per "
        "interval (default: OPCUA_MODE, subscribe)",
    )
    parser.add_argument(
        "--loops",
        type=_non_negative_int,
        metavar="N",
        help="number of loops to simulate: the default plant catalogue (TIC208030-TIC208034 "
        "and flow, pressure and level loops) first, then synthetic loops FIC900001, ... with a "
        "plant-like mix of behaviours; 0 = the catalogue only (default: STREAM_LOOPS)",
    )
    parser.add_argument(
        "--backfill",
        type=_non_negative_float,
        default=0.0,
        metavar="HOURS",
        help="before streaming, write this many hours of history ending now, as fast as the "
        "store takes it (history already stored for the first loop is not written again)",
    )
    parser.add_argument(
        "--backfill-only",
        action="store_true",
        help="write the backfill history and exit instead of streaming",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="random seed of the simulation; the same seed gives the same data "
        "(default: STREAM_SEED)",
    )
    parser.add_argument(
        "--interval",
        type=_positive_float,
        metavar="SECONDS",
        help="seconds between samples of each loop (default: STREAM_INTERVAL, 1.0)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        metavar="SECONDS",
        help="stop after streaming this long (default: until SIGINT/SIGTERM)",
    )
    parser.add_argument(
        "--list-loops",
        action="store_true",
        help="print the simulated loops (id, type, behaviour profile) and exit",
    )
    parser.add_argument(
        "--write-catalogue",
        type=Path,
        metavar="FILE",
        help="write the simulated loops with their transmitter ranges (pv_lo, pv_hi) as a "
        "loop list for 'python -m clpm_shared.loop_catalogue FILE' and exit",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error", "critical"],
        help="log level (default: LOG_LEVEL, info)",
    )
    return parser


def build_generator(settings: Settings, args: argparse.Namespace) -> ControlLoopDataGenerator:
    interval = args.interval if args.interval is not None else settings.streaming.stream_interval
    seed = args.seed if args.seed is not None else settings.streaming.stream_seed
    n_loops = args.loops if args.loops is not None else settings.streaming.stream_loops
    specs = loop_specs(n_loops, seed, interval)
    return ControlLoopDataGenerator(specs, interval_s=interval, seed=seed)


def _tag_map(settings: Settings, args: argparse.Namespace) -> TagMap:
    path = args.tag_map if args.tag_map is not None else settings.streaming.opcua_tag_map
    if path is None:
        raise SystemExit("--source opcua needs a tag map: --tag-map FILE or OPCUA_TAG_MAP")
    try:
        tag_map = load_tag_map(path)
        catalogue_entries(tag_map)  # the loops must be valid catalogue rows too
    except OSError as exc:
        raise SystemExit(f"{path}: {exc}") from None
    except (TagMapError, CatalogueError) as exc:
        lines = str(exc).splitlines()
        raise SystemExit("\n".join(f"{path}: {line}" for line in lines)) from None
    if not tag_map.loops:
        raise SystemExit(f"{path}: no loops")
    return tag_map


async def run_opcua(settings: Settings, args: argparse.Namespace, tag_map: TagMap) -> int:
    """Bridge the OPC UA server until a signal (or ``--duration``); 0 after a clean shutdown."""
    try:
        options = BridgeOptions.from_settings(
            settings.streaming,
            endpoint=args.endpoint,
            mode=OpcUaMode(args.opcua_mode) if args.opcua_mode else None,
            interval_s=args.interval,
            duration_s=args.duration,
        )
    except ValueError as exc:
        raise SystemExit(f"{exc} (or --endpoint)") from None
    if not logger.isEnabledFor(logging.DEBUG):  # asyncua logs every request at INFO
        logging.getLogger("asyncua").setLevel(logging.WARNING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _request_stop, stop, signum)
    store = create_store(settings.influx, settings.cache)
    engine = create_engine(settings.database)
    sessions = create_session_factory(engine)
    try:
        if isinstance(store, InfluxQLStore) and settings.influx.timeseries_backend is (
            TimeSeriesBackend.INFLUXQL
        ):
            await _ensure_database(store)
        try:
            saved = await save_tag_map_loops(sessions, tag_map, options.endpoint)
            logger.info(
                "tag map loops saved in the loop catalogue",
                extra={"loops": saved, "endpoint": options.endpoint},
            )
        except (SQLAlchemyError, OSError) as exc:
            logger.warning(
                "loop catalogue not updated (database unreachable); streaming anyway",
                extra={"error": str(exc)[:300]},
            )
        heartbeat = HeartbeatPublisher(sessions, new_instance_id())
        bridge = OpcUaBridge(tag_map, store, options, heartbeat)
        try:
            await bridge.run(stop)
        except OpcUaAccessError as exc:
            logger.error("OPC UA bridge stopped", extra={"error": str(exc)})
            return 3
    finally:
        await store.close()
        await engine.dispose()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return 0


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """Stream until a signal (or ``--duration``); 0 after a clean shutdown."""
    generator = build_generator(settings, args)
    state_file = settings.streaming.stream_state_file
    restored = load_state(state_file, generator) if state_file is not None else None
    if restored is not None:
        generator = restored.generator
        logger.info(
            "simulator state restored: trends continue",
            extra={"path": str(state_file), "t_ns": restored.t_ns},
        )
    options = StreamOptions(
        state_file=state_file,
        interval_s=generator.interval_s,
        buffer_max_points=settings.streaming.stream_buffer_max_points,
        backfill_hours=args.backfill,
        backfill_only=args.backfill_only,
        duration_s=args.duration,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _request_stop, stop, signum)

    store = create_store(settings.influx, settings.cache)
    engine = create_engine(settings.database)
    heartbeat = HeartbeatPublisher(create_session_factory(engine), new_instance_id())
    try:
        if isinstance(store, InfluxQLStore) and settings.influx.timeseries_backend is (
            TimeSeriesBackend.INFLUXQL
        ):
            await _ensure_database(store)
        service = StreamingService(
            generator,
            store,
            options,
            heartbeat,
            restored_ns=restored.t_ns if restored is not None else None,
        )
        await service.run(stop)
    finally:
        await store.close()
        await engine.dispose()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return 0


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    logger.info("shutdown requested", extra={"signal": signal.Signals(signum).name})
    stop.set()


async def _ensure_database(store: InfluxQLStore) -> None:
    """CREATE DATABASE on InfluxDB 1.x (idempotent); 2.x/3.x use a bucket + DBRP mapping."""
    try:
        await store.create_database()
    except (TimeSeriesError, OSError) as exc:
        logger.info(
            "database not created (it may exist already, or the server is InfluxDB 2.x/3.x "
            "with a bucket and DBRP mapping, or not reachable yet)",
            extra={"database": store.database, "error": str(exc)[:300]},
        )


def list_loops(generator: ControlLoopDataGenerator) -> str:
    lines = [f"{'loop_id':<12} {'type':<12} {'profile':<22} mode"]
    lines += [
        f"{spec.loop_id:<12} {spec.loop_type.value:<12} {spec.profile.value:<22} {spec.mode}"
        for spec in generator.specs
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, configure logging and run the service."""
    args = build_parser().parse_args(argv)
    settings = load_settings()
    if args.list_loops:
        sys.stdout.write(list_loops(build_generator(settings, args)) + "\n")
        return
    if args.write_catalogue is not None:
        specs = build_generator(settings, args).specs
        args.write_catalogue.write_text(catalogue_csv(specs), encoding="utf-8")
        sys.stdout.write(f"{len(specs)} loops written to {args.write_catalogue}\n")
        return
    tag_map = _tag_map(settings, args) if args.source == "opcua" else None
    configure_logging(
        "data-streaming",
        args.log_level or settings.runtime.log_level.value,
        settings.streaming.stream_log_file,
    )
    if tag_map is not None:
        raise SystemExit(asyncio.run(run_opcua(settings, args, tag_map)))
    raise SystemExit(asyncio.run(run(settings, args)))


if __name__ == "__main__":
    main()
