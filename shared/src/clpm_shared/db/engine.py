"""Async engine and session factory for ``postgresql+asyncpg`` and ``sqlite+aiosqlite``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from clpm_shared.config import DatabaseSettings
from clpm_shared.private_files import create_private_file, sqlite_file_of


def create_engine(settings: DatabaseSettings | str, *, echo: bool = False) -> AsyncEngine:
    """Create the async engine for the configured database.

    SQLite files get WAL journaling and a busy timeout so that several processes of the
    embedded run can read while one writes; a missing file is created with mode 0600 (its
    journal files follow; :mod:`clpm_shared.private_files`), its directory too. PostgreSQL
    sessions opened from :class:`DatabaseSettings` get the ``DB_*_TIMEOUT_S`` settings
    (:func:`session_timeouts`); a bare URL (tests, tools, migrations) gets none.
    """
    url = settings if isinstance(settings, str) else settings.async_url
    if url.startswith("sqlite"):
        path = sqlite_file_of(url)
        if path is not None:
            create_private_file(path)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if isinstance(settings, str):
        return create_async_engine(
            url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True
        )
    return create_async_engine(
        url,
        echo=echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": session_timeouts(settings)},
    )


def session_timeouts(settings: DatabaseSettings) -> dict[str, str]:
    """PostgreSQL settings of every session: statement, lock and idle-in-transaction timeouts.

    Without them one frozen process that holds row locks in an open transaction stalls every
    other writer of those rows for as long as it is frozen (and a runaway statement runs on).
    """
    timeouts = {
        "statement_timeout": settings.db_statement_timeout_s,
        "lock_timeout": settings.db_lock_timeout_s,
        "idle_in_transaction_session_timeout": settings.db_idle_in_transaction_timeout_s,
    }
    return {name: str(round(seconds * 1000)) for name, seconds in timeouts.items()}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory; objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
