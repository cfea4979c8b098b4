"""Start-up history written in bulk into the embedded store: every tick of every loop, the
simulation's own values, several blocks joined without a gap, only the missing part again."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from clpm_shared.simulation import MODES
from clpm_shared.timeseries import EmbeddedStore
from data_streaming_service.catalogue import loop_specs
from data_streaming_service.data_generator import ControlLoopDataGenerator, history_series
from data_streaming_service.streaming import StreamingService, StreamOptions

_NS = 1_000_000_000


def _generator() -> ControlLoopDataGenerator:
    return ControlLoopDataGenerator(loop_specs(12, 5, 1.0), interval_s=1.0, seed=5)


async def test_history_in_blocks_holds_every_tick_with_the_simulations_values(
    tmp_path: Path,
) -> None:
    store = EmbeddedStore(tmp_path / "timeseries.db")
    generator = _generator()
    # 12 loops x 7 ticks per block: 120 s of history are about 18 blocks
    options = StreamOptions(backfill_hours=120 / 3600, backfill_only=True, history_block_samples=84)
    summary = await StreamingService(generator, store, options).run(asyncio.Event())
    ticks = summary.backfilled_points // (3 * len(generator))
    assert 120 <= ticks <= 125
    assert summary.written_points == summary.backfilled_points

    now = datetime.now(UTC)
    stored = await store.query_raw_many(generator.loop_ids, now - timedelta(hours=1), now)
    assert {loop_id: len(series) for loop_id, series in stored.items()} == dict.fromkeys(
        generator.loop_ids, ticks
    )
    replay = _generator()
    times = stored[generator.loop_ids[0]].t_ns
    assert np.all(np.diff(times) == _NS)  # the blocks join without a gap or an overlap
    expected = [replay.next_chunk(int(t)) for t in times]
    for index, loop_id in enumerate(generator.loop_ids):
        series = stored[loop_id]
        assert np.array_equal(series.t_ns, times)
        assert np.array_equal(series.pv, [chunk.pv[index] for chunk in expected])
        assert np.array_equal(series.sp, [chunk.sp[index] for chunk in expected])
        assert np.array_equal(series.op, [chunk.op[index] for chunk in expected])
        assert list(series.mode) == [MODES[chunk.mode[index]] for chunk in expected]

    again = await StreamingService(_generator(), store, options).run(asyncio.Event())
    assert again.backfilled_points < summary.backfilled_points / 10  # only the seconds since
    await store.close()


def test_history_series_turns_ticks_into_one_block_per_loop() -> None:
    generator = _generator()
    chunks = [generator.next_chunk(t * _NS) for t in range(5)]
    blocks = history_series(chunks)
    assert [block.loop_id for block in blocks] == list(generator.loop_ids)
    assert blocks[3].t_ns.tolist() == [t * _NS for t in range(5)]
    assert blocks[3].pv.tolist() == [chunk.pv[3] for chunk in chunks]
    assert blocks[3].mode.tolist() == [MODES[chunk.mode[3]] for chunk in chunks]
    assert history_series([]) == []
