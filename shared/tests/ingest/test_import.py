"""Import into the real stores: wide, long and Parquet exports, scaling, modes, quality,
idempotence, all-or-nothing, skipped rows, dry run, and the catalogue."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from clpm_shared.db import Loop, LoopConfig, create_engine, create_session_factory
from clpm_shared.ingest import readers
from clpm_shared.ingest.catalogue import register_imported_loops
from clpm_shared.ingest.importer import ImportOptions, ImportRejectedError, import_exports
from clpm_shared.ingest.tag_map import parse_tag_map_csv
from clpm_shared.ingest.writer import SeriesWriter
from clpm_shared.timeseries import RawSeries, TimeSeriesStore

NS = 1_000_000_000
T0 = 1_709_287_200 * NS  # 2024-03-01T10:00:00Z
WINDOW = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
TAG_MAP = parse_tag_map_csv(
    "loop_id,pv_tag,sp_tag,op_tag,mode_tag,pv_scale,pv_offset,op_scale,op_offset,mode_map,"
    "units,loop_type,unit,area,pv_lo,pv_hi\n"
    "FIC1,FIC1.PV,FIC1.SP,FIC1.OP,FIC1.MODE,10,1,100,0,0=MAN;1=AUT;2=CAS,m3/h,flow,U1,A1,0,50\n"
    "TIC2,TIC2.PV,,,,,,,,,,,,,,\n"
)
WIDE = (
    "Time;FIC1.PV;FIC1.SP;FIC1.OP;FIC1.MODE;FIC1.PV Status;TIC2.PV;OTHER\n"
    "01.03.2024 11:00:00;1,5;2;0,30;1;Good;100;9\n"
    "01.03.2024 11:00:01;1,6;2;0,31;1;Bad;101;9\n"
    "01.03.2024 11:00:02;Bad Input;2;0,32;0;Good;102;9\n"
    "\n"
    "01.03.2024 11:00:03;1,8;2;0,33;2;192;;9\n"
)


async def _raw(store: TimeSeriesStore, loop_id: str) -> RawSeries:
    page = await store.query_raw(loop_id, *WINDOW, fields=["PV", "SP", "OP", "Mode"])
    return page.series


async def _import(store: TimeSeriesStore | None, paths: list[Path], **options: object):  # type: ignore[no-untyped-def]
    writer = None if store is None else SeriesWriter(store)
    return await import_exports(paths, TAG_MAP, writer, ImportOptions(**options))  # type: ignore[arg-type]


async def test_wide_csv_is_scaled_moded_and_bad_quality_is_not_stored(
    store: TimeSeriesStore, tmp_path: Path
) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(WIDE, encoding="utf-8")
    report = await _import(store, [path], timezone="Europe/Berlin")
    fic = await _raw(store, "FIC1")
    assert fic.t_ns.tolist() == [T0, T0 + NS, T0 + 2 * NS, T0 + 3 * NS]
    np.testing.assert_allclose(fic.pv, [16.0, np.nan, np.nan, 19.0])  # 10 * raw + 1
    np.testing.assert_allclose(fic.sp, [21.0] * 4)  # SP on the PV scale
    np.testing.assert_allclose(fic.op, [30.0, 31.0, 32.0, 33.0])  # 100 * raw
    assert fic.mode.tolist() == ["AUT", "AUT", "MAN", "CAS"]
    tic = await _raw(store, "TIC2")
    assert tic.pv.tolist() == [100.0, 101.0, 102.0]
    assert report.bad_quality == 2  # "Bad" status column and "Bad Input" text
    assert report.files[0].unmapped_tags == {"OTHER"}
    assert report.written_samples == 7
    assert await store.discover_loops() == ["FIC1", "TIC2"]


async def test_importing_the_same_file_twice_stores_nothing_twice(
    store: TimeSeriesStore, tmp_path: Path
) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(WIDE, encoding="utf-8")
    await _import(store, [path], timezone="Europe/Berlin")
    first = await _raw(store, "FIC1")
    await _import(store, [path], timezone="Europe/Berlin")
    second = await _raw(store, "FIC1")
    assert len(second) == len(first) == 4
    np.testing.assert_array_equal(second.op, first.op)
    assert second.mode.tolist() == first.mode.tolist()
    assert len(await _raw(store, "TIC2")) == 3


async def test_long_csv_merges_fields_and_modes_from_separate_rows(
    store: TimeSeriesStore, tmp_path: Path
) -> None:
    # sorted by tag, the way historians export: the mode rows come after the PV rows
    path = tmp_path / "long.csv"
    path.write_text(
        "tag,timestamp,value,quality\n"
        "FIC1.MODE,2024-03-01T10:00:00Z,1,good\n"
        "FIC1.MODE,2024-03-01T10:00:02Z,0,good\n"
        "FIC1.OP,2024-03-01T10:00:00Z,0.5,good\n"
        "FIC1.OP,2024-03-01T10:00:01Z,0.6,bad\n"
        "FIC1.OP,2024-03-01T10:00:02Z,0.7,good\n"
        "FIC1.PV,2024-03-01T10:00:00Z,2,good\n"
        "FIC1.PV,2024-03-01T10:00:01Z,3,\n"
        "FIC1.PV,2024-03-01T10:00:02Z,4,good\n"
        "XYZ.PV,2024-03-01T10:00:02Z,4,good\n",
        encoding="utf-8",
    )
    report = await _import(store, [path])
    fic = await _raw(store, "FIC1")
    assert fic.t_ns.tolist() == [T0, T0 + NS, T0 + 2 * NS]
    np.testing.assert_allclose(fic.pv, [21.0, 31.0, 41.0])
    np.testing.assert_allclose(fic.op, [50.0, np.nan, 70.0])
    assert fic.mode.tolist() == ["AUT", "AUT", "MAN"]
    assert report.bad_quality == 1
    assert report.files[0].unmapped_tags == {"XYZ.PV"}


async def test_parquet_with_timestamp_column(store: TimeSeriesStore, tmp_path: Path) -> None:
    path = tmp_path / "export.parquet"
    times = pa.array(np.arange(3, dtype=np.int64) * NS + T0, pa.timestamp("ns", "UTC"))
    pq.write_table(
        pa.table(
            {
                "timestamp": times,
                "FIC1.PV": [1.0, 2.0, None],
                "FIC1.MODE": [2, 2, 1],
                "TIC2.PV": [5.0, 6.0, 7.0],
            }
        ),
        path,
    )
    await _import(store, [path])
    fic = await _raw(store, "FIC1")
    np.testing.assert_allclose(fic.pv, [11.0, 21.0])
    assert fic.mode.tolist() == ["CAS", "CAS"]
    assert (await _raw(store, "TIC2")).pv.tolist() == [5.0, 6.0, 7.0]


async def test_a_file_with_errors_is_refused_whole_with_line_column_and_reason(
    store: TimeSeriesStore, tmp_path: Path
) -> None:
    good = tmp_path / "a_good.csv"
    good.write_text("timestamp,TIC2.PV\n2024-03-01T10:00:00Z,1\n", encoding="utf-8")
    bad = tmp_path / "b_bad.csv"
    bad.write_text(
        "timestamp,FIC1.PV,FIC1.MODE\n"
        "2024-03-01T10:00:00Z,1,1\n"
        "2024-03-01T10:00:01Z,one,1\n"
        "2024-03-01T10:00:02Z,1,7\n"
        "2024-03-01T10:00:03Z,1,1,extra\n"
        "not a time,1,1\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejectedError) as caught:
        await _import(store, [good, bad])
    problems = [str(p) for p in caught.value.report.problems]
    assert problems == [
        "b_bad.csv: line 6: timestamp: cannot read timestamp 'not a time'",
        "b_bad.csv: line 3: FIC1.PV: not a number: 'one'",
        "b_bad.csv: line 4: FIC1.MODE: unknown mode value '7'",
        "b_bad.csv: line 5: row: wrong number of cells: '2024-03-01T10:00:03Z,1,1,extra'",
    ]
    assert await store.discover_loops() == []  # nothing at all, not even the good file


def _many_blocks(path: Path, rows: int, pv_offset: float, last_line: str = "") -> None:
    """A wide export of ``rows`` seconds that Arrow reads in many blocks (see the fixture)."""
    lines = ["timestamp,FIC1.PV,FIC1.MODE,TIC2.PV"]
    lines += [
        f"{datetime.fromtimestamp(T0 // NS + i, UTC):%Y-%m-%dT%H:%M:%SZ},{i + pv_offset},1,{i}"
        for i in range(rows)
    ]
    path.write_text("\n".join([*lines, last_line]) + "\n", encoding="utf-8")


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 4096)  # a few dozen rows a block


@pytest.mark.usefixtures("small_blocks")
async def test_an_error_in_the_last_block_leaves_the_store_as_it_was(
    store: TimeSeriesStore, tmp_path: Path
) -> None:
    first = tmp_path / "first.csv"
    _many_blocks(first, 2000, 0.0)
    await _import(store, [first])
    before = await _raw(store, "FIC1")
    second = tmp_path / "second.csv"  # the same times with other values, then a bad line
    _many_blocks(second, 2000, 0.5, last_line="2024-03-01T11:00:00Z,oops,1,1")
    with pytest.raises(ImportRejectedError) as caught:
        await _import(store, [second])
    assert [str(p) for p in caught.value.report.problems] == [
        "second.csv: line 2002: FIC1.PV: not a number: 'oops'"
    ]
    after = await _raw(store, "FIC1")
    assert after.t_ns.tolist() == before.t_ns.tolist()
    np.testing.assert_array_equal(after.pv, before.pv)
    assert len(await _raw(store, "TIC2")) == 2000


@pytest.mark.usefixtures("small_blocks")
async def test_a_file_of_many_blocks_imported_twice_stores_each_sample_once(
    store: TimeSeriesStore, tmp_path: Path
) -> None:
    path = tmp_path / "many.csv"
    _many_blocks(path, 2000, 0.0)
    for _ in range(2):
        report = await _import(store, [path])
        assert report.written_samples == 4000  # 2,000 rows x 2 loops, each time
    fic = await _raw(store, "FIC1")
    assert fic.t_ns.tolist() == [T0 + i * NS for i in range(2000)]
    np.testing.assert_allclose(fic.pv, np.arange(2000) * 10.0 + 1.0)
    assert set(fic.mode.tolist()) == {"AUT"}
    assert len(await _raw(store, "TIC2")) == 2000


async def test_skip_bad_rows_imports_the_rest_and_counts(
    store: TimeSeriesStore, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "timestamp,FIC1.PV\n2024-03-01T10:00:00Z,1\n2024-03-01T10:00:01Z,one\n"
        "2024-03-01T10:00:02Z,3\n",
        encoding="utf-8",
    )
    report = await _import(store, [bad], skip_bad_rows=True)
    assert report.bad_rows == 1
    assert (await _raw(store, "FIC1")).pv.tolist() == [11.0, 31.0]


async def test_dry_run_reports_and_writes_nothing(store: TimeSeriesStore, tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(WIDE, encoding="utf-8")
    report = await _import(None, [path], timezone="Europe/Berlin")
    assert report.dry_run
    assert report.loops["FIC1"].samples == 4
    assert report.values == 17
    assert any(line.startswith("loop FIC1: 4 samples 2024-03-01T10:00:00Z") for line in
               report.summary_lines())  # fmt: skip
    assert await store.discover_loops() == []


async def test_imported_loops_enter_the_catalogue_marked_as_imported(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    sessions = create_session_factory(engine)
    for _ in range(2):  # a second import updates, it does not duplicate
        async with sessions() as session, session.begin():
            assert await register_imported_loops(session, TAG_MAP, ["FIC1"], "wide.csv") == 1
    async with sessions() as session:
        loops = (await session.execute(select(Loop))).scalars().all()
        config = (await session.execute(select(LoopConfig))).scalar_one()
    await engine.dispose()
    assert [(x.loop_id, x.unit, x.area, x.engineering_units) for x in loops] == [
        ("FIC1", "U1", "A1", "m3/h")
    ]
    assert (loops[0].data_source, loops[0].data_source_detail) == ("import", "wide.csv")
    assert (config.loop_type, config.pv_lo, config.pv_hi) == ("flow", 0.0, 50.0)
