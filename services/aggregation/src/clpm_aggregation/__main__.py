"""Command line of the aggregation service: ``python -m clpm_aggregation [run|backfill|once]``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from clpm_aggregation.service import SERVICE, AggregationService
from clpm_shared.config import Settings, SettingsError, load_settings
from clpm_shared.db.engine import create_engine, create_session_factory
from clpm_shared.logs import configure_logging
from clpm_shared.timeseries.factory import create_store

DESCRIPTION = """\
Aggregate raw PV/SP/OP/mode samples of every control loop into 1-minute buckets (agg_1m) and
1-hour roll-ups (agg_1h) in the relational database.

commands:
  run        (default) poll the time-series store every POLLING_INTERVAL ms; on start-up,
             aggregate history from each new loop's oldest sample (or AGG_BACKFILL_HOURS)
  once       one cycle (including any catch-up), then exit
  backfill   recompute the last --hours hours for all loops (or --loop ...), then exit

Settings come from the environment (see README): DATABASE_URL or POSTGRES_*,
TIMESERIES_BACKEND and INFLUXDB_*, POLLING_INTERVAL, AGG_LATENESS_S, AGG_LATE_DATA,
AGG_LATE_CHECK_INTERVAL_S, AGG_RECONCILE_HOURS, AGG_RECONCILE_INTERVAL_S, AGG_BACKFILL_HOURS,
AGG_CHUNK_MINUTES, AGG_LOOPS_PER_QUERY, AGG_LEASE_S, AGG_SPREAD_MIN_LOOPS,
AGG_SPREAD_LOOPS_PER_POLL, LOG_LEVEL.
"""


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m clpm_aggregation",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="{run,once,backfill}")
    commands.add_parser("run", help="poll and aggregate until stopped (default)")
    commands.add_parser("once", help="run one cycle (with any catch-up) and exit")
    backfill = commands.add_parser("backfill", help="recompute the last H hours and exit")
    backfill.add_argument(
        "--hours", type=float, required=True, help="how many hours back to recompute (> 0)"
    )
    backfill.add_argument(
        "--loop",
        action="append",
        dest="loops",
        metavar="LOOP_ID",
        help="only this loop (repeat for several); default: every loop",
    )
    arguments = parser.parse_args(argv)
    if arguments.command is None:
        arguments.command = "run"
    if arguments.command == "backfill" and not 0 < arguments.hours <= 24 * 366:
        parser.error("--hours must be > 0 and at most 8784 (one year)")
    return arguments


async def serve(settings: Settings, arguments: argparse.Namespace) -> int:
    """Build the store, the database engine and the service; run the chosen command."""
    engine = create_engine(settings.database)
    store = create_store(settings.influx)
    if hasattr(store, "loops_per_query"):  # batched raw reads (InfluxQL, Flux): AGG_LOOPS_PER_QUERY
        store.loops_per_query = settings.aggregation.agg_loops_per_query
    service = AggregationService(settings.aggregation, store, create_session_factory(engine))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, service.stop)
    try:
        if arguments.command == "backfill":
            await service.backfill(arguments.hours, arguments.loops)
        elif arguments.command == "once":
            try:
                await service.run_cycle()
            finally:
                await service.shutdown()  # release the leases: a following `run` starts at once
        else:
            await service.run()
    finally:
        await store.close()
        await engine.dispose()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(SERVICE, settings.runtime.log_level.value)
    raise SystemExit(asyncio.run(serve(settings, arguments)))


if __name__ == "__main__":
    main()
