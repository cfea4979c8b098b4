"""clpm_shared.alerts stays pure: importing it pulls in no I/O, settings or service code."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN_PREFIXES = (
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "sqlite3",
    "httpx",
    "smtplib",
    "redis",
    "pydantic_settings",
    "asyncio",
    "clpm_shared.config",
    "clpm_shared.db",
    "clpm_shared.notify",
    "clpm_shared.timeseries",
)


def test_importing_alerts_loads_no_io_or_settings_modules() -> None:
    script = "import json, sys\nimport clpm_shared.alerts\nprint(json.dumps(sorted(sys.modules)))\n"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(completed.stdout)
    assert "clpm_shared.alerts.evaluation" in loaded
    assert [m for m in loaded if m.startswith(FORBIDDEN_PREFIXES)] == []
