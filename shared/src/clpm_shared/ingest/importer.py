"""Import historian exports into the time-series store: validate everything, then write.

Every file is parsed once, batch by batch (memory is bounded by the batch, plus the mode changes
of each loop):

1. **validate**: every timestamp, value, quality and mode cell is read; problems are collected
   with file, line, column and reason; per loop the time range and the mode changes are kept.
   The accepted rows, as one columnar block per loop and batch (PV and OP scaled
   ``stored = raw * scale + offset``, SP on the PV scale), go into a temporary file
   (:mod:`clpm_shared.ingest.spill`). A file set with problems is refused whole (nothing is
   written) unless rows with problems are to be skipped (``skip_bad_rows``), which then counts
   them.
2. **write**: the blocks are read back from the temporary file loop by loop, each given the
   mode at each sample (the last mode change at or before it, known now for the whole file
   set), and written through the store in large batches.

Bad quality (a quality column saying so, or a historian status text in the value cell) means
the value is not stored; it is counted. Writing is idempotent: samples are keyed by loop and
time, so importing the same file again overwrites each sample with itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from clpm_shared.ingest.cells import MODE_CODES, good_quality, parse_modes, parse_numbers
from clpm_shared.ingest.readers import ExportFile, ExportFormatError, RawBatch, open_export
from clpm_shared.ingest.spill import SampleSpill
from clpm_shared.ingest.tag_map import LoopTags, TagMap
from clpm_shared.ingest.timestamps import (
    TimeFormatError,
    TimeParser,
    detect_time_parser,
    format_ns,
)
from clpm_shared.ingest.writer import SeriesWriter
from clpm_shared.timeseries.base import RawSeries

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_MODE_TEXT = np.array([*MODE_CODES, None], dtype=object)  # code -1 -> None
DETECT_ROWS = 1000
WRITE_ROWS = 200_000
"""Samples per write through the store (one SQLite transaction; requests to influxd): large
enough that the per-call costs vanish, small enough that other writers wait well under a
second for the store."""
WRITES_IN_FLIGHT = 2
"""Groups of ``WRITE_ROWS`` handed to the store at once, so that it always has the next one
when it finishes one (influxd parses a group's requests while the next group is encoded; the
embedded store's one writer thread takes them in turn)."""


@dataclass(frozen=True)
class ImportOptions:
    timezone: str | None = None
    time_format: str | None = None
    decimal_comma: bool | None = None
    skip_bad_rows: bool = False
    max_problems: int = 50


@dataclass(frozen=True)
class Problem:
    """One fault of an export: file, line (CSV; Parquet: row), column and reason."""

    file: str
    line: int | None
    column: str
    reason: str
    line_word: str = "line"

    def __str__(self) -> str:
        where = f"{self.line_word} {self.line}" if self.line is not None else self.line_word + " ?"
        return f"{self.file}: {where}: {self.column}: {self.reason}"


@dataclass
class LoopSummary:
    loop_id: str
    first_ns: int
    last_ns: int
    samples: int = 0


@dataclass
class FileSummary:
    path: Path
    layout: str = ""
    rows: int = 0
    values: int = 0
    bad_quality: int = 0
    bad_rows: int = 0
    unmapped_tags: set[str] = field(default_factory=set)
    missing_tags: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    """What an import read, refused, skipped and wrote."""

    files: list[FileSummary] = field(default_factory=list)
    loops: dict[str, LoopSummary] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    written_values: int = 0
    written_samples: int = 0
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def values(self) -> int:
        return sum(f.values for f in self.files)

    @property
    def bad_quality(self) -> int:
        return sum(f.bad_quality for f in self.files)

    @property
    def bad_rows(self) -> int:
        return sum(f.bad_rows for f in self.files)

    def summary_lines(self) -> list[str]:
        lines: list[str] = []
        for f in self.files:
            lines.append(
                f"{f.path.name}: {f.layout}, {f.rows} rows, {f.values} values, "
                f"{f.bad_quality} bad quality (not stored), {f.bad_rows} rows with problems"
            )
            if f.unmapped_tags:
                names = ", ".join(sorted(f.unmapped_tags)[:10])
                more = len(f.unmapped_tags) - 10
                lines.append(
                    f"  not in the tag map (ignored): {names}"
                    + (f" and {more} more" if more > 0 else "")
                )
            if f.missing_tags:
                lines.append(f"  tag map tags not in this file: {', '.join(f.missing_tags[:10])}")
        for loop in sorted(self.loops.values(), key=lambda s: s.loop_id):
            lines.append(
                f"loop {loop.loop_id}: {loop.samples} samples "
                f"{format_ns(loop.first_ns)} .. {format_ns(loop.last_ns)}"
            )
        return lines

    @property
    def start_ns(self) -> int | None:
        return min((s.first_ns for s in self.loops.values()), default=None)

    @property
    def end_ns(self) -> int | None:
        return max((s.last_ns for s in self.loops.values()), default=None)


class ImportRejectedError(ValueError):
    """The exports have problems and bad rows are not to be skipped: nothing was written."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        shown = "\n".join(str(p) for p in report.problems)
        more = report.problem_count - len(report.problems)
        tail = f"\n... and {more} more problems" if more > 0 else ""
        super().__init__(f"{report.problem_count} problems; nothing imported\n{shown}{tail}")


@dataclass
class _Outcome:
    """One batch turned into loop blocks (without modes yet) and mode changes."""

    series: list[tuple[str, IntArray, FloatArray, FloatArray, FloatArray]]
    modes: list[tuple[str, IntArray, npt.NDArray[np.int8]]]
    rows: int
    values: int
    bad_quality: int
    bad_rows: int


class _Context:
    """Per-file state of the pass: the tag map's view, the time parser and problem collection."""

    def __init__(
        self, export: ExportFile, tag_map: TagMap, parser: TimeParser, report: ImportReport,
        options: ImportOptions,
    ) -> None:  # fmt: skip
        self.export = export
        self.by_tag = tag_map.by_tag()
        self.loops: dict[str, LoopTags] = {loop.loop_id: loop for loop in tag_map.loops}
        self.parser = parser
        self.report = report
        self.options = options

    def problem(self, line: int | None, column: str, reason: str) -> None:
        self.report.problem_count += 1
        if len(self.report.problems) < self.options.max_problems:
            self.report.problems.append(
                Problem(self.export.path.name, line, column, reason, self.export.row_word)
            )

    def cell_problems(
        self, raw: RawBatch, mask: BoolArray, column: str, cells: pa.Array | None, reason: str
    ) -> None:
        if not mask.any():
            return
        rows = np.flatnonzero(mask)
        room = max(0, self.options.max_problems - len(self.report.problems))
        for row in rows[: max(room, 0)]:
            text = "" if cells is None else repr(cells[int(row)].as_py())
            self.problem(raw.line_of(int(row)), column, f"{reason} {text}".strip())
        self.report.problem_count += len(rows) - min(len(rows), room)


def _scale(values: FloatArray, scale: float, offset: float) -> FloatArray:
    if scale == 1.0 and offset == 0.0:
        return values
    return values * scale + offset


def _text_column(batch: pa.RecordBatch, name: str) -> pa.Array:
    column = batch.column(name)
    return column if pa.types.is_string(column.type) else column.cast(pa.string())


def _blank(column: pa.Array) -> BoolArray:
    """Empty cells (null or ""; a cell of spaces is read, and found wanting, by its parser)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_string(column.type):
        nulls: BoolArray = np.asarray(pc.is_null(column).to_numpy(zero_copy_only=False), dtype=bool)
        return nulls
    # the cell lengths straight from the offsets buffer: no kernel call for the common case
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)
    lengths = np.diff(offsets[column.offset : column.offset + len(column) + 1])
    blank: BoolArray = lengths == 0
    if column.null_count:
        blank |= np.asarray(pc.is_null(column).to_numpy(zero_copy_only=False), dtype=bool)
    return blank


def _wide(raw: RawBatch, ctx: _Context) -> _Outcome:
    batch, export = raw.batch, ctx.export
    n = batch.num_rows
    times = batch.column(export.time_column)
    t_ns, t_ok = ctx.parser.parse(times)
    mapped = [name for name in export.columns if name in ctx.by_tag]
    blank = _blank(times)
    empty_cells = {name: _blank(batch.column(name)) for name in mapped}
    for name in mapped:
        blank &= empty_cells[name]
    row_bad = ~t_ok & ~blank
    ctx.cell_problems(raw, row_bad, export.time_column, times, "cannot read timestamp")
    per_loop: dict[str, dict[str, FloatArray]] = {}
    mode_codes: dict[str, npt.NDArray[np.int8]] = {}
    values = bad_quality = 0
    for name in mapped:
        loop_id, role = ctx.by_tag[name]
        loop = ctx.loops[loop_id]
        column = batch.column(name)
        present = ~empty_cells[name]
        good = np.ones(n, dtype=bool)
        if name in export.quality_of:
            good = good_quality(batch.column(export.quality_of[name]))
        if role == "mode":
            codes, unknown = parse_modes(column, dict(loop.mode_map))
            ctx.cell_problems(raw, unknown & ~blank, name, column, "unknown mode value")
            row_bad |= unknown & ~blank
            codes = np.where(good, codes, np.int8(-1)).astype(np.int8)
            bad_quality += int((present & ~good).sum())
            values += int((present & good & ~unknown).sum())
            mode_codes[loop_id] = codes
            continue
        numbers, status, invalid = parse_numbers(column, decimal_comma=export.decimal_comma)
        ctx.cell_problems(raw, invalid, name, column, "not a number:")
        row_bad |= invalid
        not_stored = (status | ~good) & present
        bad_quality += int(not_stored.sum())
        numbers = np.where(good, numbers, np.nan)
        values += int(np.isfinite(numbers).sum())
        scale, offset = (loop.op_scale, loop.op_offset) if role == "op" else (
            loop.pv_scale, loop.pv_offset)  # fmt: skip
        per_loop.setdefault(loop_id, {})[role] = _scale(numbers, scale, offset)
    keep = t_ok & ~row_bad
    bad_rows = int(row_bad.sum())
    series: list[tuple[str, IntArray, FloatArray, FloatArray, FloatArray]] = []
    nothing = np.full(n, np.nan)
    for loop_id, fields in per_loop.items():
        pv, sp, op = (fields.get(role, nothing) for role in ("pv", "sp", "op"))
        rows = keep & (np.isfinite(pv) | np.isfinite(sp) | np.isfinite(op))
        if rows.any():
            series.append((loop_id, t_ns[rows], pv[rows], sp[rows], op[rows]))
    modes = [
        (loop_id, t_ns[keep & (codes >= 0)], codes[keep & (codes >= 0)])
        for loop_id, codes in mode_codes.items()
    ]
    return _Outcome(series, modes, int((~blank).sum()), values, bad_quality, bad_rows)


def _long(raw: RawBatch, ctx: _Context) -> _Outcome:
    batch, export = raw.batch, ctx.export
    assert export.tag_column is not None
    assert export.value_column is not None
    n = batch.num_rows
    tags = pc.utf8_trim_whitespace(_text_column(batch, export.tag_column))
    times = batch.column(export.time_column)
    value_column = batch.column(export.value_column)
    blank = _blank(tags) & _blank(times) & _blank(value_column)
    t_ns, t_ok = ctx.parser.parse(times)
    row_bad = ~t_ok & ~blank
    ctx.cell_problems(raw, row_bad, export.time_column, times, "cannot read timestamp")
    names = list(ctx.by_tag)
    index = np.asarray(
        pc.fill_null(pc.index_in(tags, value_set=pa.array(names, pa.string())), -1).to_numpy(
            zero_copy_only=False
        ),
        dtype=np.int64,
    )
    unmapped = (index < 0) & ~blank
    if unmapped.any() and len(ctx.report.files[-1].unmapped_tags) < 1000:
        ctx.report.files[-1].unmapped_tags.update(
            pc.unique(pc.filter(tags, pa.array(unmapped))).to_pylist()[:1000]
        )
    good = np.ones(n, dtype=bool)
    if export.quality_column is not None:
        good = good_quality(batch.column(export.quality_column))
    series: list[tuple[str, IntArray, FloatArray, FloatArray, FloatArray]] = []
    modes: list[tuple[str, IntArray, npt.NDArray[np.int8]]] = []
    values = bad_quality = 0
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])
    groups: list[tuple[int, IntArray]] = [
        (int(sorted_index[s]), order[s:e])
        for s, e in zip(starts, np.r_[starts[1:], len(order)], strict=True)
        if len(order) and sorted_index[s] >= 0
    ]
    keeps: list[tuple[int, IntArray, np.ndarray, np.ndarray]] = []
    for tag_index, rows in groups:
        loop_id, role = ctx.by_tag[names[tag_index]]
        loop = ctx.loops[loop_id]
        cells = value_column.take(pa.array(rows))
        present = ~_blank(cells)
        good_rows = good[rows]
        if role == "mode":
            codes, unknown = parse_modes(cells, dict(loop.mode_map))
            ctx.cell_problems(
                raw, _scatter(n, rows, unknown), export.value_column, value_column,
                "unknown mode value",
            )  # fmt: skip
            row_bad[rows] |= unknown
            bad_quality += int((present & ~good_rows).sum())
            values += int((present & good_rows & ~unknown).sum())
            keeps.append((tag_index, rows, np.where(good_rows, codes, -1).astype(np.int8), unknown))
            continue
        numbers, status, invalid = parse_numbers(cells, decimal_comma=export.decimal_comma)
        ctx.cell_problems(
            raw, _scatter(n, rows, invalid), export.value_column, value_column, "not a number:"
        )
        row_bad[rows] |= invalid
        bad_quality += int(((status | ~good_rows) & present).sum())
        numbers = np.where(good_rows, numbers, np.nan)
        values += int(np.isfinite(numbers).sum())
        keeps.append((tag_index, rows, numbers, invalid))
    ok = t_ok & ~row_bad
    for tag_index, rows, data, _ in keeps:
        loop_id, role = ctx.by_tag[names[tag_index]]
        loop = ctx.loops[loop_id]
        if role == "mode":
            use = ok[rows] & (data >= 0)
            modes.append((loop_id, t_ns[rows][use], data[use].astype(np.int8)))
            continue
        use = ok[rows] & np.isfinite(data)
        if not use.any():
            continue
        scale, offset = (loop.op_scale, loop.op_offset) if role == "op" else (
            loop.pv_scale, loop.pv_offset)  # fmt: skip
        field_values = _scale(data[use], scale, offset)
        empty = np.full(len(field_values), np.nan)
        pv = field_values if role == "pv" else empty
        sp = field_values if role == "sp" else empty
        op = field_values if role == "op" else empty
        series.append((loop_id, t_ns[rows][use], pv, sp, op))
    return _Outcome(series, modes, int((~blank).sum()), values, bad_quality, int(row_bad.sum()))


def _scatter(n: int, rows: IntArray, mask: BoolArray) -> BoolArray:
    full = np.zeros(n, dtype=bool)
    full[rows] = mask
    return full


class _ModeHistory:
    """Each loop's mode changes (time-sorted), gathered in pass 1 and looked up in pass 2."""

    def __init__(self) -> None:
        self._parts: dict[str, list[tuple[IntArray, npt.NDArray[np.int8]]]] = {}
        self._changes: dict[str, tuple[IntArray, npt.NDArray[np.int8]]] = {}

    @staticmethod
    def _compress(t: IntArray, codes: npt.NDArray[np.int8]) -> tuple[
        IntArray, npt.NDArray[np.int8]
    ]:  # fmt: skip
        order = np.argsort(t, kind="stable")
        t, codes = t[order], codes[order]
        change = np.r_[True, codes[1:] != codes[:-1]] if len(codes) else np.zeros(0, bool)
        return t[change], codes[change]

    def add(self, loop_id: str, t: IntArray, codes: npt.NDArray[np.int8]) -> None:
        if len(t):
            self._parts.setdefault(loop_id, []).append(self._compress(t, codes))

    def finish(self) -> None:
        for loop_id, parts in self._parts.items():
            self._changes[loop_id] = self._compress(
                np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
            )
        self._parts.clear()

    def at(self, loop_id: str, t: IntArray) -> npt.NDArray[np.object_]:
        changes = self._changes.get(loop_id)
        if changes is None:
            return np.full(len(t), None, dtype=object)
        index = np.searchsorted(changes[0], t, side="right") - 1
        codes = np.where(index >= 0, changes[1][np.maximum(index, 0)], -1)
        result: npt.NDArray[np.object_] = _MODE_TEXT[codes]
        return result


def _detect(export: ExportFile, options: ImportOptions) -> TimeParser:
    for raw in export.batches(exact_lines=True):
        column = raw.batch.column(export.time_column)
        sample = column.slice(0, DETECT_ROWS)
        if pa.types.is_string(sample.type):
            sample = pc.filter(sample, pa.array(~_blank(sample)))
        return detect_time_parser(sample, time_format=options.time_format,
                                  timezone=options.timezone)  # fmt: skip
    return TimeParser("iso")  # no rows at all: nothing to parse


Progress = Callable[[str, int], None]
"""Called with the step's name and what it just did: "validate" and the file rows read,
"write" and the samples written."""


def _file_pass(export: ExportFile, ctx: _Context, *, progress: Progress | None) -> (
    Iterable[_Outcome]
):  # fmt: skip
    process = _wide if export.layout == "wide" else _long
    for raw in export.batches(exact_lines=True):
        outcome = process(raw, ctx)
        if progress is not None:
            progress("validate", raw.batch.num_rows)
        yield outcome
    for line, text in export.invalid_rows:
        ctx.problem(line, "row", f"wrong number of cells: {text!r}")


def _refused(report: ImportReport, options: ImportOptions) -> bool:
    """Problems that forbid writing: any, or (skipping bad rows) any that spoils a whole file."""
    if not report.problem_count:
        return False
    return not options.skip_bad_rows or any(p.column == "file" for p in report.problems)


def validate(
    paths: list[Path],
    tag_map: TagMap,
    options: ImportOptions,
    progress: Progress | None = None,
    spill: SampleSpill | None = None,
) -> tuple[ImportReport, _ModeHistory]:
    """Read every file once: collect problems, loop time ranges and mode changes, and put the
    accepted loop blocks into ``spill`` (until a problem makes the import refused)."""
    report = ImportReport()
    modes = _ModeHistory()
    tags = tag_map.by_tag()
    for path in paths:
        summary = FileSummary(path)
        report.files.append(summary)
        try:
            export = open_export(path, decimal_comma=options.decimal_comma)
            parser = _detect(export, options)
        except (ExportFormatError, TimeFormatError, OSError, pa.ArrowException) as exc:
            report.problem_count += 1
            report.problems.append(Problem(path.name, 1, "file", str(exc)))
            continue
        summary.layout = export.layout
        if export.layout == "wide":
            summary.unmapped_tags = {
                c for c in export.columns
                if c != export.time_column and c not in tags and c not in export.quality_of.values()
            }  # fmt: skip
            summary.missing_tags = [t for t in tags if t not in export.columns]
        ctx = _Context(export, tag_map, parser, report, options)
        try:
            for outcome in _file_pass(export, ctx, progress=progress):
                summary.rows += outcome.rows
                summary.values += outcome.values
                summary.bad_quality += outcome.bad_quality
                summary.bad_rows += outcome.bad_rows
                keep = spill is not None and not _refused(report, options)
                for loop_id, t, pv, sp, op in outcome.series:
                    if keep and spill is not None:
                        spill.add(loop_id, t, pv, sp, op)
                    loop = report.loops.get(loop_id)
                    first, last = int(t.min()), int(t.max())
                    if loop is None:
                        report.loops[loop_id] = LoopSummary(loop_id, first, last, len(t))
                    else:
                        loop.first_ns = min(loop.first_ns, first)
                        loop.last_ns = max(loop.last_ns, last)
                        loop.samples += len(t)
                for loop_id, t, codes in outcome.modes:
                    modes.add(loop_id, t, codes)
        except pa.ArrowException as exc:
            ctx.problem(None, "file", f"cannot read: {exc}")
            continue
        summary.bad_rows += len(export.invalid_rows)
    modes.finish()
    return report, modes


async def import_exports(
    paths: list[Path],
    tag_map: TagMap,
    writer: SeriesWriter | None,
    options: ImportOptions,
    progress: Progress | None = None,
) -> ImportReport:
    """Validate every file, then (unless ``writer`` is None: a dry run) write them all.

    Raises :class:`ImportRejectedError` when there are problems and ``skip_bad_rows`` is off.
    Samples counted per loop in the report are the rows with at least one stored value.
    """
    started = time.perf_counter()
    with SampleSpill() if writer is not None else nullcontext() as spill:
        report, modes = validate(paths, tag_map, options, progress, spill)
        if _refused(report, options):
            raise ImportRejectedError(report)
        if writer is None or spill is None:
            report.dry_run = True
            report.seconds = time.perf_counter() - started
            return report
        await _write(spill, modes, writer, report, progress)
    report.seconds = time.perf_counter() - started
    return report


async def _write(
    spill: SampleSpill, modes: _ModeHistory, writer: SeriesWriter, report: ImportReport,
    progress: Progress | None,
) -> None:  # fmt: skip
    writing: deque[asyncio.Task[int]] = deque()
    blocks: list[RawSeries] = []
    pending = 0

    def start() -> None:
        nonlocal blocks, pending
        report.written_values += sum(
            int(np.isfinite(b.pv).sum() + np.isfinite(b.sp).sum() + np.isfinite(b.op).sum())
            for b in blocks
        )
        writing.append(asyncio.ensure_future(writer.write(blocks)))
        if progress is not None:
            progress("write", pending)
        blocks, pending = [], 0

    try:
        for loop_id, t, pv, sp, op in spill.blocks(WRITE_ROWS):
            blocks.append(RawSeries(loop_id, t, pv, sp, op, modes.at(loop_id, t)))
            pending += len(t)
            if pending >= WRITE_ROWS:
                start()
                await asyncio.sleep(0)  # let the write start before reading the next group
                if len(writing) >= WRITES_IN_FLIGHT:
                    report.written_samples += await writing.popleft()
        if blocks:
            start()
        while writing:
            report.written_samples += await writing.popleft()
    finally:
        for task in writing:  # only after a failed write
            task.cancel()
