"""Import a plant's loop list (CSV or JSON) into ``loops`` and ``loop_config``.

Plants keep their tag lists in spreadsheets: one row per loop with its name, unit/area (for
roll-ups), engineering units and analysis settings. Each row is validated (pydantic) before
anything is written; the import is one transaction, so a bad file changes nothing.

    python -m clpm_shared.loop_catalogue plant.csv [--dry-run]

The gateway takes the same lists at ``POST /api/v1/loops/catalogue`` (admin).

Columns: loop_id (required), name, description, unit, area, engineering_units, and the
loop_config fields loop_type, criticality, apc_enabled, apc_modes, normal_modes (lists
separated by ``;``), op_lo, op_hi, pv_lo, pv_hi, sat_margin, deadband, dead_time_s,
kpi_window_min. Empty cells mean "leave the default". ``pv_lo``/``pv_hi`` (the transmitter
range, both or neither) make every "% of span" KPI exact; without them it is of an estimate.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.ext.asyncio import AsyncSession

from clpm_shared.config import load_settings
from clpm_shared.db import create_engine, create_session_factory
from clpm_shared.db.repositories import LoopConfigRepository, LoopRepository
from clpm_shared.timeseries import validate_loop_id


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _split_modes(value: Any) -> Any:
    if isinstance(value, str):
        modes = [m.strip().upper() for m in value.replace(",", ";").split(";") if m.strip()]
        return modes or None
    return value


Modes = Annotated[list[str] | None, BeforeValidator(_blank_to_none), BeforeValidator(_split_modes)]


class LoopEntry(BaseModel):
    """One row of a loop list."""

    loop_id: str
    name: Annotated[str | None, BeforeValidator(_blank_to_none)] = None
    description: Annotated[str | None, BeforeValidator(_blank_to_none)] = None
    unit: Annotated[str | None, BeforeValidator(_blank_to_none)] = None
    area: Annotated[str | None, BeforeValidator(_blank_to_none)] = None
    engineering_units: Annotated[str | None, BeforeValidator(_blank_to_none)] = None
    loop_type: Annotated[
        Literal["flow", "pressure", "level", "temperature", "other"] | None,
        BeforeValidator(_blank_to_none),
    ] = None
    criticality: Annotated[int | None, BeforeValidator(_blank_to_none), Field(ge=1, le=5)] = None
    apc_enabled: Annotated[bool | None, BeforeValidator(_blank_to_none)] = None
    apc_modes: Modes = None
    normal_modes: Modes = None
    op_lo: Annotated[float | None, BeforeValidator(_blank_to_none)] = None
    op_hi: Annotated[float | None, BeforeValidator(_blank_to_none)] = None
    pv_lo: Annotated[float | None, BeforeValidator(_blank_to_none)] = None
    pv_hi: Annotated[float | None, BeforeValidator(_blank_to_none)] = None
    sat_margin: Annotated[float | None, BeforeValidator(_blank_to_none), Field(ge=0)] = None
    deadband: Annotated[float | None, BeforeValidator(_blank_to_none), Field(ge=0)] = None
    dead_time_s: Annotated[float | None, BeforeValidator(_blank_to_none), Field(ge=0)] = None
    kpi_window_min: Annotated[int | None, BeforeValidator(_blank_to_none), Field(ge=1, le=1440)] = (
        None
    )

    @field_validator("loop_id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return validate_loop_id(value.strip())

    @model_validator(mode="after")
    def _pv_range(self) -> LoopEntry:
        # one limit alone cannot give a span: the KPIs would silently keep estimating it
        if (self.pv_lo is None) != (self.pv_hi is None):
            raise ValueError("pv_lo and pv_hi: give both limits of the PV range, or neither")
        if self.pv_lo is not None and self.pv_hi is not None and self.pv_lo >= self.pv_hi:
            raise ValueError("pv_hi: must be greater than pv_lo")
        return self

    def loop_values(self) -> dict[str, Any]:
        values = {
            "name": self.name or self.loop_id,
            "description": self.description or "",
            "unit": self.unit,
            "area": self.area,
            "engineering_units": self.engineering_units,
        }
        return values

    def config_values(self) -> dict[str, Any]:
        names = (
            "loop_type", "criticality", "apc_enabled", "apc_modes", "normal_modes", "op_lo",
            "op_hi", "pv_lo", "pv_hi", "sat_margin", "deadband", "dead_time_s", "kpi_window_min",
        )  # fmt: skip
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


@dataclass(frozen=True)
class RowProblem:
    """One invalid cell: the row number (CSV: the header is row 1), the column, the problem."""

    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.column}: {self.message}"


class CatalogueError(ValueError):
    """The list has invalid rows; ``problems`` (and ``lines``) say which row and column."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = list(problems)
        self.lines = [str(problem) for problem in self.problems]
        super().__init__("\n".join(self.lines))


