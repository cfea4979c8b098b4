"""Tag map: CSV and JSON parse to the same loops; every fault names its line, column and reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clpm_shared.ingest.tag_map import (
    LoopTags,
    TagMap,
    TagMapError,
    load_tag_map,
    parse_tag_map_csv,
    parse_tag_map_json,
)

CSV = (
    "loop_id,pv_tag,sp_tag,op_tag,mode_tag,pv_scale,pv_offset,op_scale,op_offset,pv_lo,pv_hi,"
    "units,loop_type,unit,area,description,mode_map\n"
    "FIC101,FIC101.PV,FIC101.SP,FIC101.OUT,FIC101.MODE,0.1,-5,100,0,0,50,m3/h,flow,U1,A1,"
    "Feed flow,0=MAN;1=AUT;2=CAS\n"
    "TIC7,TIC7.PV,,,,,,,,,,,,,,,\n"
)


def test_csv_tag_map_gives_tags_scaling_range_and_modes() -> None:
    tag_map = parse_tag_map_csv(CSV)
    fic, tic = tag_map.loops
    assert fic == LoopTags(
        loop_id="FIC101",
        pv="FIC101.PV",
        sp="FIC101.SP",
        op="FIC101.OUT",
        mode="FIC101.MODE",
        pv_scale=0.1,
        pv_offset=-5.0,
        op_scale=100.0,
        op_offset=0.0,
        pv_lo=0.0,
        pv_hi=50.0,
        units="m3/h",
        loop_type="flow",
        unit="U1",
        area="A1",
        description="Feed flow",
        mode_map={"0": "MAN", "1": "AUT", "2": "CAS"},
    )
    assert tic == LoopTags("TIC7", "TIC7.PV", None, None, None)
    assert tag_map.by_tag() == {
        "FIC101.PV": ("FIC101", "pv"),
        "FIC101.SP": ("FIC101", "sp"),
        "FIC101.OUT": ("FIC101", "op"),
        "FIC101.MODE": ("FIC101", "mode"),
        "TIC7.PV": ("TIC7", "pv"),
    }


def test_json_tag_map_equals_the_csv_one(tmp_path: Path) -> None:
    data = [
        {
            "loop_id": "FIC101", "pv_tag": "FIC101.PV", "sp_tag": "FIC101.SP",
            "op_tag": "FIC101.OUT", "mode_tag": "FIC101.MODE", "pv_scale": 0.1,
            "pv_offset": -5, "op_scale": 100, "pv_lo": 0, "pv_hi": 50, "units": "m3/h",
            "loop_type": "Flow", "unit": "U1", "area": "A1", "description": "Feed flow",
            "mode_map": {"0": "man", "1": "AUT", "2": "CAS"},
        },
        {"loop_id": "TIC7", "pv_tag": "TIC7.PV"},
    ]  # fmt: skip
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"loops": data}), encoding="utf-8")
    csv_path = tmp_path / "map.csv"
    csv_path.write_text("\ufeff" + CSV, encoding="utf-8")
    assert load_tag_map(path) == load_tag_map(csv_path) == parse_tag_map_csv(CSV)
    assert parse_tag_map_json(data) == parse_tag_map_csv(CSV)


def test_only_loop_id_and_pv_tag_are_required() -> None:
    tag_map = parse_tag_map_csv("loop_id,pv_tag\nL1,T1\n\nL2,T2\n")
    assert tag_map == TagMap((LoopTags("L1", "T1", None, None, None),
                              LoopTags("L2", "T2", None, None, None)))  # fmt: skip


def test_csv_errors_name_line_column_and_reason() -> None:
    text = (
        "loop_id,pv_tag,sp_tag,pv_scale,pv_lo,pv_hi,loop_type,mode_map,mode_tag\n"
        "L1,T1,,abc,,,,,\n"  # line 2: scale not a number
        "L2,,T9,,0,,,,\n"  # line 3: pv_tag missing, one range limit
        "L3,T3,,,,,valve,0=AUTO,M3\n"  # line 4: loop type and mode unknown
        "L1,T4,,,,,,,\n"  # line 5: duplicate loop
        "L5,T3,,,5,1,,,\n"  # line 6: tag already mapped, range reversed
        "bad id,T6,,0,,,,,\n"  # line 7: invalid id, zero scale
    )
    with pytest.raises(TagMapError) as caught:
        parse_tag_map_csv(text)
    problems = caught.value.problems
    columns = {(line, column) for line, column, _ in problems}
    assert columns == {
        (2, "pv_scale"),
        (3, "pv_tag"),
        (3, "pv_hi"),
        (4, "loop_type"),
        (4, "mode_map"),
        (5, "loop_id"),
        (6, "pv_tag"),
        (6, "pv_hi"),
        (7, "loop_id"),
        (7, "pv_scale"),
    }
    reasons = {(line, column): reason for line, column, reason in problems}
    assert "'abc'" in reasons[2, "pv_scale"]
    assert "line 2" in reasons[5, "loop_id"]
    assert "already mapped on line 4" in reasons[6, "pv_tag"]
    assert "AUT, MAN, CAS" in reasons[4, "mode_map"]
    assert "line 2: pv_scale:" in str(caught.value)


def test_csv_header_faults_are_line_one() -> None:
    with pytest.raises(TagMapError) as caught:
        parse_tag_map_csv("loop,pv_tag,colour\nL1,T1,red\n")
    assert [(line, column) for line, column, _ in caught.value.problems] == [
        (1, "loop_id"),
        (1, "loop"),
        (1, "colour"),
    ]


def test_csv_row_with_extra_cells_is_refused() -> None:
    with pytest.raises(TagMapError) as caught:
        parse_tag_map_csv("loop_id,pv_tag\nL1,T1,extra\n")
    assert caught.value.problems == [(2, "row", "3 cells, the header has 2")]


def test_json_errors_name_the_object_position(tmp_path: Path) -> None:
    with pytest.raises(TagMapError) as caught:
        parse_tag_map_json([{"loop_id": "L1", "pv_tag": "T1"}, "x", {"loop_id": "L3"},
                            {"loop_id": "L4", "pv_tag": "T4", "mode_map": ["AUT"]}])  # fmt: skip
    assert [(line, column) for line, column, _ in caught.value.problems] == [
        (2, "row"),
        (3, "pv_tag"),
        (4, "mode_map"),
    ]
    broken = tmp_path / "broken.json"
    broken.write_text('[\n{"loop_id": "L1",\n', encoding="utf-8")
    with pytest.raises(TagMapError) as caught:
        load_tag_map(broken)
    assert caught.value.problems[0][:2] == (3, "json")


def test_an_empty_tag_map_is_an_error() -> None:
    with pytest.raises(TagMapError, match="names no loop"):
        parse_tag_map_csv("loop_id,pv_tag\n")
    with pytest.raises(TagMapError, match="list of loop objects"):
        parse_tag_map_json({"loops": "L1"})
