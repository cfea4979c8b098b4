"""``POST /loops/import``: upload historian exports and their tag map (admin), imported as
``python -m clpm_shared.ingest`` does.

The multipart form is read only after authentication (the body limit ``API_MAX_UPLOAD_BYTES``
applies before); its files are copied to a temporary folder under their own base names. The
importer then validates every file before it writes anything; with problems the answer is 422
listing ``{file, line, column, reason}`` and nothing is stored (unless ``skip_bad_rows``).
Parsing is CPU work: the import runs in a worker thread with its own event loop and its own
connection to the time-series store, so the gateway keeps answering meanwhile. The loops that
received samples are created or updated in the catalogue (``data_source = import``, the file
names as detail) and the import is recorded in the audit trail.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path, PurePath
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.datastructures import FormData, UploadFile

from clpm_api_gateway.dependencies import ResourcesDep, SessionDep
from clpm_api_gateway.problems import PROBLEM_401, PROBLEM_422, PROBLEM_503
from clpm_api_gateway.response_cache import invalidate_loop
from clpm_api_gateway.security import UPLOAD_PATH, AdminPrincipal, require_role
from clpm_shared.config import CacheSettings, InfluxSettings
from clpm_shared.db.repositories.audit import AuditRepository
from clpm_shared.ingest.__main__ import follow_up_commands
from clpm_shared.ingest.catalogue import import_detail, register_imported_loops
from clpm_shared.ingest.importer import (
    ImportOptions,
    ImportRejectedError,
    ImportReport,
    Problem,
    import_exports,
)
from clpm_shared.ingest.readers import SUFFIXES
from clpm_shared.ingest.tag_map import TagMap, TagMapError, load_tag_map
from clpm_shared.ingest.timestamps import TimeFormatError, check_timezone, format_ns
from clpm_shared.ingest.writer import SeriesWriter
from clpm_shared.timeseries import StoreUnavailableError, create_store
from clpm_shared.web.problems import (
    TYPE_INVALID_PARAMETER,
    ParameterError,
    ProblemError,
    invalid_parameter,
)

router = APIRouter(
    prefix="/loops",
    tags=["loops"],
    dependencies=[Depends(require_role("viewer"))],
    responses={**PROBLEM_401, **PROBLEM_422, **PROBLEM_503},
)

MAX_FILES = 200
"""Export files of one upload (a folder of daily exports of half a year)."""
TAG_MAP_SUFFIXES = (".csv", ".json", ".txt")
TRUE = ("true", "1", "on", "yes")
FALSE = ("false", "0", "off", "no", "")
STORE_RETRY_AFTER_S = 30.0
SHOWN_TAGS = 50


class ImportProblem(BaseModel):
    """One fault of an upload: which file, line (Parquet: row), column and why."""

    file: str
    line: int | None
    column: str
    reason: str


class ImportedFile(BaseModel):
    file: str
    layout: str = Field(description="wide or long CSV, or Parquet")
    rows: int
    values: int
    bad_quality: int = Field(description="values of bad quality (not stored)")
    bad_rows: int = Field(description="rows with problems (skipped)")
    unmapped_tags: list[str] = Field(description="tags not in the tag map (ignored; first 50)")
    missing_tags: list[str] = Field(description="tag map tags not in this file")


class ImportedLoop(BaseModel):
    loop_id: str
    samples: int
    start: str
    end: str


class ExportImport(BaseModel):
    """What an upload imported (or, with ``dry_run``, would import)."""

    dry_run: bool
    files: list[ImportedFile]
    loops: list[ImportedLoop]
    values: int = Field(description="values read (all files)")
    samples_stored: int = Field(description="samples written (0 on a dry run)")
    values_stored: int
    bad_quality: int
    bad_rows: int
    start: str | None = Field(description="first sample of any loop (ISO 8601, UTC)")
    end: str | None
    seconds: float
    skipped: list[ImportProblem] = Field(description="rows skipped (skip_bad_rows; first 50)")
    catalogue_loops: int = Field(description="loops created or updated in the catalogue")
    next_steps: list[str] = Field(
        description="commands that compute the aggregates and KPI history of the imported range"
    )


def _problem(problem: Problem) -> ImportProblem:
    return ImportProblem(
        file=problem.file, line=problem.line, column=problem.column, reason=problem.reason
    )


def _rejected(detail: str, problems: list[ImportProblem], count: int) -> ProblemError:
    return ProblemError(
        422,
        detail,
        type_=TYPE_INVALID_PARAMETER,
        title="Invalid upload",
        errors=[
            ParameterError(
                parameter=f"{p.file}: line {p.line}: {p.column}", location="body", message=p.reason
            )
            for p in problems
        ],
        extensions={"problems": [p.model_dump() for p in problems], "problem_count": count},
    )


def _flag(form: FormData, name: str) -> bool:
    value = form.get(name)
    if value is None:
        return False
    if not isinstance(value, str) or value.strip().lower() not in TRUE + FALSE:
        raise invalid_parameter(name, "must be true or false", "body")
    return value.strip().lower() in TRUE


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_parameter(name, "must be a text field, not a file", "body")
    return value.strip() or None


def _file_name(upload: UploadFile, field: str, suffixes: tuple[str, ...]) -> str:
    """The upload's base name (no folders: it names a file in the temporary folder)."""
    name = PurePath((upload.filename or "").replace("\\", "/")).name
    if not name or name in (".", "..") or "\x00" in name:
        raise invalid_parameter(field, "every file needs a name", "body")
    if PurePath(name).suffix.lower() not in suffixes:
        raise invalid_parameter(field, f"{name}: must end in {', '.join(suffixes)}", "body")
    return name


