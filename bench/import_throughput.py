"""Import rate of a wide historian export: values/s into the embedded store, lines/s into influxd.

Writes a wide CSV of ``--loops`` loops x 4 tags (PV, SP, OP, mode: 250 loops = 1,000 tags) at
1 s for ``--seconds`` seconds, then imports it with ``clpm_shared.ingest`` (one parse pass
that validates and keeps the samples in a temporary file, then the write) into a fresh
embedded store and into a private influxd (started as the test harness does). Baseline in the
same run: ``pandas.read_csv`` of the same file turned into ``Point`` objects and written with
the store's plain ``write``; and the previous write path of the importer (SQLite's default page
cache on the embedded writer; influxd requests of 50,000 lines, one at a time). Prints JSON,
with the load average before and after; a full day (86,400 s) is extrapolated from the slice
at the measured rate (the import is streamed, its rate does not depend on the file length).

For influxd it also reports the CPU time per line of this process (the client: parse,
validation, line protocol, HTTP) and of the influxd it started (``/proc/<pid>/stat`` before
and after the import, and 5 s after it, when the cache snapshots and compactions have caught
up), and from them the rate two cores can reach at most: 2 / (client + influxd) CPU per line.
``--influxd-data KEY=VALUE`` adds a setting to influxd's ``[data]`` section and ``--gogc``
sets its GOGC, to compare server settings.

    PYTHONPATH=. nice .venv/bin/python bench/import_throughput.py --loops 250 --seconds 1800
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from clpm_shared.config import InfluxSettings
from clpm_shared.ingest.importer import ImportOptions, import_exports
from clpm_shared.ingest.tag_map import parse_tag_map_csv
from clpm_shared.ingest.writer import SeriesWriter
from clpm_shared.timeseries import EmbeddedStore, InfluxQLStore, Point, TimeSeriesStore
from tests.harness.servers import InfluxServer, free_port

START = datetime(2026, 11, 1, tzinfo=UTC)
SETTLE_S = 5.0
"""How long influxd is given after the import to snapshot its cache and compact."""


@dataclass
class TunedInfluxServer(InfluxServer):
    """The harness influxd with extra ``[data]`` settings and environment (GOGC)."""

    data_settings: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)

    def write_config(self) -> None:
        super().write_config()
        config = self.workdir / "influxdb.conf"
        extra = "".join(f"  {key} = {value}\n" for key, value in self.data_settings.items())
        config.write_text(config.read_text().replace("[data]\n", f"[data]\n{extra}", 1))

    def popen_kwargs(self) -> dict[str, object]:
        environment = {**os.environ, **self.environment}  # noqa: TID251 - the bench configures influxd
        return {"env": environment} if self.environment else {}


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_export(path: Path, loops: int, seconds: int) -> str:
    """The wide CSV and its tag map (CSV text)."""
    rng = np.random.default_rng(1)
    t0 = int(START.timestamp())
    stamps = pa.array((t0 + np.arange(seconds)) * 1_000_000_000, pa.timestamp("ns", "UTC"))
    columns: dict[str, pa.Array] = {
        "timestamp": pa.compute.strftime(stamps, format="%Y-%m-%dT%H:%M:%SZ")
    }
    lines = ["loop_id,pv_tag,sp_tag,op_tag,mode_tag,mode_map"]
    for i in range(loops):
        name = f"FIC{i:04d}"
        pv = np.round(50 + np.cumsum(rng.normal(0, 0.1, seconds)), 3)
        columns[f"{name}.PV"] = pa.array(pv)
        columns[f"{name}.SP"] = pa.array(np.full(seconds, 50.0))
        columns[f"{name}.OP"] = pa.array(np.round(40 + rng.normal(0, 1, seconds), 2))
        columns[f"{name}.MODE"] = pa.array(np.where(np.arange(seconds) < seconds // 2, 1, 0))
        lines.append(f"{name},{name}.PV,{name}.SP,{name}.OP,{name}.MODE,0=MAN;1=AUT")
    pa_csv.write_csv(pa.table(columns), path)
    return "\n".join(lines) + "\n"


async def import_rate(
    path: Path,
    tag_map_text: str,
    store: TimeSeriesStore,
    writer: SeriesWriter | None = None,
    server_pid: int | None = None,
) -> dict[str, float]:
    """The import's rate; with ``server_pid`` also the CPU microseconds per line of this
    process and of the server, and the two-core ceiling they give."""
    tag_map = parse_tag_map_csv(tag_map_text)
    server_cpu = process_cpu_s(server_pid) if server_pid else 0.0
    client_cpu = time.process_time()
    started = time.perf_counter()
    writer = writer or SeriesWriter(store)
    report = await import_exports([path], tag_map, writer, ImportOptions())
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    lines = report.written_samples
    result: dict[str, float] = {
        "seconds": round(seconds, 2),
        "values": report.values,
        "samples": lines,
        "values_per_s": round(report.values / seconds),
        "lines_per_s": round(lines / seconds),
    }
    if server_pid:
        during = process_cpu_s(server_pid) - server_cpu
        await asyncio.sleep(SETTLE_S)
        settled = process_cpu_s(server_pid) - server_cpu
        client_us, server_us = client_cpu / lines * 1e6, settled / lines * 1e6
        result |= {
            "client_cpu_us_per_line": round(client_us, 2),
            "influxd_cpu_us_per_line_during": round(during / lines * 1e6, 2),
            "influxd_cpu_us_per_line": round(server_us, 2),
            "two_core_ceiling_lines_per_s": round(2 / (client_us + server_us) * 1e6),
        }
    return result


async def baseline_rate(path: Path, loops: int, store: TimeSeriesStore) -> dict[str, float]:
    """pandas.read_csv of the whole file, Points, the store's plain write."""
    started = time.perf_counter()
    frame = pd.read_csv(path)
    times = [t.to_pydatetime() for t in pd.to_datetime(frame["timestamp"], utc=True)]
    modes = {1: "AUT", 0: "MAN"}
    points: list[Point] = []
    for i in range(loops):
        name = f"FIC{i:04d}"
        pv, sp, op = (frame[f"{name}.{f}"].to_numpy().tolist() for f in ("PV", "SP", "OP"))
        mode = frame[f"{name}.MODE"].to_numpy().tolist()
        points.extend(
            Point(name, t, a, b, c, modes[m])
            for t, a, b, c, m in zip(times, pv, sp, op, mode, strict=True)
        )
    await store.write(points)
    seconds = time.perf_counter() - started
    values = len(points) * 4
    return {
        "seconds": round(seconds, 2),
        "values_per_s": round(values / seconds),
        "lines_per_s": round(len(points) / seconds),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=250, help="4 tags each")
    parser.add_argument("--seconds", type=int, default=1800)
    parser.add_argument(
        "--influxd-data", action="append", default=[], metavar="KEY=VALUE",
        help="an influxd [data] setting, e.g. index-version='\"tsi1\"' (TOML value)",
    )  # fmt: skip
    parser.add_argument("--gogc", help="influxd's GOGC (Go's garbage collector target, %%)")
    parser.add_argument(
        "--influxd-only", action="store_true",
        help="only the importer into influxd (two write paths), no embedded store or Points",
    )  # fmt: skip
    args = parser.parse_args()
    result: dict[str, object] = {"tags": args.loops * 4, "seconds": args.seconds}
    data_settings = dict(setting.split("=", 1) for setting in args.influxd_data)
    if data_settings or args.gogc:
        result["influxd_settings"] = {**data_settings, **({"GOGC": args.gogc} if args.gogc else {})}
    result["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        folder = Path(tmp)
        path = folder / "export.csv"
        tag_map = write_export(path, args.loops, args.seconds)
        result["file_mb"] = round(path.stat().st_size / 1e6, 1)

        started = time.perf_counter()  # pass 1 alone: the validation of a dry run
        await import_exports([path], parse_tag_map_csv(tag_map), None, ImportOptions())
        validate_s = time.perf_counter() - started
        result["validate_only"] = {
            "seconds": round(validate_s, 2),
            "values_per_s": round(args.loops * 4 * args.seconds / validate_s),
        }
        if not args.influxd_only:
            await embedded_rates(folder, path, tag_map, args.loops, result)

        server = TunedInfluxServer(
            "influxd", free_port(), folder / "influx", rpc_port=free_port(),
            data_settings=data_settings, environment={"GOGC": args.gogc} if args.gogc else {},
        )  # fmt: skip
        (folder / "influx").mkdir()
        server.write_config()
        server.start()
        assert server.process is not None
        try:
            for database in ("bench", "previous", "baseline"):
                server.create_database(database)
            stores = {
                name: InfluxQLStore(
                    InfluxSettings(
                        timeseries_backend="influxql",  # type: ignore[arg-type]
                        influxdb_url=server.url, influxdb_database=name,
                        influxdb_timeout_s=120.0,
                    )
                )
                for name in ("bench", "previous", "baseline")
            }  # fmt: skip
            # the previous write path: requests of 50,000 lines, one at a time
            one_at_a_time = SeriesWriter(
                stores["previous"], lines_per_request=50_000, requests_in_flight=1
            )
            result["influxql_previous_write_path"] = await import_rate(
                path, tag_map, stores["previous"], one_at_a_time, server.process.pid
            )
            result["influxql"] = await import_rate(
                path, tag_map, stores["bench"], server_pid=server.process.pid
            )
            if not args.influxd_only:
                result["influxql_baseline"] = await baseline_rate(
                    path, args.loops, stores["baseline"]
                )
            for store in stores.values():
                await store.close()
        finally:
            server.stop()
    day = 86_400 / args.seconds
    influx_rate = result["influxql"]["lines_per_s"]  # type: ignore[index]
    result["one_day_extrapolated"] = {
        "values": args.loops * 4 * 86_400,
        "influxql_seconds": round(args.loops * 86_400 / influx_rate),
        "factor": round(day, 1),
    }
    if not args.influxd_only:
        embedded_rate = result["embedded"]["values_per_s"]  # type: ignore[index]
        result["one_day_extrapolated"]["embedded_seconds"] = round(  # type: ignore[index]
            args.loops * 4 * 86_400 / embedded_rate
        )
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))


async def embedded_rates(
    folder: Path, path: Path, tag_map: str, loops: int, result: dict[str, object]
) -> None:
    """The embedded store: the previous write path, the importer's, the plain write."""
    # the previous write path first: SQLite's default 2 MB page cache on the writer
    previous = EmbeddedStore(folder / "previous.db", write_cache_mb=2)
    result["embedded_previous_write_path"] = await import_rate(path, tag_map, previous)
    await previous.close()
    embedded = EmbeddedStore(folder / "import.db")
    result["embedded"] = await import_rate(path, tag_map, embedded)
    await embedded.close()
    plain = EmbeddedStore(folder / "baseline.db")
    result["embedded_baseline"] = await baseline_rate(path, loops, plain)
    await plain.close()


if __name__ == "__main__":
    asyncio.run(main())
