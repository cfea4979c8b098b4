"""The whole embedded suite at N simulated loops: lag behind real time, CPU and memory per service.

For each ``--loops`` value the bench starts the suite the way ``deploy/local/run.sh`` does
(SQLite ``clpm.db`` + embedded ``timeseries.db`` in a fresh temporary data directory, free
loopback ports, every service a subprocess): data-streaming with ``--backfill``, api-gateway,
diagnostics, and, once the history is written, the aggregation and the kpi-worker (a
``run-once`` over the history, then ``run``). It samples every ``--sample-s`` seconds for
``--minutes`` minutes:

* **streaming**: real time minus the oldest of the loops' newest samples (``loop_spans``);
* **aggregation**: real time minus the end of the newest ``agg_1m`` minute;
* **kpi-worker**: the newest due window end (``KPI_WINDOW_MIN`` grid, now) minus the newest
  ``kpi_results`` window end (0 when on time);
* **diagnostics** and **api-gateway**: latency of ``GET /health``;
* CPU seconds and resident memory of each service's process tree (``/proc``).

Start-up figures: seconds until the history is written (the simulator's "backfill written"
log line), until the aggregation has caught up (lag under 3 minutes), until the KPI windows
of the history are stored (the kpi-worker's run-once has finished), until the suite is
**ready** (every loop has an ``agg_1m`` minute at most 3 minutes old, 5 from 5,001 loops on
where the aggregation's spread spans 2 minutes, and a KPI of the newest due window: the
dashboards show current aggregates and KPIs of every loop) and until the **whole history is
done** (every loop's aggregation watermark as recent and the KPI history run finished).

``--code-root DIR`` runs the services of another checkout (its ``.venv``, its migrations)
under the same bench, so the code before and after a change can be measured by the same
measuring code: e.g. a detached worktree of ``main`` beside the branch.

Baseline in the same run (``--baseline-minutes``, 0 to skip): the simulator alone writing
N loops live to a fresh store, same sampling.

A run "keeps up" when, over the second half of the steady state, the streaming lag stays
under 10 s, the aggregation lag under 4 minutes (poll 30 s + lateness checks) and not growing,
and the kpi-worker is at most one window late. Prints one JSON document.

    PYTHONPATH=. nice .venv/bin/python bench/embedded_suite.py --loops 500 2000 --minutes 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.process_cpu import CLOCK_TICKS, process_tree
from clpm_aggregation.planning import span_if_spread
from clpm_shared.config import AggregationSettings
from tests.harness.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
READY_MARGIN_S = 90.0
"""A loop's aggregates count as current when its newest agg_1m minute ended at most
:func:`ready_lag_s` ago: the latest its spread slot writes it, plus this margin."""
_NS = 1_000_000_000
LAGS = (
    "streaming_lag_s", "aggregation_lag_s", "kpi_lag_s", "gateway_health_ms",
    "diagnostics_health_ms",
)  # fmt: skip
HISTORY_MARK = ('"backfill written', '"backfill skipped', '"backfill interrupted')


def ready_lag_s(loops: int, settings: AggregationSettings | None = None) -> float:
    """Oldest newest-minute end of a loop whose aggregation is on time, plus the margin:
    ``2 S - P + READY_MARGIN_S`` with ``S`` the spread's span for ``loops`` and ``P`` the poll
    (a slot-``k`` loop is written up to the span start of ``now - k P``; 180 s for one minute,
    300 s for the 2-minute span of 10,000 loops)."""
    settings = settings or AggregationSettings()
    poll = timedelta(milliseconds=settings.polling_interval)
    span = span_if_spread(
        loops, poll, settings.agg_spread_min_loops, settings.agg_spread_loops_per_poll
    ) or timedelta(minutes=1)
    return (2 * span - min(poll, span)).total_seconds() + READY_MARGIN_S


def rss_mb(pids: list[int]) -> float:
    """Resident memory of the processes (VmRSS), MB."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    cpu_ticks: dict[int, int] = field(default_factory=dict)
    """Highest tick count seen per pid (a process that exited keeps its last figure)."""
    rss_max_mb: float = 0.0

    def sample(self) -> None:
        tree = process_tree(self.process.pid)
        for pid, ticks in tree.items():
            self.cpu_ticks[pid] = max(ticks, self.cpu_ticks.get(pid, 0))
        self.rss_max_mb = max(self.rss_max_mb, rss_mb(list(tree)))

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu_ticks.values()) / CLOCK_TICKS


