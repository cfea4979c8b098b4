"""Tag maps: CSV and JSON read into loops, every problem named by line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from clpm_shared.ingest.tag_map import (
    LoopTags,
    TagMapError,
    load_tag_map,
    parse_tag_map_csv,
    parse_tag_map_json,
)

CSV = (
    "loop_id,pv_tag,sp_tag,op_tag,mode_tag,pv_scale,pv_offset,op_scale,op_offset,pv_lo,pv_hi,"
    "units,loop_type,unit,area,description,mode_map\n"
    'FIC101,"ns=2;s=FIC101.PV","ns=2;s=FIC101.SP",ns=2;i=7,,0.1,-5,100,0,0,50,m3/h,flow,U1,'
    'North,Feed flow,"0=MAN;1=AUT;2=cas"\n'
    "TIC7,T7.PV,,,,,,,,,,,,,,,\n"
)


def test_csv_rows_become_loops_with_their_tags_scaling_and_mode_map() -> None:
    tag_map = parse_tag_map_csv(CSV)
    first, second = tag_map.loops
    assert first == LoopTags(
        loop_id="FIC101",
        pv="ns=2;s=FIC101.PV",
        sp="ns=2;s=FIC101.SP",
        op="ns=2;i=7",
        mode=None,
        pv_scale=0.1,
        pv_offset=-5.0,
        op_scale=100.0,
        op_offset=0.0,
        pv_lo=0.0,
        pv_hi=50.0,
        units="m3/h",
        loop_type="flow",
        unit="U1",
        area="North",
        description="Feed flow",
        mode_map={"0": "MAN", "1": "AUT", "2": "CAS"},
    )
    assert second == LoopTags("TIC7", "T7.PV", None, None, None)
    assert tag_map.by_tag() == {
        "ns=2;s=FIC101.PV": ("FIC101", "pv"),
        "ns=2;s=FIC101.SP": ("FIC101", "sp"),
        "ns=2;i=7": ("FIC101", "op"),
        "T7.PV": ("TIC7", "pv"),
    }


def test_json_takes_the_same_keys_with_an_object_as_mode_map(tmp_path: Path) -> None:
    path = tmp_path / "tags.json"
    path.write_text('[{"loop_id": "L1", "pv_tag": "a", "mode_tag": "m", "mode_map": {"5": "aut"}}]')
    (loop,) = load_tag_map(path).loops
    assert (loop.pv, loop.mode, dict(loop.mode_map)) == ("a", "m", {"5": "AUT"})


def test_every_problem_is_named_by_line_and_column() -> None:
    text = (
        "loop_id,pv_tag,pv_scale,pv_lo,pv_hi,mode_map,colour\n"
        "A1,,x,,,,\n"
        "A1,t,,10,5,1=AUTO,\n"
        "bad id!,t,,,,,red\n"
    )
    with pytest.raises(TagMapError) as caught:
        parse_tag_map_csv(text)
    problems = caught.value.problems
    assert (2, "pv_tag", "required") in problems
    assert (2, "pv_scale", "not a number: 'x'") in problems
    assert (3, "loop_id", "duplicate 'A1'") in problems
    assert (3, "pv_hi", "must be greater than pv_lo") in problems
    assert any(p[:2] == (3, "mode_map") and "'AUTO'" in p[2] for p in problems)
    assert any(p[:2] == (4, "loop_id") for p in problems)
    assert (2, "colour", "unknown column") in problems
    assert "line 2: pv_tag: required" in str(caught.value)


def test_a_valid_map_has_no_problems_and_json_must_be_a_list() -> None:
    assert len(parse_tag_map_csv(CSV).loops) == 2
    with pytest.raises(TagMapError) as caught:
        parse_tag_map_json({"loop_id": "x"})
    assert caught.value.problems == [(1, "loops", "expected a list of objects")]
