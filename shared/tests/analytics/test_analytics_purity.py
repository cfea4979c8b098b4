"""clpm_shared.analytics stays pure: importing it pulls in no I/O, settings or service code."""

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
    "redis",
    "influxdb_client",
    "jose",
    "pydantic_settings",
    "asyncio",
    "clpm_shared.config",
    "clpm_shared.db",
    "clpm_shared.timeseries",
    "clpm_shared.logs",
)


def test_importing_analytics_loads_no_io_or_settings_modules() -> None:
    script = (
        "import json, sys\nimport clpm_shared.analytics\nprint(json.dumps(sorted(sys.modules)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(completed.stdout)
    assert "clpm_shared.analytics.kpis" in loaded
    offenders = [m for m in loaded if m.startswith(FORBIDDEN_PREFIXES)]
    assert offenders == []
