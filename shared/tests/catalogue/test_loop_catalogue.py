"""Loop list import: validation names row and column; import upserts loops and loop_config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from clpm_shared.db import Loop, LoopConfig, create_engine, create_session_factory
from clpm_shared.loop_catalogue import (
    CatalogueError,
    import_catalogue,
    parse_catalogue,
    read_catalogue,
)
from tests.harness.servers import REPO_ROOT

DEMO_PLANT = REPO_ROOT / "deploy" / "local" / "demo-plant.csv"
HEADER = "loop_id,name,unit,area,loop_type,criticality,apc_enabled,apc_modes,op_hi\n"


def test_the_demo_plant_file_is_valid_and_covers_the_simulated_loops() -> None:
    entries = read_catalogue(DEMO_PLANT)
    ids = {e.loop_id for e in entries}
    assert {"TIC208030", "TIC208031", "TIC208032", "TIC208033", "TIC208034"} <= ids
    assert len({e.unit for e in entries}) >= 3  # roll-ups by unit have something to show
    for entry in entries:  # every loop has its transmitter range: no span is estimated
        assert entry.pv_lo is not None, entry.loop_id
        assert entry.pv_hi is not None, entry.loop_id
        assert entry.pv_lo < entry.pv_hi


def test_pv_range_needs_both_limits_in_order(tmp_path: Path) -> None:
    path = tmp_path / "plant.csv"
    path.write_text("loop_id,pv_lo,pv_hi\nTIC1,0,500\nTIC2,0,\nTIC3,500,0\nTIC4,,\n")
    with pytest.raises(CatalogueError) as caught:
        read_catalogue(path)
    assert len(caught.value.lines) == 2
    assert caught.value.lines == [
        "row 3: pv_lo and pv_hi: give both limits of the PV range, or neither",
        "row 4: pv_hi: must be greater than pv_lo",
    ]
    path.write_text("loop_id,pv_lo,pv_hi\nTIC1,0,500\nTIC4,,\n")
    first, second = read_catalogue(path)
    assert first.config_values() == {"pv_lo": 0.0, "pv_hi": 500.0}
    assert second.config_values() == {}


def test_invalid_rows_are_reported_with_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "plant.csv"
    path.write_text(
        HEADER
        + "FIC1,Feed,U1,A,flow,9,false,,100\n"
        + "bad id!,X,U1,A,flow,3,false,,100\n"
        + "FIC2,Y,U1,A,steam,3,false,,100\n"
        + "FIC1,Dup,U1,A,flow,3,false,,100\n"
    )
    with pytest.raises(CatalogueError) as caught:
        read_catalogue(path)
    lines = caught.value.lines
    assert any(line.startswith("row 2: criticality:") for line in lines)
    assert any(line.startswith("row 3: loop_id:") for line in lines)
    assert any(line.startswith("row 4: loop_type:") for line in lines)
    assert any(line.startswith("row 5: loop_id: duplicate") for line in lines)


async def test_import_upserts_loops_and_config_and_can_be_repeated(
    postgres_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "plant.csv"
    path.write_text(HEADER + "FIC9,Feed flow,U1,Area 1,flow,5,true,CAS;AUT,80\n")
    entries = read_catalogue(path)
    assert await import_catalogue(postgres_url, entries) == 1
    assert await import_catalogue(postgres_url, entries) == 1  # idempotent
    engine = create_engine(postgres_url)
    async with create_session_factory(engine)() as session:
        loop = (await session.execute(select(Loop).where(Loop.loop_id == "FIC9"))).scalar_one()
        config = (
            await session.execute(select(LoopConfig).where(LoopConfig.loop_id == "FIC9"))
        ).scalar_one()
    await engine.dispose()
    assert (loop.name, loop.unit, loop.area) == ("Feed flow", "U1", "Area 1")
    assert (config.loop_type, config.criticality, config.apc_enabled) == ("flow", 5, True)
    assert config.apc_modes == ["CAS", "AUT"]
    assert config.op_hi == 80.0
    assert config.op_lo == 0.0  # empty cell / absent column keeps the default


def test_cli_dry_run_validates_without_writing_and_bad_file_exits_2(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "clpm_shared.loop_catalogue", str(DEMO_PLANT), "--dry-run"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "12 loops valid" in ok.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "FIC1,Feed,U1,A,flow,0,false,,100\n")
    failed = subprocess.run(
        [sys.executable, "-m", "clpm_shared.loop_catalogue", str(bad)],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert failed.returncode == 2
    assert "row 2: criticality" in failed.stderr


@pytest.mark.parametrize(
    ("text", "json_list", "problem"),
    [
        ('"AAA"', True, "loops: expected a list of loop objects"),
        ('{"loops": 3}', True, "loops: expected a list of loop objects"),
        ("[1]", True, "row: expected an object"),
        ("loop_id\n" + "x" * 200_000 + "\n", False, "csv: field larger than field limit (131072)"),
    ],
)
def test_lists_of_the_wrong_shape_are_refused_with_a_reason(
    text: str, json_list: bool, problem: str
) -> None:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(text, json_list=json_list)
    assert caught.value.lines[0].split(": ", 1)[1] == problem
