"""env.docker lists every variable that clpm_shared.config reads, and nothing else."""

from __future__ import annotations

import re

from clpm_shared.config import environment_variable_names
from tests.deployment.compose_engine import REPO_ROOT

ENV_DOCKER = REPO_ROOT / "env.docker"
ASSIGNMENT = re.compile(r"^(?P<commented># )?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def _assignments() -> dict[str, tuple[bool, str]]:
    """name -> (set in the file, value); `# NAME=value` lines are listed but not set."""
    found: dict[str, tuple[bool, str]] = {}
    for line in ENV_DOCKER.read_text().splitlines():
        match = ASSIGNMENT.match(line)
        if match:
            name = match["name"]
            assert name not in found, f"{name} appears twice in env.docker"
            found[name] = (match["commented"] is None, match["value"])
    return found


def test_every_settings_variable_is_in_env_docker_and_nothing_else() -> None:
    listed = set(_assignments())
    settings = environment_variable_names()
    assert settings - listed == set(), "add these to env.docker (with a comment)"
    assert listed - settings == set(), "env.docker lists variables no Settings field reads"


def test_every_variable_is_explained_by_a_comment_or_section() -> None:
    lines = ENV_DOCKER.read_text().splitlines()
    section = None
    for line in lines:
        if line.startswith("# ---"):
            section = line
        elif ASSIGNMENT.match(line):
            assert section is not None, f"{line!r} is outside every commented section"


def test_no_secret_is_set_in_env_docker() -> None:
    """Secrets come from compose (development defaults) or the environment (production)."""
    for name, (is_set, _value) in _assignments().items():
        if any(word in name for word in ("PASSWORD", "TOKEN", "SECRET")) or name == "DATABASE_URL":
            assert not is_set, f"{name} must not be set in env.docker"


def test_values_point_at_the_compose_services() -> None:
    values = {name: value for name, (is_set, value) in _assignments().items() if is_set}
    assert values["POSTGRES_HOST"] == "postgres"
    assert values["INFLUXDB_URL"] == "http://influxdb:8086"
    assert values["REDIS_URL"] == "redis://redis:6379/0"
    assert values["DIAG_SERVICE_URL"] == "http://diagnostics:8050"
    assert values["OIDC_JWKS_URI"].startswith("http://keycloak:8080/realms/clpm/")
    assert values["OIDC_ISSUER"] == "http://localhost:8081/realms/clpm"
    assert values["API_HOST"] == values["DIAG_HOST"] == "0.0.0.0"  # listen inside containers
    assert values["AUTH_MODE"] == "oidc"
