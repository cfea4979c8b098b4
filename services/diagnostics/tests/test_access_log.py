"""The diagnostics service process writes the shared access log: one JSON line per request with
its status and duration under ``clpm_diagnostics.access``, and uvicorn's own lines no more."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.harness.servers import free_port, migrate, wait_for


def test_the_diagnostics_process_logs_each_request_once(tmp_path: Path) -> None:
    migrate(f"sqlite+aiosqlite:///{tmp_path / 'clpm.db'}")
    port = free_port()
    environment = {
        "PATH": os.environ.get("PATH", ""),  # noqa: TID251 - a child process needs PATH
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'clpm.db'}",
        "TIMESERIES_BACKEND": "embedded",
        "EMBEDDED_TSDB_PATH": str(tmp_path / "ts.db"),
        "DIAG_HOST": "127.0.0.1",
        "DIAG_PORT": str(port),
        "LOG_LEVEL": "info",
    }
    log = tmp_path / "diagnostics.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "clpm_diagnostics"],
            env=environment,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{base_url}/health", timeout=1).raise_for_status(), process, 60)
        # DIAG_SERVICE_TOKEN unset: the process created the installation's token file
        token = (tmp_path / ".clpm" / "service-token").read_text().strip()
        assert len(token) >= 32
        assert (tmp_path / ".clpm" / "service-token").stat().st_mode & 0o077 == 0
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base_url, timeout=10, headers=headers) as http:
            statuses = [
                http.get("/health").status_code,
                http.post(
                    "/diagnose",
                    json={
                        "loop_id": "FIC-101",
                        "start": "2025-01-10T11:00:00Z",
                        "end": "2025-01-10T10:00:00Z",
                    },
                ).status_code,
                http.post(
                    "/diagnose",
                    json={
                        "loop_id": "NOPE-1",
                        "start": "2025-01-10T10:00:00Z",
                        "end": "2025-01-10T11:00:00Z",
                    },
                ).status_code,
            ]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "clpm_diagnostics.access"]
    assert statuses == [200, 422, 404]
    assert [line["status"] for line in access[-3:]] == statuses
    assert [line["path"] for line in access[-3:]] == ["/health", "/diagnose", "/diagnose"]
    assert {line["service"] for line in access} == {"diagnostics"}
    assert all(line["duration_ms"] >= 0 for line in access)
    assert not [line for line in lines if line["logger"] == "uvicorn.access"], "logged twice"
