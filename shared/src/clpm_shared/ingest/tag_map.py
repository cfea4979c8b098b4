"""Tag maps: which source tags (historian tags or OPC UA node ids) carry each loop's PV/SP/OP/mode.

A tag map is a CSV (header row) or JSON (a list of objects) with the columns ``loop_id``,
``pv_tag``, ``sp_tag``, ``op_tag``, ``mode_tag``, ``pv_scale``, ``pv_offset``, ``op_scale``,
``op_offset``, ``pv_lo``, ``pv_hi``, ``units``, ``loop_type``, ``unit``, ``area``,
``description`` and ``mode_map``; only ``loop_id`` and ``pv_tag`` are required. Values are
stored as ``raw * scale + offset``; ``mode_map`` maps raw mode values to AUT/MAN/CAS
(``"0=MAN;1=AUT;2=CAS"`` in CSV, an object in JSON). Every problem is reported with its line
and column (:class:`TagMapError`), so a map is used whole or not at all.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clpm_shared.timeseries import validate_loop_id

_COLUMNS = (
    "loop_id", "pv_tag", "sp_tag", "op_tag", "mode_tag", "pv_scale", "pv_offset", "op_scale",
    "op_offset", "pv_lo", "pv_hi", "units", "loop_type", "unit", "area", "description",
    "mode_map",
)  # fmt: skip
_MODES = ("AUT", "MAN", "CAS")


@dataclass(frozen=True)
class LoopTags:
    """The source tags of one loop and how their raw values become stored values."""

    loop_id: str
    pv: str | None
    sp: str | None
    op: str | None
    mode: str | None
    pv_scale: float = 1.0
    pv_offset: float = 0.0
    op_scale: float = 1.0
    op_offset: float = 0.0
    pv_lo: float | None = None
    pv_hi: float | None = None
    units: str | None = None
    loop_type: str | None = None
    unit: str | None = None
    area: str | None = None
    description: str | None = None
    mode_map: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TagMap:
    """Every loop of a tag map, in file order."""

    loops: tuple[LoopTags, ...]

    def by_tag(self) -> dict[str, tuple[str, str]]:
        """Source tag -> (loop_id, ``"pv"|"sp"|"op"|"mode"``)."""
        found: dict[str, tuple[str, str]] = {}
        for loop in self.loops:
            for role in ("pv", "sp", "op", "mode"):
                tag = getattr(loop, role)
                if tag is not None:
                    found[tag] = (loop.loop_id, role)
        return found


class TagMapError(ValueError):
    """A tag map with problems; ``problems`` lists (line, column, reason) for each."""

    def __init__(self, problems: list[tuple[int, str, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"line {ln}: {col}: {why}" for ln, col, why in problems))


def load_tag_map(path: Path) -> TagMap:
    """Read a ``.csv`` or ``.json`` tag map (by suffix)."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TagMapError([(exc.lineno, "json", exc.msg)]) from None
        return parse_tag_map_json(data)
    return parse_tag_map_csv(text)


def parse_tag_map_csv(text: str) -> TagMap:
    """Parse a CSV tag map (header row first; the header is line 1)."""
    try:
        rows = list(csv.DictReader(text.removeprefix("\ufeff").splitlines()))
    except csv.Error as exc:
        raise TagMapError([(1, "csv", str(exc))]) from None
    return _build([(number, dict(row)) for number, row in enumerate(rows, start=2)])


def parse_tag_map_json(data: object) -> TagMap:
    """Parse a JSON tag map: a list of objects (object n is reported as line n)."""
    if not isinstance(data, list):
        raise TagMapError([(1, "loops", "expected a list of objects")])
    rows: list[tuple[int, dict[str, object]]] = []
    problems: list[tuple[int, str, str]] = []
    for number, row in enumerate(data, start=1):
        if isinstance(row, dict):
            rows.append((number, row))
        else:
            problems.append((number, "row", "expected an object"))
    if problems:
        raise TagMapError(problems)
    return _build(rows)


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _build(rows: list[tuple[int, dict[str, object]]]) -> TagMap:
    problems: list[tuple[int, str, str]] = []
    loops: list[LoopTags] = []
    seen: set[str] = set()
    for line, row in rows:
        before = len(problems)
        for key in row:
            if key is not None and key not in _COLUMNS:
                problems.append((line, str(key), "unknown column"))
        loop_id = _text(row.get("loop_id"))
        if loop_id is None:
            problems.append((line, "loop_id", "required"))
        else:
            try:
                validate_loop_id(loop_id)
            except ValueError as exc:
                problems.append((line, "loop_id", str(exc).removeprefix("loop_id: ")))
            if loop_id in seen:
                problems.append((line, "loop_id", f"duplicate {loop_id!r}"))
            seen.add(loop_id)
        if _text(row.get("pv_tag")) is None:
            problems.append((line, "pv_tag", "required"))
        numbers: dict[str, float | None] = {}
        for name, default in (
            ("pv_scale", 1.0), ("pv_offset", 0.0), ("op_scale", 1.0), ("op_offset", 0.0),
            ("pv_lo", None), ("pv_hi", None),
        ):  # fmt: skip
            raw = _text(row.get(name))
            try:
                numbers[name] = default if raw is None else float(raw)
            except ValueError:
                problems.append((line, name, f"not a number: {raw!r}"))
                continue
            value = numbers[name]
            if value is not None and not math.isfinite(value):
                problems.append((line, name, "must be finite"))
        lo, hi = numbers.get("pv_lo"), numbers.get("pv_hi")
        if lo is not None and hi is not None and lo >= hi:
            problems.append((line, "pv_hi", "must be greater than pv_lo"))
        mode_map = _mode_map(row.get("mode_map"), line, problems)
        if len(problems) > before or loop_id is None:
            continue
        loops.append(
            LoopTags(
                loop_id=loop_id,
                pv=_text(row.get("pv_tag")),
                sp=_text(row.get("sp_tag")),
                op=_text(row.get("op_tag")),
                mode=_text(row.get("mode_tag")),
                pv_scale=numbers["pv_scale"] or 0.0,
                pv_offset=numbers["pv_offset"] or 0.0,
                op_scale=numbers["op_scale"] or 0.0,
                op_offset=numbers["op_offset"] or 0.0,
                pv_lo=lo,
                pv_hi=hi,
                units=_text(row.get("units")),
                loop_type=_text(row.get("loop_type")),
                unit=_text(row.get("unit")),
                area=_text(row.get("area")),
                description=_text(row.get("description")),
                mode_map=mode_map,
            )
        )
    if problems:
        raise TagMapError(problems)
    return TagMap(tuple(loops))


def _mode_map(value: object, line: int, problems: list[tuple[int, str, str]]) -> dict[str, str]:
    pairs: list[tuple[str, object]]
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, dict):
        pairs = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, str):
        pairs = []
        for item in value.split(";"):
            raw, sep, target = item.partition("=")
            if not sep or not raw.strip():
                problems.append((line, "mode_map", f"expected raw=MODE, got {item.strip()!r}"))
                continue
            pairs.append((raw.strip(), target))
    else:
        problems.append((line, "mode_map", "expected an object or 'raw=MODE;...'"))
        return {}
    mapped: dict[str, str] = {}
    for key, value_to in pairs:
        name = str(value_to).strip().upper()
        if name not in _MODES:
            problems.append(
                (line, "mode_map", f"{key!r} maps to {value_to!r}, not AUT, MAN or CAS")
            )
        mapped[key] = name
    return mapped
