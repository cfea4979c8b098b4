"""What a database error means for the caller: unreachable, out of space, busy, or a bug.

PostgreSQL reports the reason as a SQLSTATE (asyncpg's ``sqlstate``), which SQLAlchemy keeps on
the wrapped driver exception; asyncpg errors without a dedicated DB-API class (a server that is
starting up or shutting down, a full disk) arrive as a plain ``DBAPIError``, so the class alone
does not tell. SQLite reports the same conditions in its message.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import exc as sa_exc


class DatabaseFailure(StrEnum):
    UNREACHABLE = "unreachable"  # down, starting up, shutting down, connection lost or refused
    NO_SPACE = "no_space"  # disk full, out of memory or another resource limit
    BUSY = "busy"  # statement, lock or idle-in-transaction timeout
    OTHER = "other"  # a bad statement, a constraint: a bug, not an outage


# SQLSTATE classes and codes (PostgreSQL appendix A)
_UNREACHABLE_CLASSES = ("08",)  # connection exception
_UNREACHABLE_CODES = frozenset(
    {
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: starting up / shutting down
        "57P05",  # idle_session_timeout
        "53300",  # too_many_connections
        "25P03",  # idle_in_transaction_session_timeout (the session was ended)
    }
)
_NO_SPACE_CODES = frozenset({"53000", "53100", "53200", "53400"})
_BUSY_CODES = frozenset({"57014", "55P03", "40P01"})  # query_canceled, lock_not_available, deadlock

_SQLITE_NO_SPACE = ("database or disk is full", "disk i/o error")
_SQLITE_BUSY = ("database is locked", "database table is locked")


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a (wrapped) PostgreSQL error, if any."""
    original = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    for name in ("sqlstate", "pgcode"):
        code = getattr(original, name, None)
        if isinstance(code, str) and code:
            return code
    return None


def classify(exc: BaseException) -> DatabaseFailure:
    """What ``exc``, raised by the relational database or its driver, means."""
    code = sqlstate_of(exc)
    if code is not None:
        if code in _UNREACHABLE_CODES or code.startswith(_UNREACHABLE_CLASSES):
            return DatabaseFailure.UNREACHABLE
        if code in _NO_SPACE_CODES:
            return DatabaseFailure.NO_SPACE
        if code in _BUSY_CODES:
            return DatabaseFailure.BUSY
        return DatabaseFailure.OTHER
    if isinstance(exc, sa_exc.DBAPIError):
        message = str(exc.orig).lower()
        if any(text in message for text in _SQLITE_NO_SPACE):
            return DatabaseFailure.NO_SPACE
        if any(text in message for text in _SQLITE_BUSY):
            return DatabaseFailure.BUSY
        if exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        ):
            return DatabaseFailure.UNREACHABLE
        return DatabaseFailure.OTHER
    if isinstance(exc, OSError | TimeoutError | sa_exc.TimeoutError):
        return DatabaseFailure.UNREACHABLE
    return DatabaseFailure.OTHER
