"""Streaming readers of historian exports: wide CSV, long CSV and Parquet, batch by batch.

Layouts:

* **wide**: one timestamp column, then one column per tag (``FIC101.PV``, ``FIC101.SP``, ...);
  a tag's quality may sit in a column named after it with the suffix ``.quality``,
  `` quality``, ``_quality``, ``.Q``, ``.status`` or `` status`` (any case);
* **long**: columns ``tag``, ``timestamp``, ``value`` and optionally ``quality`` (also spelled
  ``tagname``/``name``, ``time``/``datetime``/``_time``, ``val``/``_value``, ``status``).

CSV files are read by Arrow's streaming reader in blocks, so memory stays bounded by the
block size whatever the file size; every cell is read as text and converted by
:mod:`clpm_shared.ingest.cells`. The delimiter (``,``, ``;``, tab or ``|``) is taken from the
header line; a ``;``-separated file uses the decimal comma unless told otherwise.
Parquet files are read in row batches (``pyarrow.parquet.ParquetFile.iter_batches``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

Layout = Literal["wide", "long"]
TIME_NAMES = ("timestamp", "time", "datetime", "date", "_time", "ts", "date/time")
TAG_NAMES = ("tag", "tagname", "tag_name", "name", "point", "_field")
VALUE_NAMES = ("value", "val", "_value")
QUALITY_NAMES = ("quality", "status", "q")
QUALITY_SUFFIXES = (".quality", " quality", "_quality", ".q", ".status", " status")
CSV_BLOCK_BYTES = 8 << 20
PARQUET_BATCH_ROWS = 65_536
SUFFIXES = (".csv", ".txt", ".parquet", ".pq")


class ExportFormatError(ValueError):
    """A file's header does not fit any layout (the message says what is missing)."""


@dataclass
class RawBatch:
    """Consecutive rows of a file; ``first_line`` numbers the first (CSV: the header is line 1;
    Parquet: the first row is row 1)."""

    first_line: int
    batch: pa.RecordBatch
    skipped_lines: tuple[int, ...] = ()
    """Lines left out of the file before and within this batch (rows with the wrong number of
    cells): the rows after them sit one line further down."""

    def line_of(self, row: int) -> int:
        """File line (or Parquet row) number of row ``row`` of the batch."""
        line = self.first_line + row
        for skipped in self.skipped_lines:
            if skipped <= line:
                line += 1
        return line


@dataclass
class ExportFile:
    """One export file: its layout and which column holds what."""

    path: Path
    kind: Literal["csv", "parquet"]
    layout: Layout
    columns: list[str]
    time_column: str
    tag_column: str | None = None
    value_column: str | None = None
    quality_column: str | None = None
    quality_of: dict[str, str] = field(default_factory=dict)
    """Wide layout: tag column -> its quality column."""
    delimiter: str = ","
    decimal_comma: bool = False
    invalid_rows: list[tuple[int | None, str]] = field(default_factory=list)
    """CSV rows with the wrong number of cells, met while reading: (line, text)."""

    @property
    def row_word(self) -> str:
        return "line" if self.kind == "csv" else "row"

    def batches(self, *, exact_lines: bool = True) -> Iterator[RawBatch]:
        """Every row, in order. ``exact_lines`` reads CSV on one thread so that rows with the
        wrong number of cells are reported with their line numbers."""
        if self.kind == "parquet":
            yield from self._parquet_batches()
        else:
            yield from self._csv_batches(exact_lines=exact_lines)

    def _parquet_batches(self) -> Iterator[RawBatch]:
        line = 1
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=PARQUET_BATCH_ROWS):
            yield RawBatch(line, batch)
            line += batch.num_rows

    def _csv_batches(self, *, exact_lines: bool) -> Iterator[RawBatch]:
        self.invalid_rows.clear()
        skipped_before: list[int] = []

        def invalid(row: pa_csv.InvalidRow) -> str:
            self.invalid_rows.append((row.number, row.text[:120]))
            if row.number is not None:
                skipped_before.append(row.number)
            return "skip"

        reader = pa_csv.open_csv(
            self.path,
            read_options=pa_csv.ReadOptions(
                block_size=CSV_BLOCK_BYTES, use_threads=not exact_lines, encoding="utf8"
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=self.delimiter, ignore_empty_lines=False, invalid_row_handler=invalid
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(self.columns, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        rows = 0
        for batch in reader:
            yield RawBatch(2 + rows, batch, tuple(sorted(skipped_before)))
            rows += batch.num_rows


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {column.strip().lower(): column for column in columns}
    return next((lowered[name] for name in names if name in lowered), None)


def _sniff_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def open_export(path: Path, *, decimal_comma: bool | None = None) -> ExportFile:
    """Inspect a file's header and decide its layout; raise ExportFormatError if none fits."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        columns = list(pq.ParquetFile(path).schema_arrow.names)
        export = _layout(path, "parquet", columns, ",")
        export.decimal_comma = bool(decimal_comma)
        return export
    with path.open("rb") as handle:
        head = handle.readline(1 << 20)
    if head.startswith(b"\xef\xbb\xbf"):
        raise ExportFormatError("the file starts with a UTF-8 byte order mark; save it without")
    try:
        header = head.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ExportFormatError("line 1: the header is not UTF-8 text") from None
    if not header.strip():
        raise ExportFormatError("line 1: the header row is empty")
    delimiter = _sniff_delimiter(header)
    columns = [name.strip().strip('"') for name in header.split(delimiter)]
    export = _layout(path, "csv", columns, delimiter)
    export.decimal_comma = delimiter == ";" if decimal_comma is None else decimal_comma
    return export


def _layout(path: Path, kind: Literal["csv", "parquet"], columns: list[str], delimiter: str) -> (
    ExportFile
):  # fmt: skip
    seen: set[str] = set()
    for number, name in enumerate(columns, start=1):
        if not name:
            raise ExportFormatError(f"line 1: column {number} has no name")
        if name in seen:
            raise ExportFormatError(f"line 1: column {name!r} appears twice")
        seen.add(name)
    time_column = _find(columns, TIME_NAMES)
    tag_column = _find(columns, TAG_NAMES)
    value_column = _find(columns, VALUE_NAMES)
    if tag_column is not None and value_column is not None:
        if time_column is None:
            raise ExportFormatError(
                f"line 1: a long export needs a timestamp column ({', '.join(TIME_NAMES)})"
            )
        return ExportFile(
            path, kind, "long", columns, time_column, tag_column, value_column,
            _find(columns, QUALITY_NAMES), delimiter=delimiter,
        )  # fmt: skip
    if time_column is None:
        time_column = columns[0]  # wide exports name their first column anything
    if len(columns) < 2:
        raise ExportFormatError("line 1: a wide export needs a timestamp column and tag columns")
    quality_of: dict[str, str] = {}
    lowered = {name.lower(): name for name in columns}
    for name in columns:
        for suffix in QUALITY_SUFFIXES:
            if name.lower().endswith(suffix) and name.lower()[: -len(suffix)] in lowered:
                quality_of[lowered[name.lower()[: -len(suffix)]]] = name
                break
    return ExportFile(
        path, kind, "wide", columns, time_column, quality_of=quality_of, delimiter=delimiter
    )


def export_files(paths: list[Path]) -> list[Path]:
    """The files to import: each file given, and every CSV/Parquet file of each folder given
    (sorted by name)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
            )
        else:
            found.append(path)
    return found
