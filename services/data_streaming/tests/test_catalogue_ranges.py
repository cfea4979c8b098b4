"""Transmitter ranges of the simulated plant: realistic, importable, the same as the demo plant."""

from __future__ import annotations

from pathlib import Path

import pytest

from clpm_shared.loop_catalogue import read_catalogue
from data_streaming_service.app import main
from data_streaming_service.catalogue import (
    DEFAULT_CATALOGUE,
    default_loop_specs,
    loop_specs,
    pv_range_of,
)

DEMO_PLANT = Path(__file__).resolve().parents[3] / "deploy" / "local" / "demo-plant.csv"


def test_every_catalogue_loop_operates_inside_its_range_away_from_the_limits() -> None:
    specs = default_loop_specs(seed=1)
    for entry, spec in zip(DEFAULT_CATALOGUE, specs, strict=True):
        lo, hi = pv_range_of(entry)
        position = (spec.base_pv - lo) / (hi - lo)
        assert 0.3 < position < 0.9, (spec.loop_id, spec.base_pv, lo, hi)


def test_the_demo_plant_file_has_the_simulators_ranges() -> None:
    demo = {entry.loop_id: (entry.pv_lo, entry.pv_hi) for entry in read_catalogue(DEMO_PLANT)}
    simulated = {entry.loop_id: pv_range_of(entry) for entry in DEFAULT_CATALOGUE}
    assert demo == simulated


def test_written_catalogue_is_an_importable_loop_list_of_every_loop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fleet.csv"
    main(["--write-catalogue", str(path), "--loops", "40"])
    assert "40 loops written" in capsys.readouterr().out
    entries = read_catalogue(path)
    specs = loop_specs(40, seed=0)
    assert [entry.loop_id for entry in entries] == [spec.loop_id for spec in specs]
    for entry, spec in zip(entries, specs, strict=True):
        assert entry.loop_type == spec.loop_type.value
        assert entry.pv_lo is not None
        assert entry.pv_hi is not None
        assert entry.pv_lo < spec.base_pv < entry.pv_hi, spec.loop_id
    ranges = {entry.loop_id: (entry.pv_lo, entry.pv_hi) for entry in entries}
    assert ranges["TIC208031"] == (0.0, 500.0)
    assert ranges["PIC208061"] == (0.0, 20.0)
    assert ranges["FIC900001"] == (0.0, 100.0)  # a synthetic flow loop: its type's range