def _files(form: FormData, field: str) -> list[UploadFile]:
    values = form.getlist(field)
    if any(not isinstance(value, UploadFile) for value in values):
        raise invalid_parameter(field, "must be a file", "body")
    return [value for value in values if isinstance(value, UploadFile)]


def _save(uploads: list[tuple[UploadFile, Path]]) -> None:
    for upload, target in uploads:
        upload.file.seek(0)
        with target.open("wb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)


async def _run_import(
    paths: list[Path],
    tag_map: TagMap,
    options: ImportOptions,
    influx: InfluxSettings | None,
    cache: CacheSettings,
) -> ImportReport:
    """Import in the calling thread's event loop; ``influx`` None: a dry run."""
    store = None if influx is None else create_store(influx, cache)
    try:
        writer = None if store is None else SeriesWriter(store)
        return await import_exports(paths, tag_map, writer, options)
    finally:
        if store is not None:
            await store.close()


def _import_in_thread(
    paths: list[Path],
    tag_map: TagMap,
    options: ImportOptions,
    influx: InfluxSettings | None,
    cache: CacheSettings,
) -> ImportReport:
    return asyncio.run(_run_import(paths, tag_map, options, influx, cache))


def _answer(report: ImportReport, catalogue_loops: int) -> ExportImport:
    loop_ids = sorted(report.loops)
    start, end = report.start_ns, report.end_ns
    return ExportImport(
        dry_run=report.dry_run,
        files=[
            ImportedFile(
                file=f.path.name,
                layout=f.layout,
                rows=f.rows,
                values=f.values,
                bad_quality=f.bad_quality,
                bad_rows=f.bad_rows,
                unmapped_tags=sorted(f.unmapped_tags)[:SHOWN_TAGS],
                missing_tags=f.missing_tags[:SHOWN_TAGS],
            )
            for f in report.files
        ],
        loops=[
            ImportedLoop(
                loop_id=s.loop_id,
                samples=s.samples,
                start=format_ns(s.first_ns),
                end=format_ns(s.last_ns),
            )
            for s in (report.loops[loop_id] for loop_id in loop_ids)
        ],
        values=report.values,
        samples_stored=report.written_samples,
        values_stored=report.written_values,
        bad_quality=report.bad_quality,
        bad_rows=report.bad_rows,
        start=None if start is None else format_ns(start),
        end=None if end is None else format_ns(end),
        seconds=round(report.seconds, 3),
        skipped=[_problem(p) for p in report.problems],
        catalogue_loops=catalogue_loops,
        next_steps=[] if report.dry_run else follow_up_commands(report, loop_ids),
    )


UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["exports", "tag_map"],
    "properties": {
        "exports": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "historian exports: wide or long CSV, or Parquet",
        },
        "tag_map": {"type": "string", "format": "binary", "description": "CSV or JSON"},
        "timezone": {"type": "string", "description": "IANA zone of timestamps without one"},
        "time_format": {"type": "string", "description": "strptime format of the timestamps"},
        "dry_run": {"type": "boolean", "description": "validate only, write nothing"},
        "skip_bad_rows": {"type": "boolean", "description": "import the valid rows"},
    },
}