class Suite:
    """The embedded suite's processes in a temporary data directory."""

    def __init__(self, loops: int, data_dir: Path, args: argparse.Namespace) -> None:
        self.loops = loops
        self.ready_lag_s = ready_lag_s(loops)
        self.dir = data_dir
        self.args = args
        self.api_port = free_port()
        self.diag_port = free_port()
        self.root = Path(args.code_root).resolve()
        self.python = str(self.root / ".venv" / "bin" / "python")
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        inherited = {
            k: v
            for k, v in os.environ.items()  # noqa: TID251 - the bench configures the services
            if k != "PYTHONPATH"  # the services run from their own checkout's environment
        }
        self.env = {
            **inherited,
            "PYTHONUNBUFFERED": "1",
            "CLPM_DATA_DIR": str(data_dir),
            "DATABASE_URL": f"sqlite+aiosqlite:///{data_dir}/clpm.db",
            "TIMESERIES_BACKEND": "embedded",
            "EMBEDDED_TSDB_PATH": str(data_dir / "timeseries.db"),
            "CACHE_BACKEND": "memory",
            "AUTH_MODE": "local",
            "LOCAL_ISSUER_KEY_PATH": str(data_dir / "local-issuer-key.pem"),
            "API_HOST": "127.0.0.1",
            "API_PORT": str(self.api_port),
            "DIAG_HOST": "127.0.0.1",
            "DIAG_PORT": str(self.diag_port),
            "DIAG_SERVICE_URL": f"http://127.0.0.1:{self.diag_port}",
            "OIDC_ISSUER": f"http://127.0.0.1:{self.api_port}/realms/clpm",
            "STREAM_LOG_FILE": "",
            "STREAM_LOOPS": str(loops),
            "KPI_WINDOW_MIN": str(args.kpi_window_min),
            "KPI_CRON_SCHEDULE": f"*/{args.kpi_window_min} * * * *",
            "LOG_LEVEL": "INFO",
        }
        self.services: dict[str, Service] = {}

    def migrate(self) -> None:
        subprocess.run(
            [str(self.root / ".venv" / "bin" / "alembic"), "-c", "migrations/alembic.ini",
             "upgrade", "head"],
            cwd=self.root, env=self.env, check=True, capture_output=True,
        )  # fmt: skip

    def start(self, name: str, arguments: list[str]) -> None:
        """Start ``python -m <arguments>`` of the code root as the service ``name``."""
        log = (self.dir / "logs" / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [self.python, "-m", *arguments], cwd=self.root, env=self.env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.services[name] = Service(name, process)

    def log_has(self, name: str, marks: tuple[str, ...]) -> bool:
        try:
            text = (self.dir / "logs" / f"{name}.log").read_text(errors="replace")
        except OSError:
            return False
        return any(mark in text for mark in marks)

    def last_line(self, name: str) -> str | None:
        """The last line of a service's log (the kpi-worker's run-once prints its figures)."""
        try:
            lines = (self.dir / "logs" / f"{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            return None
        return lines[-1][:600] if lines else None

    def stop(self) -> None:
        for service in self.services.values():
            if service.process.poll() is None:
                os.killpg(service.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for service in self.services.values():
            try:
                service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait()

    def sample_resources(self) -> None:
        for service in self.services.values():
            service.sample()

    # ------------------------------------------------------------------ lags

    def _query(self, db: str, sql: str) -> Any:
        path = self.dir / db
        if not path.exists():
            return None
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as connection:
                return connection.execute(sql).fetchone()
        except sqlite3.Error:
            return None

    def streaming_lag_s(self) -> float | None:
        row = self._query("timeseries.db", "SELECT min(last_ns), count(*) FROM loop_spans")
        if row is None or row[0] is None or row[1] < self.loops:
            return None
        return time.time() - row[0] / _NS

    def aggregation_lag_s(self) -> float | None:
        row = self._query("clpm.db", "SELECT max(bucket_start) FROM agg_1m")
        if row is None or row[0] is None:
            return None
        newest = _parse_time(row[0]) + timedelta(minutes=1)
        return (datetime.now(UTC) - newest).total_seconds()

    def kpi_lag_s(self) -> float | None:
        row = self._query("clpm.db", "SELECT max(window_end) FROM kpi_results")
        if row is None or row[0] is None:
            return None
        window_s = self.args.kpi_window_min * 60
        due = (time.time() // window_s) * window_s
        return max(0.0, due - _parse_time(row[0]).timestamp())

    def loops_ready(self) -> tuple[int, int]:
        """Loops with an agg_1m minute ended at most :func:`ready_lag_s` ago, and loops with a
        KPI of the newest due window (``KPI_WINDOW_MIN`` grid)."""
        now = time.time()
        window_s = self.args.kpi_window_min * 60
        due = (now // window_s) * window_s
        current_agg = current_kpi = 0
        for table, column, is_current in (
            ("agg_1m", "bucket_start", lambda t: now - (t + 60) <= self.ready_lag_s),
            ("kpi_results", "window_end", lambda t: t >= due),
        ):
            rows = self._query_all(
                "clpm.db", f"SELECT loop_id, max({column}) FROM {table} GROUP BY loop_id"
            )
            count = sum(1 for _, newest in rows if is_current(_parse_time(newest).timestamp()))
            if table == "agg_1m":
                current_agg = count
            else:
                current_kpi = count
        return current_agg, current_kpi

    def watermarks_current(self) -> bool:
        """Every loop's aggregation watermark is within :func:`ready_lag_s` of now."""
        row = self._query("clpm.db", "SELECT min(watermark), count(*) FROM loop_watermarks")
        if row is None or row[0] is None or row[1] < self.loops:
            return False
        return time.time() - _parse_time(row[0]).timestamp() <= self.ready_lag_s

    def _query_all(self, db: str, sql: str) -> list[Any]:
        path = self.dir / db
        if not path.exists():
            return []
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as connection:
                return connection.execute(sql).fetchall()
        except sqlite3.Error:
            return []

    def health_ms(self, port: int) -> float | None:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as reply:
                reply.read()
        except OSError:
            return None
        return (time.perf_counter() - started) * 1000


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(str(text))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "p50": round(statistics.median(values), 2),
        "max": round(max(values), 2),
        "last": round(values[-1], 2),
    }


def _wait_until_due(args: argparse.Namespace) -> None:
    """Start right after a KPI window boundary, so every run sees a scheduled cycle."""
    if not args.align:
        return
    window_s = args.kpi_window_min * 60
    wait = window_s - time.time() % window_s + 2
    if wait < window_s - 30:
        time.sleep(wait)


def run_baseline(loops: int, args: argparse.Namespace) -> dict[str, Any]:
    """The simulator alone, live (no history), writing to a fresh embedded store."""
    with tempfile.TemporaryDirectory(prefix="clpm-suite-") as tmp:
        suite = Suite(loops, Path(tmp), args)
        suite.start("data-streaming", ["data_streaming_service"])
        lags: list[float] = []
        started = time.monotonic()
        try:
            while time.monotonic() - started < args.baseline_minutes * 60:
                time.sleep(args.sample_s)
                suite.sample_resources()
                lag = suite.streaming_lag_s()
                if lag is not None:
                    lags.append(lag)
            seconds = time.monotonic() - started
        finally:
            suite.stop()
        service = suite.services["data-streaming"]
        return {
            "seconds": round(seconds, 1),
            "streaming_lag_s": _summary(lags),
            "cpu_s": round(service.cpu_s, 1),
            "cpu_share": round(service.cpu_s / seconds, 3),
            "rss_max_mb": round(service.rss_max_mb, 1),
        }


def run_suite(loops: int, args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="clpm-suite-"))
    suite = Suite(loops, tmp, args)
    result: dict[str, Any] = {"loops": loops}
    try:
        suite.migrate()
        _wait_until_due(args)
        began = time.monotonic()
        history_start = datetime.now(UTC) - timedelta(hours=args.backfill_h)
        suite.start(
            "data-streaming", ["data_streaming_service", "--backfill", str(args.backfill_h)]
        )
        if args.backfill_h <= 0:  # no history: the workers start with the stream
            suite.start("aggregation", ["clpm_aggregation", "run"])
            suite.start("kpi-worker", ["clpm_kpi_worker", "run"])
        suite.start("api-gateway", ["clpm_api_gateway"])
        suite.start("diagnostics", ["clpm_diagnostics"])
        startup: dict[str, float | None] = {
            "history_written_s": None, "aggregation_caught_up_s": None, "kpi_history_s": None,
            "ready_s": None, "whole_history_done_s": None,
        }  # fmt: skip
        ready_counts: list[dict[str, float]] = []
        samples: list[dict[str, float | None]] = []
        steady_from: float | None = None
        while True:
            time.sleep(args.sample_s)
            now = time.monotonic() - began
            for name, service in suite.services.items():
                code = service.process.poll()
                if code is not None and name != "kpi-history":
                    raise RuntimeError(f"{name} exited with {code}; logs in {tmp / 'logs'}")
            if (
                args.backfill_h > 0
                and startup["history_written_s"] is None
                and suite.log_has("data-streaming", HISTORY_MARK)
            ):
                startup["history_written_s"] = round(now, 1)
                end = datetime.now(UTC)
                suite.start("aggregation", ["clpm_aggregation", "run"])
                suite.start(
                    "kpi-history",
                    ["clpm_kpi_worker", "run-once", "--no-progress", "--start",
                     history_start.isoformat(), "--end", end.isoformat()],
                )  # fmt: skip
            history = suite.services.get("kpi-history")
            if (
                history is not None
                and startup["kpi_history_s"] is None
                and history.process.poll() is not None
            ):
                startup["kpi_history_s"] = round(now, 1)
                suite.start("kpi-worker", ["clpm_kpi_worker", "run"])
            suite.sample_resources()
            sample = {
                "t_s": round(now, 1),
                "streaming_lag_s": suite.streaming_lag_s(),
                "aggregation_lag_s": suite.aggregation_lag_s(),
                "kpi_lag_s": suite.kpi_lag_s() if "kpi-worker" in suite.services else None,
                "gateway_health_ms": suite.health_ms(suite.api_port),
                "diagnostics_health_ms": suite.health_ms(suite.diag_port),
            }
            samples.append(sample)
            agg = sample["aggregation_lag_s"]
            if startup["aggregation_caught_up_s"] is None and agg is not None and agg < 180:
                startup["aggregation_caught_up_s"] = round(now, 1)
            if startup["ready_s"] is None:
                current_agg, current_kpi = suite.loops_ready()
                ready_counts.append({"t_s": round(now, 1), "agg": current_agg, "kpi": current_kpi})
                if current_agg >= loops and current_kpi >= loops:
                    startup["ready_s"] = round(now, 1)
            if (
                startup["whole_history_done_s"] is None
                and (startup["kpi_history_s"] is not None or args.backfill_h <= 0)
                and suite.watermarks_current()
            ):
                startup["whole_history_done_s"] = round(now, 1)
            if steady_from is None and (
                startup["kpi_history_s"] is not None or args.backfill_h <= 0
            ):
                steady_from = now
                cpu_at_steady = {n: s.cpu_s for n, s in suite.services.items()}
            if (
                steady_from is not None
                and now - steady_from >= args.minutes * 60
                and startup["ready_s"] is not None
                and startup["whole_history_done_s"] is not None
            ):
                break
            if now > args.startup_limit_min * 60 and (
                steady_from is None
                or startup["ready_s"] is None
                or startup["whole_history_done_s"] is None
            ):
                result["error"] = "start-up did not finish within --startup-limit-min"
                break
        result["startup"] = startup
        result["loops_current_until_ready"] = ready_counts[:: max(1, len(ready_counts) // 30)]
        result["code_root"] = str(suite.root)
        result["kpi_history_run"] = suite.last_line("kpi-history")
        if steady_from is not None:
            steady = [s for s in samples if s["t_s"] is not None and s["t_s"] >= steady_from]
            late = steady[len(steady) // 2 :]
            seconds = samples[-1]["t_s"] - steady_from  # type: ignore[operator]
            steady_cpu = {
                name: round(service.cpu_s - cpu_at_steady.get(name, 0.0), 1)
                for name, service in suite.services.items()
                if name != "kpi-history"
            }
            result["steady"] = {
                "seconds": round(seconds, 1),
                **{key: _summary([v for s in steady if (v := s[key]) is not None]) for key in LAGS},
                "cpu_s": steady_cpu,
                "cpu_share_of_one_core": {
                    n: round(c / max(seconds, 1e-9), 3) for n, c in steady_cpu.items()
                },
            }
            result["keeps_up"] = _keeps_up(late, args)
        result["cpu_s_total"] = {n: round(s.cpu_s, 1) for n, s in suite.services.items()}
        result["rss_max_mb"] = {n: round(s.rss_max_mb, 1) for n, s in suite.services.items()}
        result["timeseries_db_mb"] = round(
            sum(p.stat().st_size for p in tmp.glob("timeseries.db*")) / 1e6, 1
        )
    finally:
        suite.stop()
        if args.keep:
            result["data_dir"] = str(tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def _keeps_up(late: list[dict[str, float | None]], args: argparse.Namespace) -> bool:
    def values(key: str) -> list[float]:
        return [v for s in late if (v := s[key]) is not None]

    stream, agg, kpi = values("streaming_lag_s"), values("aggregation_lag_s"), values("kpi_lag_s")
    if not stream or not agg:
        return False
    growing = len(agg) >= 4 and min(agg[len(agg) // 2 :]) > max(agg[: len(agg) // 2]) + 30
    return (
        max(stream) < 10
        and max(agg) < 240
        and not growing
        and (not kpi or max(kpi) <= args.kpi_window_min * 60)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loops", type=int, nargs="+", default=[500, 2000],
                        help="simulated loops at 1 Hz, one suite run per value")  # fmt: skip
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="steady state measured after start-up, minutes")  # fmt: skip
    parser.add_argument("--backfill-h", type=float, default=0.5,
                        help="history the simulator writes at start, hours (0: none; the "
                        "workers start with the stream)")  # fmt: skip
    parser.add_argument("--kpi-window-min", type=int, default=15,
                        help="KPI_WINDOW_MIN (the schedule follows: every window)")  # fmt: skip
    parser.add_argument("--baseline-minutes", type=float, default=2.0,
                        help="simulator alone before each suite run (0: none)")  # fmt: skip
    parser.add_argument("--sample-s", type=float, default=10.0, help="sampling period, s")
    parser.add_argument("--startup-limit-min", type=float, default=30.0,
                        help="give up when start-up takes longer")  # fmt: skip
    parser.add_argument("--align", action="store_true",
                        help="start each run just after a KPI window boundary")  # fmt: skip
    parser.add_argument("--code-root", default=str(ROOT),
                        help="checkout whose services (and .venv, migrations) run; default: "
                        "this one")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args()
    report: dict[str, Any] = {"cpus": os.cpu_count(), "load_at_start": os.getloadavg()[0],
                              "runs": []}  # fmt: skip
    for loops in args.loops:
        run: dict[str, Any] = {"loops": loops}
        if args.baseline_minutes > 0:
            run["baseline_simulator_alone"] = run_baseline(loops, args)
        run["suite"] = run_suite(loops, args)
        report["runs"].append(run)
        print(json.dumps(run), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
