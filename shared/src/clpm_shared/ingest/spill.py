"""Validated samples kept in a temporary file between an import's validation and its write.

The validation pass appends each loop block it accepts (times and the PV/SP/OP columns, 32
bytes a sample) to one anonymous temporary file and remembers where each loop's pieces went.
The write reads them back loop by loop: every file is parsed once, memory holds one group of
blocks at a time, and each loop's samples reach the store in file order (for a time-sorted
export, time order: SQLite then appends them at the loop's end of the table instead of
inserting into the middle of every loop's pages batch after batch).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from types import TracebackType

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
SpilledBlock = tuple[str, IntArray, FloatArray, FloatArray, FloatArray]
BYTES_PER_SAMPLE = 32


class SampleSpill:
    """Loop blocks on disk, read back grouped by loop (``with SampleSpill() as spill: ...``)."""

    def __init__(self) -> None:
        # closed (and so deleted) by close(), which the context manager calls
        self._file = tempfile.TemporaryFile(prefix="clpm-import-")  # noqa: SIM115
        self._pieces: dict[str, list[tuple[int, int]]] = {}
        self._end = 0
        self.samples = 0

    def __enter__(self) -> SampleSpill:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()

    def close(self) -> None:
        self._file.close()

    def add(self, loop_id: str, t: IntArray, pv: FloatArray, sp: FloatArray, op: FloatArray) -> (
        None
    ):  # fmt: skip
        count = len(t)
        if count == 0:
            return
        for column, dtype in ((t, np.int64), (pv, np.float64), (sp, np.float64),
                              (op, np.float64)):  # fmt: skip
            self._file.write(np.ascontiguousarray(column, dtype=dtype).data)
        self._pieces.setdefault(loop_id, []).append((self._end, count))
        self._end += count * BYTES_PER_SAMPLE
        self.samples += count

    def blocks(self, max_rows: int) -> Iterator[SpilledBlock]:
        """Each loop's samples in the order they were added, in blocks of up to ``max_rows``
        (a piece added whole is never split), loop after loop in the order first seen."""
        self._file.flush()
        for loop_id, pieces in self._pieces.items():
            group: list[tuple[int, int]] = []
            rows = 0
            for piece in pieces:
                if group and rows + piece[1] > max_rows:
                    yield self._read(loop_id, group)
                    group, rows = [], 0
                group.append(piece)
                rows += piece[1]
            if group:
                yield self._read(loop_id, group)

    def _read(self, loop_id: str, pieces: list[tuple[int, int]]) -> SpilledBlock:
        times: list[IntArray] = []
        fields: list[list[FloatArray]] = [[], [], []]
        for offset, count in pieces:
            data = os.pread(self._file.fileno(), count * BYTES_PER_SAMPLE, offset)
            times.append(np.frombuffer(data, np.int64, count, 0))
            for k, column in enumerate(fields, start=1):
                column.append(np.frombuffer(data, np.float64, count, 8 * count * k))
        if len(pieces) == 1:
            return loop_id, times[0], fields[0][0], fields[1][0], fields[2][0]
        pv, sp, op = (np.concatenate(column) for column in fields)
        return loop_id, np.concatenate(times), pv, sp, op
