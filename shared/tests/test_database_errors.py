"""Database errors are told apart: unreachable, out of space, busy, or a bug (never all "down").

Each error comes from a real server: PostgreSQL raises the SQLSTATE itself (a full disk is
raised with its own code, as the server does when it cannot extend a file), SQLite really runs
out of pages (``max_page_count``), and a problem-details app answers them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from clpm_shared.config import DatabaseSettings
from clpm_shared.db import create_engine
from clpm_shared.db.errors import DatabaseFailure, classify
from clpm_shared.web.problems import install_problem_handlers


def raising(code: str) -> str:
    return f"DO $$ BEGIN RAISE EXCEPTION 'simulated by the server' USING ERRCODE = '{code}'; END $$"


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        ("disk_full", DatabaseFailure.NO_SPACE),
        ("out_of_memory", DatabaseFailure.NO_SPACE),
        ("cannot_connect_now", DatabaseFailure.UNREACHABLE),
        ("admin_shutdown", DatabaseFailure.UNREACHABLE),
        ("query_canceled", DatabaseFailure.BUSY),
        ("lock_not_available", DatabaseFailure.BUSY),
        ("division_by_zero", DatabaseFailure.OTHER),
    ],
)
async def test_postgres_errors_are_classified_by_sqlstate(
    postgres_url: str, code: str, failure: DatabaseFailure
) -> None:
    engine = create_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(text(raising(code)))
    finally:
        await engine.dispose()
    assert classify(raised.value) is failure


def app_running(statement: Callable[[], object]) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/write")
    async def write() -> dict[str, str]:
        await statement()  # type: ignore[misc]
        return {"status": "written"}

    return app


async def answer(app: FastAPI) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        return await http.get("/write")


async def test_a_full_postgres_disk_is_not_reported_as_unreachable(postgres_url: str) -> None:
    engine = create_engine(postgres_url)

    async def statement() -> None:
        async with engine.connect() as connection:
            await connection.execute(text(raising("disk_full")))

    try:
        response = await answer(app_running(statement))
    finally:
        await engine.dispose()
    assert response.status_code == 503
    problem = response.json()
    assert problem["reason"] == "no_space"
    assert "disk space" in problem["detail"]
    assert "not reachable" not in problem["detail"]
    assert int(response.headers["retry-after"]) >= 1


async def test_a_full_sqlite_file_is_not_reported_as_unreachable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'full.db'}")

    async def statement() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE IF NOT EXISTS t (x TEXT)"))
            page_count = (await connection.execute(text("PRAGMA page_count"))).scalar_one()
            await connection.execute(text(f"PRAGMA max_page_count = {page_count + 2}"))
            for _ in range(100):
                await connection.execute(text("INSERT INTO t VALUES (:x)"), {"x": "x" * 4000})

    try:
        response = await answer(app_running(statement))
    finally:
        await engine.dispose()
    assert response.status_code == 503
    assert response.json()["reason"] == "no_space"


async def test_a_bad_statement_stays_a_500(postgres_url: str) -> None:
    engine = create_engine(postgres_url)

    async def statement() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1/0"))

    try:
        response = await answer(app_running(statement))
    finally:
        await engine.dispose()
    assert response.status_code == 500


async def test_every_session_carries_the_configured_timeouts(postgres_url: str) -> None:
    settings = DatabaseSettings(
        database_url=postgres_url,
        db_statement_timeout_s=0.5,
        db_lock_timeout_s=1.5,
        db_idle_in_transaction_timeout_s=20,
    )
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            shown = {
                name: (await connection.execute(text(f"SHOW {name}"))).scalar_one()
                for name in (
                    "statement_timeout",
                    "lock_timeout",
                    "idle_in_transaction_session_timeout",
                )
            }
        assert shown == {
            "statement_timeout": "500ms",
            "lock_timeout": "1500ms",
            "idle_in_transaction_session_timeout": "20s",
        }
        async with engine.connect() as connection:
            started = time.monotonic()
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 3
        assert classify(raised.value) is DatabaseFailure.BUSY
    finally:
        await engine.dispose()