def parse_catalogue(text: str, *, json_list: bool) -> list[LoopEntry]:
    """Parse and validate every row of a loop list: CSV with a header row, or JSON (a list of
    objects, or ``{"loops": [...]}``). Raises :class:`CatalogueError` naming every bad cell,
    ``json.JSONDecodeError`` for JSON that does not parse."""
    rows: list[Any]
    if json_list:
        loaded = json.loads(text)
        found = loaded.get("loops") if isinstance(loaded, dict) else loaded
        if not isinstance(found, list):
            raise CatalogueError([RowProblem(1, "loops", "expected a list of loop objects")])
        rows = found
    else:
        try:
            rows = list(csv.DictReader(text.removeprefix("\ufeff").splitlines()))
        except csv.Error as exc:
            raise CatalogueError([RowProblem(1, "csv", str(exc))]) from None
    entries: list[LoopEntry] = []
    problems: list[RowProblem] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1 if json_list else 2):
        if not isinstance(row, dict):
            problems.append(RowProblem(number, "row", "expected an object"))
            continue
        raw_id = str(row.get("loop_id", "")).strip()
        if raw_id in seen:
            problems.append(RowProblem(number, "loop_id", f"duplicate {raw_id!r}"))
        seen.add(raw_id)
        try:
            entries.append(LoopEntry.model_validate(row))
        except ValidationError as exc:
            for error in exc.errors():
                column = ".".join(str(part) for part in error["loc"])
                message = str(error["msg"]).removeprefix("Value error, ")
                if not column:  # a check across columns names them: "pv_lo and pv_hi: ..."
                    head, _, rest = message.partition(": ")
                    named = rest and all(n in LoopEntry.model_fields for n in head.split(" and "))
                    column, message = (head, rest) if named else ("row", message)
                problems.append(RowProblem(number, column, message))
    if problems:
        raise CatalogueError(problems)
    return entries


def read_catalogue(path: Path) -> list[LoopEntry]:
    """Parse and validate every row of a CSV or JSON (list of objects) loop list file."""
    text = path.read_text(encoding="utf-8-sig")
    return parse_catalogue(text, json_list=path.suffix.lower() == ".json")


async def save_catalogue(session: AsyncSession, entries: Sequence[LoopEntry]) -> int:
    """Upsert every entry into ``loops`` and ``loop_config`` in the caller's transaction."""
    loops = LoopRepository(session)
    configs = LoopConfigRepository(session)
    for entry in entries:
        await loops.save(entry.loop_id, entry.loop_values())
        config = entry.config_values()
        if config:
            await configs.save(entry.loop_id, config)
    return len(entries)


async def import_catalogue(database_url: str, entries: Sequence[LoopEntry]) -> int:
    """Upsert every entry into ``loops`` and ``loop_config`` in one transaction."""
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            await save_catalogue(session, entries)
    finally:
        await engine.dispose()
    return len(entries)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m clpm_shared.loop_catalogue",
        description="Import a loop list (CSV or JSON) into loops and loop_config "
        "(database from DATABASE_URL / POSTGRES_*).",
    )
    parser.add_argument("file", type=Path, help="CSV with a header row, or JSON list of objects")
    parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
    args = parser.parse_args(argv)
    try:
        entries = read_catalogue(args.file)
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"{args.file}: {exc}") from None
    except CatalogueError as exc:
        print("\n".join(f"{args.file}: {line}" for line in exc.lines), file=sys.stderr)
        raise SystemExit(2) from None
    if args.dry_run:
        print(f"{len(entries)} loops valid; nothing written (--dry-run)")
        return
    count = asyncio.run(import_catalogue(load_settings().database.async_url, entries))
    print(f"imported {count} loops from {args.file}")


if __name__ == "__main__":
    main()
