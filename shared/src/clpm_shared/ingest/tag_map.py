"""Tag map: which historian tag (or OPC UA node) is the PV, SP, OP and mode of which loop.

A plant's export names tags (``FIC101.PV``, ``FIC101.SP``, ...); CLPM stores loops. The tag map
ties them together and says how to turn raw values into what is stored
(``stored = raw * scale + offset`` for PV and OP), the transmitter range (``pv_lo``/``pv_hi``),
the catalogue fields (units, loop type, unit, area, description) and how the mode tag's raw
values read (``mode_map``: raw text -> ``AUT``, ``MAN`` or ``CAS``).

CSV header (only ``loop_id`` and ``pv_tag`` are required)::

    loop_id,pv_tag,sp_tag,op_tag,mode_tag,pv_scale,pv_offset,op_scale,op_offset,pv_lo,pv_hi,
    units,loop_type,unit,area,description,mode_map

with ``mode_map`` written ``0=MAN;1=AUT;2=CAS``. JSON: a list of objects with the same keys
(``mode_map`` an object), or ``{"loops": [...]}``. Every problem is reported as
``(line, column, reason)``: the CSV line (the header is line 1) or the JSON list position
(the first object is 1).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clpm_shared.timeseries.base import LOOP_ID_PATTERN

ROLES: tuple[str, ...] = ("pv", "sp", "op", "mode")
MODES: frozenset[str] = frozenset({"AUT", "MAN", "CAS"})
LOOP_TYPES: frozenset[str] = frozenset({"flow", "pressure", "level", "temperature", "other"})
COLUMNS: tuple[str, ...] = (
    "loop_id", "pv_tag", "sp_tag", "op_tag", "mode_tag", "pv_scale", "pv_offset", "op_scale",
    "op_offset", "pv_lo", "pv_hi", "units", "loop_type", "unit", "area", "description",
    "mode_map",
)  # fmt: skip


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
    """Every loop of a tag map; a tag belongs to at most one loop and role."""

    loops: tuple[LoopTags, ...]

    def by_tag(self) -> dict[str, tuple[str, str]]:
        """Source tag -> ``(loop_id, role)``, role one of ``pv``, ``sp``, ``op``, ``mode``."""
        tags: dict[str, tuple[str, str]] = {}
        for loop in self.loops:
            for role in ROLES:
                tag = getattr(loop, role)
                if tag is not None:
                    tags[tag] = (loop.loop_id, role)
        return tags


class TagMapError(ValueError):
    """The tag map is invalid; ``problems`` lists ``(line, column, reason)`` of each fault."""

    def __init__(self, problems: list[tuple[int, str, str]]) -> None:
        self.problems = problems
        super().__init__(
            "\n".join(f"line {line}: {column}: {reason}" for line, column, reason in problems)
        )


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(
    row: Mapping[str, object], name: str, default: float | None, problems: list[tuple[str, str]]
) -> float | None:
    value = row.get(name)
    if isinstance(value, bool):
        problems.append((name, f"not a number: {value!r}"))
        return default
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = _text(value)
        if text is None:
            return default
        try:
            number = float(text)
        except ValueError:
            problems.append((name, f"not a number: {text!r}"))
            return default
    if not math.isfinite(number):
        problems.append((name, "must be a finite number"))
        return default
    return number


def _mode_map(value: object, problems: list[tuple[str, str]]) -> dict[str, str]:
    pairs: list[tuple[str, object]] = []
    mapping: dict[str, str] = {}
    if isinstance(value, Mapping):
        pairs = [(str(key).strip(), target) for key, target in value.items()]
    elif (text := _text(value)) is not None:
        for part in text.split(";"):
            if not part.strip():
                continue
            raw, sep, mode_text = part.partition("=")
            if not sep:
                problems.append(
                    ("mode_map", f"expected raw=MODE pairs like 0=MAN;1=AUT, got {part!r}")
                )
                continue
            pairs.append((raw.strip(), mode_text))
    elif value is not None and not isinstance(value, str):
        problems.append(("mode_map", "expected raw=MODE pairs (CSV) or an object (JSON)"))
    for raw, target in pairs:
        mode = str(target).strip().upper()
        if not raw:
            problems.append(("mode_map", "empty raw value"))
        elif mode not in MODES:
            problems.append(("mode_map", f"{raw!r} maps to {target!r}; allowed: AUT, MAN, CAS"))
        elif raw in mapping:
            problems.append(("mode_map", f"raw value {raw!r} given twice"))
        else:
            mapping[raw] = mode
    return mapping


def _loop(row: Mapping[str, object], problems: list[tuple[str, str]]) -> LoopTags | None:
    unknown = sorted(str(key) for key in row if key not in COLUMNS and key is not None)
    problems.extend((name, f"unknown column; allowed: {', '.join(COLUMNS)}") for name in unknown)
    loop_id = _text(row.get("loop_id"))
    if loop_id is None:
        problems.append(("loop_id", "required"))
    elif not LOOP_ID_PATTERN.fullmatch(loop_id):
        problems.append(
            (
                "loop_id",
                "must be 1-128 characters: letters, digits and _ . : - / "
                "(starting with a letter or digit)",
            )
        )
    tags = {role: _text(row.get(f"{role}_tag")) for role in ROLES}
    if tags["pv"] is None:
        problems.append(("pv_tag", "required"))
    pv_scale = _number(row, "pv_scale", 1.0, problems)
    pv_offset = _number(row, "pv_offset", 0.0, problems)
    op_scale = _number(row, "op_scale", 1.0, problems)
    op_offset = _number(row, "op_offset", 0.0, problems)
    for name, scale in (("pv_scale", pv_scale), ("op_scale", op_scale)):
        if scale == 0.0:
            problems.append((name, "must not be 0 (every value would become the offset)"))
    pv_lo = _number(row, "pv_lo", None, problems)
    pv_hi = _number(row, "pv_hi", None, problems)
    if (pv_lo is None) != (pv_hi is None):
        problems.append(("pv_hi", "give both limits of the PV range (pv_lo and pv_hi), or neither"))
    elif pv_lo is not None and pv_hi is not None and pv_lo >= pv_hi:
        problems.append(("pv_hi", "must be greater than pv_lo"))
    loop_type = _text(row.get("loop_type"))
    if loop_type is not None:
        loop_type = loop_type.lower()
        if loop_type not in LOOP_TYPES:
            allowed = ", ".join(sorted(LOOP_TYPES))
            problems.append(("loop_type", f"{loop_type!r}; allowed: {allowed}"))
    for name, longest in (("units", 32), ("unit", 128), ("area", 128)):
        text = _text(row.get(name))
        if text is not None and len(text) > longest:
            problems.append((name, f"at most {longest} characters"))
    mode_map = _mode_map(row.get("mode_map"), problems)
    if mode_map and tags["mode"] is None:
        problems.append(("mode_map", "given without a mode_tag"))
    if problems or loop_id is None:
        return None
    return LoopTags(
        loop_id=loop_id,
        pv=tags["pv"],
        sp=tags["sp"],
        op=tags["op"],
        mode=tags["mode"],
        pv_scale=pv_scale if pv_scale is not None else 1.0,
        pv_offset=pv_offset if pv_offset is not None else 0.0,
        op_scale=op_scale if op_scale is not None else 1.0,
        op_offset=op_offset if op_offset is not None else 0.0,
        pv_lo=pv_lo,
        pv_hi=pv_hi,
        units=_text(row.get("units")),
        loop_type=loop_type,
        unit=_text(row.get("unit")),
        area=_text(row.get("area")),
        description=_text(row.get("description")),
        mode_map=mode_map,
    )


def _build(rows: list[tuple[int, object]]) -> TagMap:
    problems: list[tuple[int, str, str]] = []
    loops: list[LoopTags] = []
    loop_lines: dict[str, int] = {}
    tag_lines: dict[str, tuple[int, str]] = {}
    for line, row in rows:
        if not isinstance(row, Mapping):
            problems.append((line, "row", "expected an object with loop_id and pv_tag"))
            continue
        found: list[tuple[str, str]] = []
        loop = _loop(row, found)
        loop_id = _text(row.get("loop_id"))
        if loop_id is not None and loop_id in loop_lines:
            found.append(("loop_id", f"{loop_id!r} already on line {loop_lines[loop_id]}"))
        elif loop_id is not None:
            loop_lines[loop_id] = line
        for role in ROLES:
            tag = _text(row.get(f"{role}_tag"))
            if tag is None:
                continue
            if tag in tag_lines:
                where, column = tag_lines[tag]
                reason = f"tag {tag!r} already mapped on line {where} ({column})"
                found.append((f"{role}_tag", reason))
            else:
                tag_lines[tag] = (line, f"{role}_tag")
        problems.extend((line, column, reason) for column, reason in found)
        if loop is None or found:
            continue
        loops.append(loop)
    if not rows and not problems:
        problems.append((1, "loop_id", "the tag map names no loop"))
    if problems:
        raise TagMapError(problems)
    return TagMap(tuple(loops))


def parse_tag_map_csv(text: str) -> TagMap:
    """Parse a CSV tag map (header row first); raises :class:`TagMapError` naming every fault."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = [name.strip() for name in (reader.fieldnames or [])]
    problems: list[tuple[int, str, str]] = []
    for required in ("loop_id", "pv_tag"):
        if required not in header:
            problems.append((1, required, "required column missing from the header"))
    problems.extend(
        (1, name, f"unknown column; allowed: {', '.join(COLUMNS)}")
        for name in header
        if name not in COLUMNS
    )
    if problems:
        raise TagMapError(problems)
    reader.fieldnames = header
    rows: list[tuple[int, object]] = []
    try:
        for row in reader:
            if None in row:  # more cells than header columns
                cells = len(header) + len(row[None])
                reason = f"{cells} cells, the header has {len(header)}"
                problems.append((reader.line_num, "row", reason))
                continue
            if all(_text(value) is None for value in row.values()):
                continue
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise TagMapError([(reader.line_num, "row", str(exc))]) from None
    if problems:
        raise TagMapError(problems)
    return _build(rows)


def parse_tag_map_json(data: object) -> TagMap:
    """Validate a JSON tag map already loaded: a list of objects or ``{"loops": [...]}``."""
    found = data.get("loops") if isinstance(data, Mapping) else data
    if not isinstance(found, list):
        raise TagMapError([(1, "loops", "expected a list of loop objects")])
    return _build(list(enumerate(found, start=1)))


def load_tag_map(path: Path) -> TagMap:
    """Read a tag map file: ``.json`` as JSON, anything else as CSV (UTF-8, optional BOM)."""
    text = Path(path).read_text(encoding="utf-8-sig")
    if Path(path).suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TagMapError([(exc.lineno, "json", exc.msg)]) from None
        return parse_tag_map_json(data)
    return parse_tag_map_csv(text)
