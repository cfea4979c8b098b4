"""Command line of the KPI worker: ``python -m clpm_kpi_worker [run | run-once ...]``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from tqdm import tqdm

from clpm_kpi_worker.reporting import ReportMailer
from clpm_kpi_worker.scheduler import run_forever
from clpm_kpi_worker.worker import KpiWorker
from clpm_shared.config import Settings, load_settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.logs import configure_logging
from clpm_shared.notify import Notifier
from clpm_shared.timeseries import validate_loop_id
from clpm_shared.timeseries.factory import create_store


def _utc(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO-8601 time: {text!r} (e.g. 2025-01-10T10:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a timezone (e.g. Z or +01:00)")
    return moment.astimezone(UTC)


def _loop_id(text: str) -> str:
    try:
        return validate_loop_id(text, "--loop")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m clpm_kpi_worker",
        description="CLPM kpi-worker: computes KPIs, diagnosis and verdict of every loop per "
        "KPI_WINDOW_MIN window on the KPI_CRON_SCHEDULE and stores them in kpi_results / "
        "apc_attainment / diagnostic_results, then re-rates the assessment periods.",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="catch up missed windows, then run on the schedule (default)")
    once = commands.add_parser(
        "run-once", help="compute every window in [--start, --end) now (backfill), then exit"
    )
    once.add_argument("--start", type=_utc, required=True, help="ISO-8601 with zone")
    once.add_argument("--end", type=_utc, required=True, help="ISO-8601 with zone")
    once.add_argument("--loop", type=_loop_id, action="append", help="only this loop (repeatable)")
    once.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


async def _main(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings.database)
    store = create_store(settings.influx)
    sessions = create_session_factory(engine)
    worker = KpiWorker(settings.kpi, sessions, store, alerts=settings.alerts)
    notifier = Notifier(settings.alerts, sessions)
    try:
        if args.command == "run-once":
            if args.end <= args.start:
                print("--end: must be after --start", file=sys.stderr)
                return 2
            with tqdm(total=0, unit="window", disable=args.no_progress, file=sys.stderr) as bar:

                def progress(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                stats = await worker.run_range(args.start, args.end, args.loop, progress)
            print(stats.as_dict())
            return 1 if stats.failed else 0
        reports = (
            ReportMailer(settings.reports, settings.alerts, settings.kpi, sessions)
            if settings.reports.report_enabled
            else None
        )
        await run_forever(worker, settings.kpi.kpi_cron_schedule, notifier, reports)
        return 0
    finally:
        await notifier.aclose()
        worker.close()
        await store.close()
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    configure_logging("kpi-worker", settings.runtime.log_level)
    raise SystemExit(asyncio.run(_main(args, settings)))


if __name__ == "__main__":
    main()
