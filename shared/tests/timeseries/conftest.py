"""Fixtures of the time-series tests: one ``store`` per backend that can run here.

``store`` is parametrised over the embedded SQLite store and the InfluxQL store against the real
influxd of the test harness; every test in test_store_protocol.py runs against each of them.
Tests use their own loop ids (``unique_loop``) so they can share one store per module.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clpm_shared.timeseries.base import Point, TimeSeriesStore
from clpm_shared.timeseries.embedded import EmbeddedStore

BASE_TIME = datetime(2025, 1, 10, 10, 0, 0, tzinfo=UTC)
_counter = itertools.count(1)


@pytest.fixture
def unique_loop(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A loop id no other test uses: ``TIC<n>_<label>``."""
    number = next(_counter)

    def make(label: str = "x") -> str:
        return f"TIC{number:04d}_{label}"

    return make


def _make_points(
    loop_id: str,
    count: int,
    *,
    start: datetime = BASE_TIME,
    step_s: float = 1.0,
    modes: tuple[str | None, ...] = ("AUT",),
) -> list[Point]:
    """``count`` samples of a loop: PV a sine, SP a step, OP a ramp, modes cycling."""
    return [
        Point(
            loop_id,
            start + timedelta(seconds=i * step_s),
            pv=50.0 + 10.0 * math.sin(i / 7.0),
            sp=50.0 if i < count // 2 else 55.0,
            op=20.0 + 0.1 * i,
            mode=modes[i % len(modes)],
        )
        for i in range(count)
    ]


@pytest.fixture
def make_points() -> Callable[..., list[Point]]:
    """Builder of test samples (see ``_make_points``)."""
    return _make_points


def _embedded(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "timeseries.db", batch_size=400)


BACKENDS = ["embedded"]


@pytest.fixture(scope="module", params=BACKENDS)
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[TimeSeriesStore]:
    backend = request.param
    if backend == "embedded":
        created: TimeSeriesStore = _embedded(tmp_path_factory.mktemp("embedded"))
    else:
        raise AssertionError(backend)
    yield created
    await created.close()
