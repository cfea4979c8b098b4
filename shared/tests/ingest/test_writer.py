"""The import writer: blocks split into requests, several in flight, every sample stored once."""

from datetime import UTC, datetime

import numpy as np

from clpm_shared.ingest.writer import SeriesWriter, request_groups
from clpm_shared.timeseries import RawSeries, TimeSeriesStore

_START_NS = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp()) * 1_000_000_000


def _blocks(loops: int, samples: int) -> list[RawSeries]:
    t = _START_NS + np.arange(samples, dtype=np.int64) * 1_000_000_000
    return [
        RawSeries(
            f"WR{i:03d}", t, np.arange(samples) + i * 0.5, np.full(samples, 50.0),
            np.full(samples, float(i)), np.full(samples, "AUT", dtype=object),
        )
        for i in range(loops)
    ]  # fmt: skip


def test_request_groups_keep_blocks_whole_and_in_order() -> None:
    blocks = _blocks(5, 100)
    groups = request_groups(blocks, 150)
    assert [[b.loop_id for b in g] for g in groups] == [
        ["WR000", "WR001"], ["WR002", "WR003"], ["WR004"],
    ]  # fmt: skip
    assert request_groups([], 150) == []


async def test_many_requests_two_in_flight_store_every_sample_once(
    store: TimeSeriesStore,
) -> None:
    blocks = _blocks(7, 90)
    writer = SeriesWriter(store, lines_per_request=150, requests_in_flight=2)
    assert await writer.write(blocks) == 7 * 90
    assert await writer.write(blocks) == 7 * 90  # the same samples again overwrite themselves
    stored = await store.query_raw_many(
        [b.loop_id for b in blocks],
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 3, tzinfo=UTC),
    )
    for block in blocks:
        series = stored[block.loop_id]
        assert np.array_equal(series.t_ns, block.t_ns)
        assert np.array_equal(series.pv, block.pv)
        assert np.array_equal(series.op, block.op)
