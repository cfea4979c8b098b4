"""Alert evaluation per KPI cycle for N loops: the pure evaluation, and the whole step of the
KPI worker (read the stored windows, evaluate, write alerts / outbox / inbox) on PostgreSQL.

`PYTHONPATH=. .venv/bin/python bench/alert_evaluation.py --loops 10000 --rules 20`

The fleet: N loops in 50 units and 10 areas, health uniform in [0, 100], statuses from the
health, a previous window with a different status for 10 % of the loops, a finding in 5 %,
stale data in 2 %. Rules: a mix of every condition and scope (health below 40 fleet-wide,
below 60 per unit, findings, status changes, stale data, heartbeats), inbox + e-mail +
webhook channels. Measured: the first cycle (alerts opened, notices written) and a steady
cycle (the same state again: everything held, nothing written to the outbox), against the
target of 2 s per cycle; then deleting the rule with the most alerts (its cascade).

`--baseline REV` also times the write path of git revision REV (its
``clpm_shared/db/repositories/alerts.py``, loaded beside the current one) on the same database:
`--rounds` first + steady cycles of each, interleaved (ABBA), the alerts emptied before each
first cycle, so both see the same data and the same machine load.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import inspect
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from sqlalchemy import select, text

from clpm_kpi_worker import alerting
from clpm_kpi_worker.alerting import evaluate_alerts
from clpm_shared.alerts import AlertRule, FleetState, OpenAlert, evaluate
from clpm_shared.config import AlertSettings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.models import DiagnosticResult, KpiResult, Loop
from clpm_shared.db.repositories import alerts as current_alerts
from clpm_shared.db.repositories import upsert_rows
from clpm_shared.db.repositories.alerts import AlertRuleRepository
from clpm_shared.db.repositories.heartbeats import HeartbeatRepository
from tests.harness.servers import migrate, start_postgres

WINDOW = timedelta(minutes=15)
END = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)
NOW = END + timedelta(minutes=2)
TARGET_S = 2.0


def _status(health: float) -> str:
    return (
        "good"
        if health >= 80
        else "fair"
        if health >= 60
        else "poor"
        if health >= 40
        else "critical"
    )


def fleet_rows(n: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    rng = np.random.default_rng(seed)
    health = rng.uniform(0, 100, n)
    rows: list[dict[str, Any]] = []
    findings: dict[str, list[str]] = {}
    for i in range(n):
        loop_id = f"FIC{i:05d}"
        status = _status(float(health[i]))
        previous = "good" if rng.random() < 0.1 and status != "good" else status
        stale = rng.random() < 0.02
        rows.append(
            {
                "loop_id": loop_id,
                "unit": f"U{i % 50:02d}",
                "area": f"A{i % 10}",
                "health": float(health[i]),
                "status": status,
                "previous_status": previous,
                "last_data_at": (NOW - timedelta(hours=3)).timestamp()
                if stale
                else END.timestamp(),
            }
        )
        if rng.random() < 0.05:
            findings[loop_id] = ["stiction" if i % 2 else "oscillation"]
    return rows, findings


def rule_values(count: int) -> list[dict[str, Any]]:
    kinds: list[dict[str, Any]] = [
        {"scope": "fleet", "condition": "health_below", "threshold": 40.0, "renotify_s": 3600.0},
        {"scope": "unit", "scope_value": "U07", "condition": "health_below", "threshold": 60.0},
        {"scope": "fleet", "condition": "finding", "categories": ["stiction"]},
        {"scope": "area", "scope_value": "A3", "condition": "finding"},
        {"scope": "fleet", "condition": "status_change", "statuses": ["poor", "critical"]},
        {"scope": "fleet", "condition": "stale_data", "threshold": 1800.0},
        {"scope": "fleet", "condition": "heartbeat_missing", "threshold": 300.0},
        {"scope": "fleet", "condition": "health_below", "threshold": 20.0, "for_s": 1800.0},
    ]
    out = []
    for k in range(count):
        values = dict(kinds[k % len(kinds)])
        values.update(
            name=f"rule {k}",
            channels=["inbox", "email", "webhook"],
            recipients=["alice", "bob"],
            emails=["ops@plant.example"],
            webhook_url="https://hooks.example/clpm",
        )
        out.append(values)
    return out


def bench_pure(n: int, n_rules: int, repeats: int) -> dict[str, Any]:
    rows, findings = fleet_rows(n, 1)
    fleet = FleetState.from_rows(
        rows,
        {k: frozenset(v) for k, v in findings.items()},
        {"kpi-worker": NOW.timestamp() - 30, "aggregation": NOW.timestamp() - 900},
    )
    rules = [
        AlertRule(
            rule_id=k + 1,
            **{
                key: tuple(value) if isinstance(value, list) else value
                for key, value in values.items()
            },
        )
        for k, values in enumerate(rule_values(n_rules))
    ]
    first_times, steady_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        first = evaluate(rules, fleet, [], NOW)
        first_times.append(time.perf_counter() - started)
    open_alerts = [
        OpenAlert(i, a.rule_id, a.loop_id, a.key, a.state, NOW, NOW if a.notify else None)
        for i, a in enumerate(first.new)
    ]
    for _ in range(repeats):
        started = time.perf_counter()
        steady = evaluate(rules, fleet, open_alerts, NOW + timedelta(minutes=15))
        steady_times.append(time.perf_counter() - started)
    return {
        "alerts_opened": len(first.new),
        "first_cycle_s": round(statistics.median(first_times), 4),
        "steady_cycle_s": round(statistics.median(steady_times), 4),
        "steady_held": len(steady.held),
        "steady_notices": steady.notices,
    }


async def bench_database(url: str, n: int, n_rules: int) -> dict[str, Any]:
    rows, findings = fleet_rows(n, 1)
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    async with sessions() as session, session.begin():
        await upsert_rows(
            session,
            Loop.__table__,  # type: ignore[arg-type]
            [{"loop_id": r["loop_id"], "name": r["loop_id"], "unit": r["unit"], "area": r["area"]}
             for r in rows],
            ["loop_id"],
        )  # fmt: skip
        kpis = []
        for r in rows:
            last = datetime.fromtimestamp(r["last_data_at"], UTC)
            for end, status, health in (
                (END - WINDOW, r["previous_status"], r["health"]),
                (END, r["status"], r["health"]),
            ):
                kpis.append(
                    {
                        "loop_id": r["loop_id"],
                        "window_start": end - WINDOW,
                        "window_end": end,
                        "samples": 900 if end <= last else 0,
                        "health_score": health,
                        "status": status,
                    }
                )
        for offset in range(0, len(kpis), 5000):
            await upsert_rows(
                session,
                KpiResult.__table__,  # type: ignore[arg-type]
                kpis[offset : offset + 5000],
                ["loop_id", "window_start"],
            )
        await upsert_rows(
            session,
            DiagnosticResult.__table__,  # type: ignore[arg-type]
            [
                {"loop_id": loop_id, "window_start": END - WINDOW, "category": c,
                 "window_end": END, "severity": 0.5, "confidence": 0.9, "evidence": {},
                 "recommendation": "", "trigger": "kpi_cycle"}
                for loop_id, categories in findings.items()
                for c in categories
            ],
            ["loop_id", "window_start", "category"],
        )  # fmt: skip
        await HeartbeatRepository(session, "kpi-worker").beat("a", NOW, {})
        await HeartbeatRepository(session, "aggregation").beat("b", NOW - timedelta(hours=1), {})
        for values in rule_values(n_rules):
            await AlertRuleRepository(session).create(values, "bench")
    loop_ids = [r["loop_id"] for r in rows]
    settings = AlertSettings()
    first = await evaluate_alerts(sessions, settings, loop_ids, END, WINDOW, NOW)
    steady = await evaluate_alerts(
        sessions, settings, loop_ids, END, WINDOW, NOW + timedelta(minutes=1)
    )
    steady2 = await evaluate_alerts(
        sessions, settings, loop_ids, END, WINDOW, NOW + timedelta(minutes=2)
    )
    rule_delete = await delete_busiest_rule(sessions)
    await engine.dispose()
    return {
        "first_cycle_s": round(first.seconds, 3),
        "first_cycle": {k: v for k, v in first.__dict__.items() if k != "seconds"},
        "steady_cycle_s": round(min(steady.seconds, steady2.seconds), 3),
        "steady_cycle": {k: v for k, v in steady.__dict__.items() if k != "seconds"},
        "rule_delete": rule_delete,
    }


async def delete_busiest_rule(sessions: Any) -> dict[str, Any]:
    """Time deleting the rule with the most alerts (the cascade to its alerts, their outbox
    rows and inbox entries), rolled back."""
    async with sessions() as session:
        rule_id, alerts = (
            await session.execute(
                text(
                    "SELECT rule_id, count(*) FROM alert_events GROUP BY rule_id "
                    "ORDER BY 2 DESC LIMIT 1"
                )
            )
        ).one()
        started = time.perf_counter()
        await session.execute(text("DELETE FROM alert_rules WHERE id = :id"), {"id": rule_id})
        seconds = time.perf_counter() - started
        await session.rollback()
    return {"alerts": alerts, "seconds": round(seconds, 3)}


def load_baseline(revision: str) -> ModuleType:
    """The alert repository module of git ``revision``, importable beside the current one."""
    source = subprocess.run(
        ["git", "show", f"{revision}:shared/src/clpm_shared/db/repositories/alerts.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "alerts_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("alerts_baseline", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the alert repository of {revision}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["alerts_baseline"] = module
    spec.loader.exec_module(module)
    return module


def _without_digests(repository: type[Any]) -> type[Any]:
    """``repository`` as it is, or, from a revision without digests, one whose ``apply``
    drops the digest arguments (every notice is written on its own, as it was then)."""
    if "digest_threshold" in inspect.signature(repository.apply).parameters:
        return repository

    class Undigested(repository):  # type: ignore[misc,valid-type]
        async def apply(self, evaluation: Any, rules: Any, now: Any, **_: Any) -> Any:
            return await super().apply(evaluation, rules, now)

    return Undigested


async def compare(url: str, baseline: ModuleType, rounds: int) -> dict[str, Any]:
    """First and steady cycles with the baseline's and the current writes, interleaved."""
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    async with sessions() as session:
        loop_ids = list((await session.execute(select(Loop.loop_id))).scalars())
    settings = AlertSettings()
    times: dict[str, list[tuple[float, float]]] = {"baseline": [], "current": []}
    variants = {
        "baseline": _without_digests(baseline.AlertEventRepository),
        "current": current_alerts.AlertEventRepository,
    }
    try:
        for k in range(rounds):
            order = ["baseline", "current"] if k % 2 == 0 else ["current", "baseline"]
            for name in order:
                async with sessions() as session, session.begin():
                    # not DELETE: the baseline's many outbox and inbox rows make its cascade
                    # slow (and before their event_id indexes, a scan of both per alert)
                    await session.execute(text("TRUNCATE alert_events CASCADE"))
                alerting.AlertEventRepository = variants[name]
                first = await evaluate_alerts(sessions, settings, loop_ids, END, WINDOW, NOW)
                steady = await evaluate_alerts(
                    sessions, settings, loop_ids, END, WINDOW, NOW + timedelta(minutes=1)
                )
                times[name].append((first.seconds, steady.seconds))
    finally:
        alerting.AlertEventRepository = current_alerts.AlertEventRepository
        await engine.dispose()

    def summary(values: list[float]) -> dict[str, float]:
        return {
            "median": round(statistics.median(values), 2),
            "min": round(min(values), 2),
            "max": round(max(values), 2),
        }

    return {
        name: {
            "first_cycle_s": summary([f for f, _ in pairs]),
            "steady_cycle_s": summary([s for _, s in pairs]),
        }
        for name, pairs in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-database", action="store_true")
    parser.add_argument("--baseline", help="git revision whose alert writes to compare")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per variant")
    args = parser.parse_args()
    baseline = load_baseline(args.baseline) if args.baseline else None
    result: dict[str, Any] = {
        "loops": args.loops,
        "rules": args.rules,
        "target_s": TARGET_S,
        "pure": bench_pure(args.loops, args.rules, args.repeats),
    }
    if not args.no_database:
        pg = start_postgres("bench-pg-")
        try:
            pg.psql('CREATE DATABASE "bench"')
            url = pg.url("bench")
            migrate(url)
            result["postgresql"] = asyncio.run(bench_database(url, args.loops, args.rules))
            if baseline is not None:
                result["compared"] = {"baseline": args.baseline, "rounds": args.rounds}
                result["compared"].update(asyncio.run(compare(url, baseline, args.rounds)))
        finally:
            pg.stop()
            shutil.rmtree(pg.workdir, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
