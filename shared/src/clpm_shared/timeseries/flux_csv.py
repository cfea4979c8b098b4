"""Parsing InfluxDB 2 annotated CSV (the answer of ``/api/v2/query``) into typed tables.

Format (InfluxDB 2 docs, "Annotated CSV"): annotation rows ``#datatype``, ``#group``,
``#default`` precede a header row; the first cell of every row is the annotation name (empty
in header and data rows). A blank line ends a block; the next block has its own annotations
and header (tables with another schema). Within a block the ``table`` column tells tables
apart. An empty cell takes the column's ``#default`` or is null. An error is reported in-band
as a table with the columns ``error`` and ``reference``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clpm_shared.timeseries.base import FloatArray, IntArray, TimeSeriesError


@dataclass
class FluxTable:
    """One table of the answer: its yield name, column names and datatypes, raw cells."""

    result: str
    table: str
    columns: list[str]
    datatypes: list[str]
    rows: list[list[str | None]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def has(self, name: str) -> bool:
        return name in self.columns

    def raw(self, name: str) -> list[str | None]:
        if name not in self.columns:
            return [None] * len(self.rows)
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def floats(self, name: str) -> FloatArray:
        """A numeric column as float64; null as NaN."""
        return np.array(
            [np.nan if cell is None else float(cell) for cell in self.raw(name)], dtype=np.float64
        )

    def times_ns(self, name: str = "_time") -> IntArray:
        """An RFC 3339 (UTC, ``Z``) column as int64 epoch nanoseconds."""
        cells = self.raw(name)
        if any(cell is None or not cell.endswith("Z") for cell in cells):
            raise TimeSeriesError(f"flux answer: column {name} holds a null or non-UTC time")
        try:
            moments = np.array([cell[:-1] for cell in cells if cell], dtype="datetime64[ns]")
        except ValueError as exc:
            raise TimeSeriesError(f"flux answer: bad time in column {name}: {exc}") from exc
        return moments.astype(np.int64)

    def value(self, name: str, row: int = 0) -> Any:
        """One cell converted by its datatype (long, double, boolean, string, dateTime)."""
        cell = self.raw(name)[row]
        if cell is None:
            return None
        kind = self.datatypes[self.columns.index(name)]
        if kind in ("long", "unsignedLong"):
            return int(cell)
        if kind == "double":
            return float(cell)
        if kind == "boolean":
            return cell == "true"
        if kind.startswith("dateTime"):
            return int(np.datetime64(cell.rstrip("Z"), "ns").astype(np.int64))
        return cell


def parse_annotated_csv(text: str) -> list[FluxTable]:
    """Tables of an annotated CSV answer in order; an in-band error raises TimeSeriesError."""
    tables: list[FluxTable] = []
    by_key: dict[tuple[int, str, str], FluxTable] = {}
    datatypes: list[str] = []
    defaults: list[str] = []
    columns: list[str] | None = None
    block = 0
    for record in csv.reader(io.StringIO(text)):
        if not record or all(cell == "" for cell in record):
            columns, datatypes, defaults = None, [], []
            block += 1
            continue
        head, cells = record[0], record[1:]
        if head.startswith("#"):
            if columns is not None:  # annotations without a blank line: a new block
                columns, block = None, block + 1
            if head == "#datatype":
                datatypes = cells
            elif head == "#default":
                defaults = cells
            continue
        if columns is None:
            columns = cells
            continue
        if "error" in columns and "reference" in columns:
            message = cells[columns.index("error")]
            raise TimeSeriesError(f"flux query failed: {message}")
        values: list[str | None] = [
            cell if cell != "" else (defaults[i] if i < len(defaults) and defaults[i] else None)
            for i, cell in enumerate(cells)
        ]
        result = values[columns.index("result")] if "result" in columns else "_result"
        table_id = values[columns.index("table")] if "table" in columns else "0"
        key = (block, result or "_result", table_id or "0")
        table = by_key.get(key)
        if table is None:
            table = FluxTable(
                key[1], key[2], list(columns), list(datatypes) or ["string"] * len(columns)
            )
            by_key[key] = table
            tables.append(table)
        table.rows.append(values)
    return tables