@router.post(
    UPLOAD_PATH.removeprefix("/loops"),
    summary="Upload historian exports and their tag map (admin)",
    response_model=ExportImport,
    responses={413: {"description": "the upload exceeds API_MAX_UPLOAD_BYTES"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": UPLOAD_SCHEMA}},
        }
    },
)
async def import_exports_upload(
    request: Request, session: SessionDep, resources: ResourcesDep, principal: AdminPrincipal
) -> ExportImport:
    """Every file is validated before anything is written; problems answer 422 with
    ``problems`` (file, line, column, reason) and nothing is stored, unless ``skip_bad_rows``
    (then the valid rows are imported and the others counted). Bad-quality values are counted,
    not stored. The loops that received samples appear in the catalogue with
    ``data_source = import``. Aggregates and KPI history of the range are computed by the
    commands in ``next_steps``."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise invalid_parameter("Content-Type", "send a multipart/form-data form", "header")
    async with request.form(max_files=MAX_FILES + 1, max_fields=20) as form:
        exports = _files(form, "exports")
        maps = _files(form, "tag_map")
        if not exports:
            raise invalid_parameter("exports", "upload at least one export file", "body")
        if len(maps) != 1:
            raise invalid_parameter("tag_map", "upload exactly one tag map file", "body")
        names = [_file_name(upload, "exports", SUFFIXES) for upload in exports]
        if len(set(names)) != len(names):
            raise invalid_parameter("exports", "two files have the same name", "body")
        map_name = _file_name(maps[0], "tag_map", TAG_MAP_SUFFIXES)
        timezone = _text(form, "timezone")
        if timezone is not None:
            try:
                check_timezone(timezone)
            except TimeFormatError as exc:
                raise invalid_parameter("timezone", str(exc), "body") from None
        options = ImportOptions(
            timezone=timezone, time_format=_text(form, "time_format"),
            skip_bad_rows=_flag(form, "skip_bad_rows"),
        )  # fmt: skip
        dry_run = _flag(form, "dry_run")
        with tempfile.TemporaryDirectory(prefix="clpm-import-") as folder:
            root = Path(folder)
            (root / "exports").mkdir()
            (root / "map").mkdir()
            paths = [root / "exports" / name for name in names]
            map_path = root / "map" / map_name
            await asyncio.to_thread(_save, [*zip(exports, paths, strict=True), (maps[0], map_path)])
            try:
                tag_map = await asyncio.to_thread(load_tag_map, map_path)
            except UnicodeDecodeError:
                raise invalid_parameter("tag_map", "must be UTF-8 text", "body") from None
            except TagMapError as exc:
                problems = [
                    ImportProblem(file=map_name, line=line, column=column, reason=reason)
                    for line, column, reason in exc.problems
                ]
                raise _rejected(
                    f"the tag map has {len(problems)} problems; nothing was imported",
                    problems,
                    len(problems),
                ) from None
            influx = None if dry_run else resources.settings.influx
            try:
                report = await asyncio.to_thread(
                    _import_in_thread, paths, tag_map, options, influx, resources.settings.cache
                )
            except ImportRejectedError as exc:
                rejected = exc.report
                raise _rejected(
                    f"{rejected.problem_count} problems; nothing was imported (fix them, or "
                    "set skip_bad_rows)",
                    [_problem(p) for p in rejected.problems],
                    rejected.problem_count,
                ) from None
            except StoreUnavailableError as exc:
                raise ProblemError(
                    503,
                    f"time-series store unavailable: {exc} (the upload can be repeated: "
                    "importing is idempotent)",
                    retry_after_s=STORE_RETRY_AFTER_S,
                    extensions={"backend": "timeseries"},
                ) from None
    loop_ids = sorted(report.loops)
    count = 0
    answer = _answer(report, 0)
    if not dry_run:
        detail = import_detail(names)
        count = await register_imported_loops(session, tag_map, loop_ids, detail)
        answer = _answer(report, count)
        after = answer.model_dump(include={
            "files", "values", "samples_stored", "bad_quality", "bad_rows", "start", "end",
            "catalogue_loops",
        })  # fmt: skip
        after["loop_ids"] = loop_ids
        after["tag_map"] = map_name
        await AuditRepository(session).record(
            principal.username, "import", "loop_import", detail, None, after
        )
        await session.commit()
        for loop_id in loop_ids:
            await invalidate_loop(resources.cache, loop_id)
    return answer
