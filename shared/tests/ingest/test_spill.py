"""The spill between validation and write: every sample back unchanged, grouped by loop."""

import numpy as np

from clpm_shared.ingest.spill import SampleSpill


def _piece(start: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t = np.arange(start, start + count, dtype=np.int64)
    return t, t * 0.5, np.full(count, np.nan), -t.astype(np.float64)


def test_blocks_come_back_loop_by_loop_in_the_order_added_and_unchanged() -> None:
    with SampleSpill() as spill:
        for batch in range(3):  # batch by batch, as the validation reads a file
            spill.add("B", *_piece(100 * batch, 10))
            spill.add("A", *_piece(100 * batch + 5, 4))
        blocks = list(spill.blocks(max_rows=1000))
        assert spill.samples == 42
    assert [block[0] for block in blocks] == ["B", "A"]
    _, t, pv, sp, op = blocks[1]
    assert t.tolist() == [5, 6, 7, 8, 105, 106, 107, 108, 205, 206, 207, 208]
    np.testing.assert_array_equal(pv, t * 0.5)
    assert np.isnan(sp).all()
    np.testing.assert_array_equal(op, -t)


def test_blocks_hold_at_most_max_rows_unless_one_piece_is_larger() -> None:
    with SampleSpill() as spill:
        for start in (0, 10, 20):
            spill.add("A", *_piece(start, 10))
        spill.add("A", *_piece(30, 50))
        sizes = [len(block[1]) for block in spill.blocks(max_rows=25)]
    assert sizes == [20, 10, 50]


def test_empty_pieces_are_not_kept() -> None:
    with SampleSpill() as spill:
        spill.add("A", *_piece(0, 0))
        assert list(spill.blocks(max_rows=10)) == []
