"""docker-start.sh and docker-start-dev.sh: options, .env, compose calls, health wait, URLs.

No Docker engine runs here, so the scripts run against a stand-in `docker` command that
records its arguments and answers `compose ps` from a state file, on a copy of the scripts
and compose files in a temporary directory (the scripts act on the directory they are in).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deployment.compose_engine import REPO_ROOT

FILES = (
    "docker-start.sh",
    "docker-start-dev.sh",
    "env.docker",
    "docker-compose.yml",
    "docker-compose.dev.yml",
    "docker-compose.prod.yml",
)
TOOLS = ("bash", "dirname", "cp", "cat", "awk", "sleep", "grep")
HEALTHY = {
    "postgres": "running healthy 0",
    "redis": "running healthy 0",
    "influxdb": "running healthy 0",
    "keycloak": "running healthy 0",
    "migrate": "exited - 0",
    "diagnostics": "running healthy 0",
    "api-gateway": "running healthy 0",
    "frontend": "running healthy 0",
    "aggregation": "running starting 0",
    "kpi-worker": "running starting 0",
    "data-streaming": "running healthy 0",
    "pgadmin": "running healthy 0",
    "chronograf": "running healthy 0",
    "frontend-dev": "running healthy 0",
}

STAND_IN_DOCKER = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["DOCKER_CALLS"], "a") as calls:
    calls.write(json.dumps(args) + "\\n")
if args[:1] == ["info"]:
    sys.exit(1 if os.environ.get("DOCKER_DAEMON_DOWN") else 0)
if args[:2] == ["compose", "version"]:
    print("Docker Compose version v2.40.3")
    sys.exit(0)
if "ps" in args and "--format" in args:
    states = json.loads(open(os.environ["DOCKER_STATES"]).read())
    for service, state in states.items():
        print(service, state)
    sys.exit(0)
if "up" in args and os.environ.get("DOCKER_UP_FAILS"):
    sys.exit(17)
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]]

    def compose_calls(self) -> list[list[str]]:
        return [c for c in self.calls if c[:1] == ["compose"] and c[1:2] != ["version"]]


@dataclass
class Checkout:
    root: Path
    bin_dir: Path

    def run(
        self,
        script: str,
        *args: str,
        states: dict[str, str] | None = None,
        docker: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> Run:
        calls = self.root / "docker-calls.jsonl"
        calls.unlink(missing_ok=True)
        state_file = self.root / "states.json"
        state_file.write_text(json.dumps(states if states is not None else HEALTHY))
        docker_path = self.bin_dir / "docker"
        if docker:
            docker_path.write_text(STAND_IN_DOCKER.format(python=sys.executable))
            docker_path.chmod(0o755)
        else:
            docker_path.unlink(missing_ok=True)
        env = {
            "PATH": str(self.bin_dir),  # nothing else: no real docker can be reached
            "DOCKER_CALLS": str(calls),
            "DOCKER_STATES": str(state_file),
            "CLPM_WAIT_TIMEOUT_S": "5",
            **(extra_env or {}),
        }
        result = subprocess.run(
            [str(self.bin_dir / "bash"), str(self.root / script), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        recorded = (
            [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
        )
        return Run(result.returncode, result.stdout, result.stderr, recorded)


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    root = tmp_path / "clpm"
    root.mkdir()
    for name in FILES:
        shutil.copy2(REPO_ROOT / name, root / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return Checkout(root, bin_dir)


def _files_of(call: list[str]) -> list[str]:
    return [Path(call[i + 1]).name for i, word in enumerate(call) if word == "-f"]


def test_help_works_without_docker(checkout: Checkout) -> None:
    for script, stack_option in (("docker-start.sh", True), ("docker-start-dev.sh", False)):
        run = checkout.run(script, "--help", docker=False)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith(f"Usage: ./{script} [OPTION]...")
        for option in ("--down", "--logs", "--build", "--status", "--volumes"):
            assert option in run.stdout
        assert ("--prod" in run.stdout) is stack_option
        assert run.calls == []
    assert not (checkout.root / ".env").exists()


def test_bad_options_are_usage_errors(checkout: Checkout) -> None:
    for script, args, message in (
        ("docker-start.sh", ["--frobnicate"], "unknown option: --frobnicate"),
        ("docker-start.sh", ["--volumes"], "--volumes only goes with --down"),
        ("docker-start-dev.sh", ["--prod"], "do not combine"),
    ):
        run = checkout.run(script, *args)
        assert run.returncode == 2, (script, args)
        assert message in run.stderr
        assert run.compose_calls() == []


def test_missing_docker_or_daemon_is_explained(checkout: Checkout) -> None:
    run = checkout.run("docker-start.sh", docker=False)
    assert run.returncode == 1
    assert "docker is not installed" in run.stderr
    run = checkout.run("docker-start.sh", extra_env={"DOCKER_DAEMON_DOWN": "1"})
    assert run.returncode == 1
    assert "Docker daemon is not reachable" in run.stderr
    assert run.compose_calls() == []
    assert not (checkout.root / ".env").exists()


def test_start_creates_env_starts_the_base_stack_waits_and_prints_urls(
    checkout: Checkout,
) -> None:
    run = checkout.run("docker-start.sh")
    assert run.returncode == 0, run.stderr
    env_file = checkout.root / ".env"
    assert env_file.read_text() == (checkout.root / "env.docker").read_text()
    assert "created .env from env.docker" in run.stdout
    up = run.compose_calls()[0]
    assert _files_of(up) == ["docker-compose.yml"]
    assert up[up.index("--project-directory") + 1] == str(checkout.root)
    assert up[-3:] == ["up", "--detach", "--remove-orphans"]
    assert any("ps" in call for call in run.compose_calls()[1:])
    for url in (
        "http://localhost/",
        "http://localhost:8080/docs",
        "http://localhost:8081/admin/",
        "http://localhost:8050/health",
    ):
        assert url in run.stdout
    assert "5050" not in run.stdout
    assert "aggregation      running starting" in run.stdout  # workers reported, not awaited


def test_existing_env_is_kept_and_build_is_passed_on(checkout: Checkout) -> None:
    (checkout.root / ".env").write_text("POSTGRES_PASSWORD=mine\n")
    run = checkout.run("docker-start.sh", "--build")
    assert run.returncode == 0, run.stderr
    assert (checkout.root / ".env").read_text() == "POSTGRES_PASSWORD=mine\n"
    assert run.compose_calls()[0][-4:] == ["up", "--detach", "--remove-orphans", "--build"]


def test_dev_stack_adds_the_override_and_the_tool_urls(checkout: Checkout) -> None:
    run = checkout.run("docker-start-dev.sh")
    assert run.returncode == 0, run.stderr
    assert _files_of(run.compose_calls()[0]) == ["docker-compose.yml", "docker-compose.dev.yml"]
    for text in (
        "http://localhost:5173/",
        "http://localhost:5050/  (admin@clpm.com / admin123)",
        "http://localhost:8888/",
    ):
        assert text in run.stdout
    waiting = next(line for line in run.stdout.splitlines() if "waiting for health" in line)
    assert "pgadmin chronograf frontend-dev" in waiting


def test_prod_stack_adds_the_override_and_reaches_the_api_through_the_proxy(
    checkout: Checkout,
) -> None:
    run = checkout.run("docker-start.sh", "--prod")
    assert run.returncode == 0, run.stderr
    assert _files_of(run.compose_calls()[0]) == ["docker-compose.yml", "docker-compose.prod.yml"]
    assert "http://localhost/docs" in run.stdout
    assert "http://localhost:8080" not in run.stdout


def test_failed_migration_stops_the_wait_with_its_log(checkout: Checkout) -> None:
    run = checkout.run("docker-start.sh", states={**HEALTHY, "migrate": "exited - 3"})
    assert run.returncode == 1
    assert "the database migration failed (exit 3)" in run.stderr
    assert run.compose_calls()[-1][-3:] == ["logs", "--tail=40", "migrate"]


def test_unhealthy_service_stops_the_wait(checkout: Checkout) -> None:
    run = checkout.run("docker-start.sh", states={**HEALTHY, "keycloak": "running unhealthy 0"})
    assert run.returncode == 1
    assert "keycloak is running/unhealthy" in run.stderr


def test_wait_gives_up_after_the_timeout(checkout: Checkout) -> None:
    states = {**HEALTHY, "api-gateway": "running starting 0"}
    run = checkout.run("docker-start.sh", states=states, extra_env={"CLPM_WAIT_TIMEOUT_S": "0"})
    assert run.returncode == 1
    assert "not healthy after 0 s: api-gateway" in run.stderr


def test_compose_failure_is_reported(checkout: Checkout) -> None:
    run = checkout.run("docker-start.sh", extra_env={"DOCKER_UP_FAILS": "1"})
    assert run.returncode == 17
    assert "CLPM is running" not in run.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--down"], ["down", "--remove-orphans"]),
        (["--down", "--volumes"], ["down", "--remove-orphans", "--volumes"]),
        (["--logs"], ["logs", "--follow", "--tail=100"]),
        (
            ["--logs", "api-gateway", "kpi-worker"],
            ["logs", "--follow", "--tail=100", "api-gateway", "kpi-worker"],
        ),
        (["--status"], ["ps", "--all"]),
    ],
)
def test_down_logs_and_status(checkout: Checkout, args: list[str], expected: list[str]) -> None:
    run = checkout.run("docker-start.sh", *args)
    assert run.returncode == 0, run.stderr
    (call,) = run.compose_calls()
    assert call[-len(expected) :] == expected
    assert not (checkout.root / ".env").exists()
