"""Database files only their owner may read: the embedded run's SQLite files are created 0600.

SQLite creates a missing database file with the process's umask (typically 0644: readable by
every local user) and gives its ``-wal`` and ``-shm`` files the permissions of the database
file. :func:`create_private_file` therefore creates the database file itself, empty and with
mode 0600, before SQLite opens it; SQLite then treats the empty file as a new database and its
journal files follow the same mode. A file that already exists is left as it is (its owner
may have chosen its mode), but a warning names it when other users can read it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

logger = logging.getLogger(__name__)

PRIVATE_MODE = 0o600


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (and its directory) unless it exists already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning(
                "database file is readable by other users; chmod 600",
                extra={"path": str(path), "mode": oct(mode)},
            )
        return
    os.close(descriptor)
    # os.open applies the umask, which can only remove bits: 0600 stays 0600 or less
    logger.info("created database file", extra={"path": str(path)})


def sqlite_file_of(url: str) -> Path | None:
    """The file of a ``sqlite[+driver]:///path`` URL; ``None`` for in-memory databases."""
    if not url.startswith("sqlite") or "///" not in url:
        return None
    path = url.split("///", 1)[1].split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


__all__ = ["PRIVATE_MODE", "create_private_file", "sqlite_file_of"]
