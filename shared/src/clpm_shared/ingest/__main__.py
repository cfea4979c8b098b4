"""Import historian exports: ``python -m clpm_shared.ingest EXPORT... --tag-map FILE``.

Each EXPORT is a wide or long CSV or a Parquet file, or a folder of them. Everything is
validated first (the validated samples wait in a temporary file in TMPDIR, 32 bytes each);
with problems nothing is written (unless ``--skip-bad-rows``) and every problem is printed as
``file: line N: column: reason``. Then the samples go into the
configured time-series store (TIMESERIES_BACKEND: the embedded SQLite file or InfluxDB) and
the loops into the catalogue (DATABASE_URL / POSTGRES_*), marked ``data_source = import``.
Afterwards it prints the two commands that compute the aggregates and KPI history of the
imported range (``deploy/local/run.sh --import`` runs them itself).

Exit status: 0 imported (or valid, with ``--dry-run``), 2 problems (nothing written),
3 the store or the database could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from clpm_shared.config import Settings, TimeSeriesBackend, load_settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.ingest.catalogue import import_detail, register_imported_loops
from clpm_shared.ingest.importer import (
    ImportOptions,
    ImportRejectedError,
    ImportReport,
    import_exports,
)
from clpm_shared.ingest.readers import export_files
from clpm_shared.ingest.tag_map import TagMap, TagMapError, load_tag_map
from clpm_shared.ingest.timestamps import TimeFormatError, check_timezone, format_ns
from clpm_shared.ingest.writer import SeriesWriter
from clpm_shared.timeseries import StoreUnavailableError, create_store


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m clpm_shared.ingest",
        description="Import historian exports (wide CSV, long CSV tag,timestamp,value[,quality], "
        "Parquet) into the time-series store and the loop catalogue.",
    )
    parser.add_argument("exports", nargs="+", type=Path, help="export files or folders of them")
    parser.add_argument("--tag-map", type=Path, required=True, help="tag map, CSV or JSON")
    parser.add_argument("--timezone", help="IANA zone of timestamps without one (e.g. UTC)")
    parser.add_argument(
        "--time-format", help="strptime format of the timestamps (e.g. '%%d/%%m/%%Y %%H:%%M:%%S')"
    )
    decimal = parser.add_mutually_exclusive_group()
    decimal.add_argument(
        "--decimal-comma",
        dest="decimal_comma",
        action="store_true",
        default=None,
        help="numbers are written 1,5 (default for ';' files)",
    )
    decimal.add_argument(
        "--decimal-point",
        dest="decimal_comma",
        action="store_false",
        help="numbers are written 1.5 (default for ',' files)",
    )
    parser.add_argument(
        "--skip-bad-rows", action="store_true",
        help="import the valid rows and count the others, instead of refusing the files",
    )  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="validate and report; write nothing")
    parser.add_argument("--no-catalogue", action="store_true", help="do not touch the loops table")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def _print_report(report: ImportReport) -> None:
    for line in report.summary_lines():
        print(line)


def follow_up_commands(report: ImportReport, loop_ids: list[str]) -> list[str]:
    """The commands that aggregate and rate the imported range (KPI history backfill)."""
    if report.start_ns is None or report.end_ns is None:
        return []
    hours = min(24 * 366, max(1, math.ceil((time.time_ns() - report.start_ns) / 3.6e12) + 1))
    start = format_ns(report.start_ns // 60_000_000_000 * 60_000_000_000)
    end = format_ns((report.end_ns // 60_000_000_000 + 1) * 60_000_000_000)
    loops = " ".join(f"--loop {loop_id}" for loop_id in loop_ids)
    return [
        f"python -m clpm_aggregation backfill --hours {hours} {loops}",
        f"python -m clpm_kpi_worker run-once --start {start} --end {end} {loops}",
    ]


async def run(args: argparse.Namespace, settings: Settings, tag_map: TagMap) -> int:
    files = export_files(args.exports)
    if not files:
        print("no CSV or Parquet files found", file=sys.stderr)
        return 2
    options = ImportOptions(
        timezone=args.timezone, time_format=args.time_format, decimal_comma=args.decimal_comma,
        skip_bad_rows=args.skip_bad_rows,
    )  # fmt: skip
    bars: dict[str, tqdm[Any]] = {}

    def progress(name: str, rows: int) -> None:
        if name not in bars:
            for bar in bars.values():
                bar.close()
            bars[name] = tqdm(desc=name, unit=" rows", unit_scale=True, file=sys.stderr,
                              disable=args.no_progress)  # fmt: skip
        bars[name].update(rows)

    store = None if args.dry_run else create_store(settings.influx, settings.cache)
    try:
        report = await import_exports(
            files, tag_map, None if store is None else SeriesWriter(store), options, progress
        )
    except ImportRejectedError as exc:
        for bar in bars.values():
            bar.close()
        _print_report(exc.report)
        for problem in exc.report.problems:
            print(problem, file=sys.stderr)
        more = exc.report.problem_count - len(exc.report.problems)
        if more > 0:
            print(f"... and {more} more problems", file=sys.stderr)
        print(f"{exc.report.problem_count} problems: nothing imported "
              "(fix them, or pass --skip-bad-rows)", file=sys.stderr)  # fmt: skip
        return 2
    except StoreUnavailableError as exc:
        print(f"time-series store unavailable: {exc} (run the import again: it is idempotent)",
              file=sys.stderr)  # fmt: skip
        return 3
    finally:
        for bar in bars.values():
            bar.close()
        if store is not None:
            await store.close()
    _print_report(report)
    for problem in report.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    loop_ids = sorted(report.loops)
    if report.dry_run:
        print(f"dry run: {report.values} values of {len(loop_ids)} loops valid; nothing written")
        return 0
    rate = report.written_values / report.seconds if report.seconds else 0.0
    print(
        f"imported {report.written_values} values ({report.written_samples} samples) of "
        f"{len(loop_ids)} loops in {report.seconds:.1f} s ({rate:,.0f} values/s); "
        f"{report.bad_quality} bad-quality values not stored, {report.bad_rows} rows skipped"
    )
    influx = settings.influx
    retention = influx.embedded_retention_days
    if (
        influx.timeseries_backend is TimeSeriesBackend.EMBEDDED and retention > 0
        and report.start_ns is not None
        and report.start_ns < time.time_ns() - retention * 86400e9
    ):  # fmt: skip
        print(f"warning: samples older than EMBEDDED_RETENTION_DAYS={retention:g} are deleted "
              "by the store's next prune; set EMBEDDED_RETENTION_DAYS=0 to keep them",
              file=sys.stderr)  # fmt: skip
    if not args.no_catalogue and loop_ids:
        engine = create_engine(settings.database.async_url)
        try:
            async with create_session_factory(engine)() as session, session.begin():
                count = await register_imported_loops(
                    session, tag_map, loop_ids, import_detail(f.name for f in files)
                )
        finally:
            await engine.dispose()
        print(f"catalogue: {count} loops created or updated (data_source = import)")
    for command in follow_up_commands(report, loop_ids):
        print(f"next: {command}")
    return 0


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.timezone is not None:
            check_timezone(args.timezone)
        tag_map = load_tag_map(args.tag_map)
    except TimeFormatError as exc:
        raise SystemExit(f"--timezone: {exc}") from None
    except OSError as exc:
        raise SystemExit(f"{args.tag_map}: {exc}") from None
    except TagMapError as exc:
        for line, column, reason in exc.problems:
            print(f"{args.tag_map.name}: line {line}: {column}: {reason}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(asyncio.run(run(args, load_settings(), tag_map)))


if __name__ == "__main__":
    main()
