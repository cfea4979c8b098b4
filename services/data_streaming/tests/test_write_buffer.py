"""The point buffer stays within its bound, dropping (and counting) the oldest samples."""

import numpy as np

from data_streaming_service.data_generator import SampleChunk
from data_streaming_service.write_buffer import PointBuffer


def chunk(t: int, loops: int = 10) -> SampleChunk:
    values = np.full(loops, float(t))
    return SampleChunk(
        t, tuple(f"L{i}" for i in range(loops)), values, values, values, np.zeros(loops, np.int8)
    )


def test_buffer_drops_the_oldest_points_beyond_its_bound() -> None:
    buffer = PointBuffer(max_points=100)  # 3 chunks of 30 points fit, a 4th does not
    dropped = [buffer.append(chunk(t)) for t in range(5)]
    assert dropped == [0, 0, 0, 30, 30]
    assert buffer.points == 90 <= buffer.max_points
    assert buffer.dropped_points == 60
    kept = buffer.take(1000)
    assert [c.t_ns for c in kept] == [2, 3, 4]  # the newest survive
    assert buffer.points == 0


def test_unwritten_batch_goes_back_in_front_and_counts_towards_the_bound() -> None:
    buffer = PointBuffer(max_points=100)
    for t in range(3):
        buffer.append(chunk(t))
    batch = buffer.take(60)
    assert [c.t_ns for c in batch] == [0, 1]
    buffer.append(chunk(3))
    buffer.append(chunk(4))
    assert buffer.put_back(batch) == 60  # 150 points would not fit: the two oldest go
    assert [c.t_ns for c in buffer.take(1000)] == [2, 3, 4]
    assert buffer.dropped_points == 60
