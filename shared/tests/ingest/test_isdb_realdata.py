"""Real plant data end to end: the ISDB loops of ../shared/realdata, written out as a folder of
historian exports (one wide CSV per loop at its own sample time), imported by the command line
into the embedded store and the catalogue, and through the importer into influxd; the stored
OP series must equal the recorded ones sample for sample.

The reference data is read by the test only (the project never needs it); without it the test
fails rather than skips.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from sqlalchemy import select

from clpm_shared.db import Loop, LoopConfig, create_engine, create_session_factory
from clpm_shared.ingest.importer import ImportOptions, import_exports
from clpm_shared.ingest.tag_map import load_tag_map
from clpm_shared.ingest.writer import SeriesWriter
from clpm_shared.timeseries import EmbeddedStore, TimeSeriesStore
from tests.harness.servers import REPO_ROOT

REALDATA = REPO_ROOT.parent / "shared" / "realdata"
NS = 1_000_000_000
END = datetime(2026, 12, 1, tzinfo=UTC)


def _isdb() -> tuple[list[dict[str, str]], dict[str, np.ndarray]]:
    catalogue = REALDATA / "isdb_oscillation_dev.csv"
    assert catalogue.is_file(), f"reference data missing: {catalogue}"
    with catalogue.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with np.load(REALDATA / "isdb_oscillation_dev.npz") as arrays:
        ops = {row["loop"]: np.asarray(arrays[f"{row['loop']}__op"], float) for row in rows}
    return rows, ops


def _times(row: dict[str, str], n: int) -> np.ndarray:
    step = int(float(row["sample_time_s"]) * NS)
    end_ns = int(END.timestamp()) * NS
    return end_ns - step * np.arange(n - 1, -1, -1, dtype=np.int64)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """A folder of exports (ISO timestamps, UTC) and their tag map."""
    rows, ops = _isdb()
    folder = tmp_path_factory.mktemp("isdb")
    exports = folder / "exports"
    exports.mkdir()
    lines = ["loop_id,pv_tag,op_tag,loop_type,unit,description"]
    for row in rows:
        name, op = row["loop"], ops[row["loop"]]
        stamps = pa.array(_times(row, len(op)), pa.timestamp("ns", "UTC"))
        text = pa.compute.strftime(stamps, format="%Y-%m-%dT%H:%M:%SZ")
        pa_csv.write_csv(pa.table({"timestamp": text, f"{name}.OP": op}),
                         exports / f"{name}.csv")  # fmt: skip
        description = row["isdb_description"][:200].replace('"', "'")
        loop_type = row["loop_type"] if row["loop_type"] != "unknown" else "other"
        lines.append(f'ISDB_{name},{name}.PV,{name}.OP,{loop_type},{row["sector"]},"{description}"')
    tag_map = folder / "tag_map.csv"
    tag_map.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return exports, tag_map, ops


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clpm_shared.ingest", *args, "--no-progress"],
        capture_output=True, text=True, cwd=cwd, check=False, timeout=600,
    )  # fmt: skip


async def _assert_stored(store: TimeSeriesStore, ops: dict[str, np.ndarray]) -> None:
    rows, _ = _isdb()
    for row in rows:
        op = ops[row["loop"]]
        start = END - timedelta(seconds=float(row["sample_time_s"]) * len(op))
        loop_id = f"ISDB_{row['loop']}"
        found = await store.query_raw_many([loop_id], start, END + timedelta(seconds=1))
        series = found[loop_id]
        assert series.t_ns.tolist() == _times(row, len(op)).tolist(), row["loop"]
        np.testing.assert_array_equal(series.op, op, err_msg=row["loop"])
        assert np.isnan(series.pv).all()


async def test_isdb_exports_import_by_command_into_the_embedded_store_and_catalogue(
    exports: tuple[Path, Path, dict[str, np.ndarray]],
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder, tag_map, ops = exports
    env = {
        "TIMESERIES_BACKEND": "embedded",
        "EMBEDDED_TSDB_PATH": str(tmp_path / "timeseries.db"),
        "EMBEDDED_RETENTION_DAYS": "0",
        "DATABASE_URL": postgres_url,
    }
    for name, value in env.items():  # the command reads its settings from the environment
        monkeypatch.setenv(name, value)
    dry = _cli([str(folder), "--tag-map", str(tag_map), "--dry-run"], tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert f"of {len(ops)} loops valid; nothing written" in dry.stdout
    assert "not in this file" in dry.stdout  # the PV tags: ISDB recorded OP only
    assert not (tmp_path / "timeseries.db").exists()

    done = _cli([str(folder), "--tag-map", str(tag_map)], tmp_path)
    assert done.returncode == 0, done.stderr
    total = sum(len(op) for op in ops.values())
    assert f"imported {total} values ({total} samples) of {len(ops)} loops" in done.stdout
    assert "next: python -m clpm_kpi_worker run-once --start" in done.stdout
    store = EmbeddedStore(tmp_path / "timeseries.db")
    try:
        await _assert_stored(store, ops)
        assert len(await store.discover_loops()) == len(ops)
    finally:
        await store.close()

    engine = create_engine(postgres_url)
    async with create_session_factory(engine)() as session:
        loops = (await session.execute(select(Loop))).scalars().all()
        configs = (await session.execute(select(LoopConfig))).scalars().all()
    await engine.dispose()
    assert {loop.loop_id for loop in loops} == {f"ISDB_{name}" for name in ops}
    assert {loop.data_source for loop in loops} == {"import"}
    chem = next(loop for loop in loops if loop.loop_id == "ISDB_CHEM14")
    assert (chem.unit, chem.data_source_detail.count(".csv")) == ("CHEM", len(ops))
    assert {c.loop_type for c in configs} <= {"flow", "pressure", "level", "temperature", "other"}


async def test_isdb_exports_import_into_influxd(
    exports: tuple[Path, Path, dict[str, np.ndarray]], store: TimeSeriesStore
) -> None:
    folder, tag_map, ops = exports
    files = sorted(folder.iterdir())
    report = await import_exports(files, load_tag_map(tag_map), SeriesWriter(store),
                                  ImportOptions())  # fmt: skip
    assert report.written_values == sum(len(op) for op in ops.values())
    await _assert_stored(store, ops)
