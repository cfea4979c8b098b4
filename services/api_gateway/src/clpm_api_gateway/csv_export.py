"""CSV export of query answers: chosen by ``format=csv`` or ``Accept: text/csv``.

Columnar answers (``ts``, ``pv``, ...) become one row per sample; row answers (KPIs) one row
per item. Nested values (mode shares, reasons) are written as JSON text in their cell.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from fastapi import Request
from fastapi.responses import Response

CSV_MEDIA_TYPE = "text/csv"


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


def wants_csv(request: Request, format_: ExportFormat | None) -> bool:
    """True for ``format=csv``, or no ``format`` and an Accept header asking for text/csv."""
    if format_ is not None:
        return format_ is ExportFormat.CSV
    accept = request.headers.get("accept", "")
    return CSV_MEDIA_TYPE in accept.lower() and "application/json" not in accept.lower()


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A cell as written; text that a spreadsheet would run as a formula (``=HYPERLINK(...)``
    in a loop name) gets a leading ``'``, as the fleet page's own export does."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _render(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return buffer.getvalue()


def columnar_csv(body: Mapping[str, Any], columns: Sequence[str]) -> str:
    """CSV of a columnar answer: the listed keys (each a list of equal length) as columns."""
    lists = [body[column] for column in columns]
    return _render(columns, zip(*lists, strict=True))


def rows_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV of a list of objects, one column per listed key."""
    return _render(columns, ([row.get(column) for column in columns] for row in rows))


def csv_response(text: str, filename: str, headers: Mapping[str, str] | None = None) -> Response:
    safe = "".join(char if char.isalnum() or char in "-_." else "_" for char in filename)
    all_headers = {"Content-Disposition": f'attachment; filename="{safe}.csv"', **(headers or {})}
    return Response(text, media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8", headers=all_headers)


CSV_RESPONSE_DOC: dict[str, Any] = {
    CSV_MEDIA_TYPE: {
        "schema": {"type": "string"},
        "example": "ts,pv,op,sp\n2025-01-10T10:00:00.000Z,50.1,42.0,50.0\n",
    }
}
