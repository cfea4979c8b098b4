"""First-start scripts of the PostgreSQL and InfluxDB containers, and shell hygiene."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.deployment.compose_engine import REPO_ROOT
from tests.harness.servers import PostgresServer, require_binary

KEYCLOAK_DB_SCRIPT = REPO_ROOT / "deploy" / "postgres" / "init-keycloak-database.sh"
DBRP_SCRIPT = REPO_ROOT / "deploy" / "influxdb" / "init-dbrp.sh"
SHELL_SCRIPTS = [
    REPO_ROOT / "docker-start.sh",
    REPO_ROOT / "docker-start-dev.sh",
    KEYCLOAK_DB_SCRIPT,
    DBRP_SCRIPT,
]

# InfluxDB 2.x's `influx` CLI is not packaged for Debian (it ships influxdb 1.6), so a stand-in
# records each call and accepts only the flags the influx 2.x CLI documents for these commands.
STAND_IN_INFLUX = r"""#!/usr/bin/env python3
import json, os, sys
known = {
    ("v1", "dbrp", "create"): {"--bucket-id", "--db", "--rp", "--default", "--org", "--org-id"},
    ("v1", "auth", "create"): {"--username", "--password", "--read-bucket", "--write-bucket",
                               "--org", "--org-id", "--description", "--no-password"},
}
command, flags = tuple(sys.argv[1:4]), sys.argv[4:]
if command not in known:
    sys.exit(f"influx: unknown command {command}")
unknown = [f for f in flags if f.startswith("--") and f not in known[command]]
if unknown:
    sys.exit(f"influx: unknown flags {unknown}")
with open(os.environ["INFLUX_CALLS"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\n")
"""


def test_keycloak_database_is_created_once_owned_by_the_clpm_user(
    postgres_server: PostgresServer,
) -> None:
    name = "keycloak_init_test"
    env = {
        "PATH": f"{postgres_server.bin_dir}:/usr/bin:/bin",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(postgres_server.port),
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "postgres",
        "KEYCLOAK_DATABASE": name,
    }
    try:
        for _ in range(2):  # the second run (a restarted container) changes nothing
            result = subprocess.run(
                ["bash", str(KEYCLOAK_DB_SCRIPT)], env=env, capture_output=True, text=True,
                timeout=60, check=False,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
        owner = postgres_server.psql(
            f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{name}'"
        )
        assert owner == "postgres"
    finally:
        postgres_server.drop_database(name)


def test_keycloak_database_script_fails_loudly_on_a_database_error(
    postgres_server: PostgresServer,
) -> None:
    env = {
        "PATH": f"{postgres_server.bin_dir}:/usr/bin:/bin",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(postgres_server.port),
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "no_such_database",
    }
    result = subprocess.run(
        ["bash", str(KEYCLOAK_DB_SCRIPT)], env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "no_such_database" in result.stderr


def _run_dbrp_script(tmp_path: Path, extra: dict[str, str]) -> tuple[int, str, list[list[str]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    influx = bin_dir / "influx"
    influx.write_text(STAND_IN_INFLUX)
    influx.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    calls.unlink(missing_ok=True)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "INFLUX_CALLS": str(calls),
        "DOCKER_INFLUXDB_INIT_ORG": "clpm",
        "DOCKER_INFLUXDB_INIT_BUCKET": "clpm",
        "DOCKER_INFLUXDB_INIT_BUCKET_ID": "0a1b2c3d4e5f6789",
        **extra,
    }
    result = subprocess.run(
        ["bash", str(DBRP_SCRIPT)], env=env, capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    recorded = (
        [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    )
    return result.returncode, result.stderr, recorded


def test_dbrp_mapping_makes_the_bucket_the_default_influxql_database(tmp_path: Path) -> None:
    rc, stderr, calls = _run_dbrp_script(tmp_path, {})
    assert rc == 0, stderr
    assert calls == [
        [
            "v1", "dbrp", "create", "--org", "clpm", "--bucket-id", "0a1b2c3d4e5f6789",
            "--db", "clpm", "--rp", "autogen", "--default",
        ]
    ]  # fmt: skip


def test_dbrp_database_name_and_v1_user_follow_the_settings(tmp_path: Path) -> None:
    rc, stderr, calls = _run_dbrp_script(
        tmp_path,
        {
            "INFLUXDB_DATABASE": "plant",
            "INFLUXDB_USERNAME": "clpm",
            "INFLUXDB_PASSWORD": "pw-123456",
        },
    )
    assert rc == 0, stderr
    assert calls[0][calls[0].index("--db") + 1] == "plant"
    auth = calls[1]
    assert auth[:3] == ["v1", "auth", "create"]
    for flag, value in (
        ("--username", "clpm"),
        ("--password", "pw-123456"),
        ("--read-bucket", "0a1b2c3d4e5f6789"),
        ("--write-bucket", "0a1b2c3d4e5f6789"),
    ):
        assert auth[auth.index(flag) + 1] == value


def test_dbrp_script_stops_without_the_bucket_id_or_the_v1_password(tmp_path: Path) -> None:
    rc, stderr, calls = _run_dbrp_script(tmp_path, {"DOCKER_INFLUXDB_INIT_BUCKET_ID": ""})
    assert rc != 0
    assert "DOCKER_INFLUXDB_INIT_BUCKET_ID is not set" in stderr
    assert calls == []
    rc, stderr, _ = _run_dbrp_script(tmp_path, {"INFLUXDB_USERNAME": "clpm"})
    assert rc != 0
    assert "INFLUXDB_PASSWORD is required" in stderr


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_parse_and_pass_shellcheck(script: Path) -> None:
    syntax = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert syntax.returncode == 0, syntax.stderr
    shellcheck = require_binary("shellcheck", "shellcheck")
    lint = subprocess.run(
        [shellcheck, "--severity=style", str(script)], capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout
    assert script.stat().st_mode & 0o111, f"{script.name} is not executable"
