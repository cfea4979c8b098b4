"""The generator: the seed's loops and compat API, plant-like profiles, columnar samples."""

import numpy as np
import pytest

from clpm_shared.simulation import LoopProfile
from clpm_shared.timeseries import InvalidQueryError, from_ns
from data_streaming_service.catalogue import (
    DEFAULT_CATALOGUE,
    SEED_LOOP_IDS,
    loop_specs,
    profile_for_index,
)
from data_streaming_service.data_generator import ControlLoopDataGenerator

T0 = 1_736_503_500_000_000_000  # 2025-01-10T10:05:00Z


def test_default_loops_are_the_seed_loops_and_a_mix_of_behaviours() -> None:
    generator = ControlLoopDataGenerator()
    assert generator.loop_ids[:5] == SEED_LOOP_IDS
    assert set(SEED_LOOP_IDS) == {f"TIC20803{i}" for i in range(5)}
    profiles = {spec.profile for spec in generator.specs}
    assert profiles == set(LoopProfile)
    assert {spec.loop_id[:3] for spec in generator.specs} == {"TIC", "FIC", "PIC", "LIC"}
    seed_profiles = {spec.profile for spec in generator.specs[:5]}
    assert LoopProfile.HEALTHY in seed_profiles
    assert len(seed_profiles) == 5  # the seed's loops alone already show good and bad loops


def test_add_custom_loop_keeps_the_seed_signature() -> None:
    generator = ControlLoopDataGenerator()
    spec = generator.add_custom_loop("CUSTOM_LOOP", base_pv=400.0, base_sp=400.5, base_op=60.0)
    assert spec.loop_id == "CUSTOM_LOOP"
    assert generator.loop_ids[-1] == "CUSTOM_LOOP"
    chunk = generator.next_chunk(T0)
    first = dict(zip(chunk.loop_ids, zip(chunk.pv, chunk.sp, chunk.op, strict=True), strict=True))
    pv, sp, op = first["CUSTOM_LOOP"]
    assert sp == 400.5
    assert pv == pytest.approx(400.0, abs=1.0)
    assert op == pytest.approx(60.0, abs=2.0)
    # after a while the controller has brought PV to SP
    for k in range(1, 900):
        chunk = generator.next_chunk(T0 + k * 1_000_000_000)
    index = chunk.loop_ids.index("CUSTOM_LOOP")
    assert chunk.pv[index] == pytest.approx(chunk.sp[index], abs=1.5)


def test_custom_loop_rejects_bad_names_duplicates_and_outputs() -> None:
    generator = ControlLoopDataGenerator()
    with pytest.raises(InvalidQueryError) as bad:
        generator.add_custom_loop("bad loop'", base_pv=1.0, base_sp=1.0, base_op=50.0)
    assert bad.value.parameter == "name"
    with pytest.raises(ValueError, match="already simulated"):
        generator.add_custom_loop("TIC208030", base_pv=400.0, base_sp=400.0, base_op=60.0)
    with pytest.raises(ValueError, match="base_op"):
        generator.add_custom_loop("NEW_LOOP", base_pv=400.0, base_sp=400.0, base_op=140.0)


def test_adding_a_loop_does_not_disturb_the_running_ones() -> None:
    steady, extended = ControlLoopDataGenerator(seed=3), ControlLoopDataGenerator(seed=3)
    for k in range(50):
        steady.next_chunk(T0 + k)
        extended.next_chunk(T0 + k)
    extended.add_custom_loop("LATE_LOOP", base_pv=10.0, base_sp=10.0, base_op=50.0)
    a, b = steady.next_chunk(T0 + 50), extended.next_chunk(T0 + 50)
    assert b.loop_ids[:-1] == a.loop_ids
    np.testing.assert_array_equal(b.pv[:-1], a.pv)
    np.testing.assert_array_equal(b.op[:-1], a.op)


def test_chunk_points_follow_the_seed_schema() -> None:
    chunk = ControlLoopDataGenerator().next_chunk(T0)
    points = chunk.to_points()
    assert chunk.points == 3 * len(points) == 3 * len(DEFAULT_CATALOGUE)
    assert {p.time for p in points} == {from_ns(T0)}
    assert [p.loop_id for p in points] == list(chunk.loop_ids)
    assert {p.mode for p in points} <= {"AUT", "MAN", "CAS"}
    by_id = {p.loop_id: p for p in points}
    assert by_id["FIC208040"].mode == "CAS"
    assert all(isinstance(v, float) for p in points for v in (p.pv, p.sp, p.op))


def test_same_seed_same_stream() -> None:
    first, again, other = (
        ControlLoopDataGenerator(seed=5),
        ControlLoopDataGenerator(seed=5),
        ControlLoopDataGenerator(seed=6),
    )
    a = [first.next_chunk(T0 + k).pv for k in range(20)]
    b = [again.next_chunk(T0 + k).pv for k in range(20)]
    c = [other.next_chunk(T0 + k).pv for k in range(20)]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_scale_fleet_has_unique_ids_and_a_plant_like_mix() -> None:
    specs = loop_specs(1000, seed=1)
    ids = [spec.loop_id for spec in specs]
    assert len(ids) == len(set(ids)) == 1000
    assert ids[: len(DEFAULT_CATALOGUE)] == [entry.loop_id for entry in DEFAULT_CATALOGUE]
    assert ids[len(DEFAULT_CATALOGUE)] == "FIC900001"
    share = {p: sum(s.profile is p for s in specs) / 1000 for p in LoopProfile}
    assert 0.55 < share[LoopProfile.HEALTHY] < 0.65
    assert all(share[p] > 0 for p in LoopProfile)
    assert [profile_for_index(i) for i in range(100)].count(LoopProfile.HEALTHY) == 60
    assert len(loop_specs(0, seed=1)) == len(DEFAULT_CATALOGUE)
    assert [s.loop_id for s in loop_specs(3, seed=1)] == list(SEED_LOOP_IDS[:3])
    with pytest.raises(ValueError, match="loops"):
        loop_specs(-1, seed=1)


@pytest.mark.parametrize("n_loops", range(1, len(DEFAULT_CATALOGUE) + 1))
def test_every_cut_of_the_demo_catalogue_streams(n_loops: int) -> None:
    """``--loops 6`` keeps TIC208033 but not FIC208041, which drives it: it runs on its own."""
    specs = loop_specs(n_loops, seed=1)
    ids = {spec.loop_id for spec in specs}
    assert all(spec.driven_by is None or spec.driven_by in ids for spec in specs)
    chunk = ControlLoopDataGenerator(specs).next_chunk(0)
    assert chunk.loop_ids == tuple(spec.loop_id for spec in specs)
    assert np.all(np.isfinite(chunk.pv))
