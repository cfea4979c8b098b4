"""docker-compose.yml and its dev / prod overrides, validated offline by the Compose engine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from clpm_shared.healthcheck import HTTP_SERVICES, WORKER_SERVICES
from tests.deployment.compose_engine import (
    BASE,
    CLPM_SERVICES,
    COMPOSE_BIN,
    DEV,
    DEV_TOOLS,
    INFRASTRUCTURE,
    PROD,
    PROD_SECRETS,
    REPO_ROOT,
    run_compose,
)

ONE_SHOT = "migrate"
STATEFUL_VOLUMES = {
    "postgres": "/var/lib/postgresql/data",
    "redis": "/data",
    "influxdb": "/var/lib/influxdb2",
}
PACKAGES = {
    "data-streaming": ("data_streaming", "data_streaming_service"),
    "aggregation": ("aggregation", "clpm_aggregation"),
    "kpi-worker": ("kpi_worker", "clpm_kpi_worker"),
    "diagnostics": ("diagnostics", "clpm_diagnostics"),
    "api-gateway": ("api_gateway", "clpm_api_gateway"),
}


@pytest.mark.parametrize(
    ("files", "env"),
    [(BASE, {}), (DEV, {}), (PROD, PROD_SECRETS)],
    ids=["base", "base+dev", "base+prod"],
)
def test_every_combination_passes_compose_config(
    files: tuple[str, ...], env: dict[str, str], tmp_path: Path
) -> None:
    result = run_compose(files, "config", "-q", env=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    # every variable the files use has a default (or, in prod, was given): no warnings
    assert "variable is not set" not in result.stderr, result.stderr


def test_compose_engine_really_rejects_an_invalid_file(tmp_path: Path) -> None:
    """Guards the guard: the binary's exit status does report schema errors."""
    broken = tmp_path / "broken.yml"
    broken.write_text("services:\n  db:\n    image: postgres:16.6\n    ports: 5432\n")
    result = subprocess.run(
        [str(COMPOSE_BIN), "-f", str(broken), "-p", "x", "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 1
    assert "ports must be a array" in result.stderr


def test_prod_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    nothing = run_compose(PROD, "config", "-q", tmp_path=tmp_path)
    assert nothing.returncode == 1
    assert "required variable" in nothing.stderr
    for missing in PROD_SECRETS:
        env = {name: value for name, value in PROD_SECRETS.items() if name != missing}
        result = run_compose(PROD, "config", "-q", env=env, tmp_path=tmp_path)
        assert result.returncode == 1, f"prod started without {missing}"
        assert f"required variable {missing} is missing a value" in result.stderr
        assert f"set {missing} (" in result.stderr  # the message says what the value is


def test_prod_contains_no_default_password(prod_model: dict[str, Any]) -> None:
    text = json.dumps(prod_model)
    for default in (
        "clpm_pwd",
        "adminpassword",
        "clpm-admin-token",
        "admin123",
        "clpm-dev-service-token",
    ):
        assert default not in text, f"default secret {default!r} left in the production stack"
    for secret in PROD_SECRETS.values():
        assert secret in text


def test_every_long_running_service_has_a_healthcheck(
    all_models: dict[str, dict[str, Any]],
) -> None:
    for stack, model in all_models.items():
        for name, service in model["services"].items():
            check = service.get("healthcheck", {})
            if name == ONE_SHOT:
                assert check.get("disable") is True
                assert service["restart"] == "no"
                continue
            assert check.get("test"), f"{stack}: {name} has no healthcheck"
            assert check["test"][0] in ("CMD", "CMD-SHELL"), f"{stack}: {name}"
            assert check.get("interval"), f"{stack}: {name}"
            assert check.get("retries"), f"{stack}: {name}"


def test_clpm_services_are_probed_by_the_shared_health_probe(base_model: dict[str, Any]) -> None:
    for name in CLPM_SERVICES:
        test = base_model["services"][name]["healthcheck"]["test"]
        assert test[:4] == ["CMD", "python", "-m", "clpm_shared.healthcheck"]
        assert test[4] == name
        assert name in (*HTTP_SERVICES, *WORKER_SERVICES)
        # HTTP services are healthy once they reach their dependencies (what dependants wait for)
        assert (test[5:] == ["--ready"]) is (name in HTTP_SERVICES), name


def test_dependencies_wait_for_health_or_for_the_migration(
    all_models: dict[str, dict[str, Any]],
) -> None:
    for stack, model in all_models.items():
        services = model["services"]
        for name, service in services.items():
            for dependency, spec in service.get("depends_on", {}).items():
                assert dependency in services, f"{stack}: {name} -> {dependency}"
                if dependency == ONE_SHOT:
                    assert spec["condition"] == "service_completed_successfully"
                else:
                    assert spec["condition"] == "service_healthy", (
                        f"{stack}: {name} -> {dependency}"
                    )
                    assert services[dependency]["healthcheck"].get("test")
        for name in CLPM_SERVICES:
            depends = services[name]["depends_on"]
            assert depends[ONE_SHOT]["condition"] == "service_completed_successfully"
            assert {"postgres", "influxdb"} <= set(depends)
        assert services[ONE_SHOT]["depends_on"]["postgres"]["condition"] == "service_healthy"
        gateway = set(services["api-gateway"]["depends_on"])
        assert {"redis", "keycloak", "diagnostics"} <= gateway
        assert services["frontend"]["depends_on"]["api-gateway"]["condition"] == "service_healthy"


def test_migration_job_runs_alembic_upgrade_head(base_model: dict[str, Any]) -> None:
    migrate = base_model["services"][ONE_SHOT]
    assert migrate["command"] == ["alembic", "-c", "migrations/alembic.ini", "upgrade", "head"]
    assert (migrate["build"]["dockerfile"], migrate["build"]["target"]) == ("Dockerfile", "migrate")


def test_restart_policies(all_models: dict[str, dict[str, Any]]) -> None:
    for stack, model in all_models.items():
        for name, service in model["services"].items():
            expected = (
                "no" if name == ONE_SHOT else "always" if stack == "prod" else "unless-stopped"
            )
            assert service["restart"] == expected, f"{stack}: {name}"


def test_stateful_services_keep_their_data_in_named_volumes(
    all_models: dict[str, dict[str, Any]],
) -> None:
    for stack, model in all_models.items():
        for name, target in STATEFUL_VOLUMES.items():
            mounts = {v["target"]: v for v in model["services"][name]["volumes"]}
            assert mounts[target]["type"] == "volume", f"{stack}: {name}"
            assert mounts[target]["source"] in model["volumes"]


def test_third_party_images_are_pinned_and_clpm_images_are_built(
    all_models: dict[str, dict[str, Any]],
) -> None:
    for stack, model in all_models.items():
        for name, service in model["services"].items():
            image = service["image"]
            if "build" in service:
                assert image.startswith("clpm/"), f"{stack}: {name}"
                assert (REPO_ROOT / service["build"]["dockerfile"]).is_file(), f"{stack}: {name}"
                continue
            repository, _, tag = image.rpartition(":")
            assert repository, f"{stack}: {name} image {image} has no tag"
            assert re.fullmatch(r"\d+(\.\d+){1,2}(-[a-z0-9.-]+)?", tag), f"{stack}: {image}"


def test_services_and_infrastructure_agree_on_credentials_and_addresses(
    all_models: dict[str, dict[str, Any]],
) -> None:
    for stack, model in all_models.items():
        services = model["services"]
        postgres = services["postgres"]["environment"]
        influxdb = services["influxdb"]["environment"]
        keycloak = services["keycloak"]["environment"]
        for name in (*CLPM_SERVICES, ONE_SHOT):
            env = services[name]["environment"]
            where = f"{stack}: {name}"
            assert env["POSTGRES_HOST"] == "postgres", where
            for key in ("POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"):
                assert env[key] == postgres[key], f"{where}: {key}"
            assert env["INFLUXDB_TOKEN"] == influxdb["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"], where
            assert env["INFLUXDB_ORG"] == influxdb["DOCKER_INFLUXDB_INIT_ORG"], where
            assert env["INFLUXDB_BUCKET"] == influxdb["DOCKER_INFLUXDB_INIT_BUCKET"], where
            assert urlsplit(env["INFLUXDB_URL"]).netloc == "influxdb:8086", where
            assert urlsplit(env["REDIS_URL"]).hostname == "redis", where
            # Tokens carry Keycloak's public URL as iss; keys are fetched inside the network.
            assert env["OIDC_ISSUER"] == keycloak["KC_HOSTNAME"] + "/realms/clpm", where
            assert keycloak["KC_HOSTNAME_BACKCHANNEL_DYNAMIC"] == "true"
            jwks = urlsplit(env["OIDC_JWKS_URI"])
            assert (jwks.hostname, jwks.port) == ("keycloak", 8080), where
            assert jwks.path == "/realms/clpm/protocol/openid-connect/certs", where
            assert env["DIAG_SERVICE_URL"] == f"http://diagnostics:{env['DIAG_PORT']}", where
        if stack == "prod":
            redis = services["redis"]["environment"]
            assert services["api-gateway"]["environment"]["REDIS_URL"] == (
                f"redis://:{redis['REDIS_PASSWORD']}@redis:6379/0"
            )
            assert redis["REDISCLI_AUTH"] == redis["REDIS_PASSWORD"]
        assert keycloak["KC_DB_PASSWORD"] == postgres["POSTGRES_PASSWORD"]
        assert keycloak["KC_DB_URL"] == "jdbc:postgresql://postgres:5432/keycloak"
        assert postgres["KEYCLOAK_DATABASE"] == "keycloak"


def test_published_ports_match_the_settings(base_model: dict[str, Any]) -> None:
    services = base_model["services"]

    def published(name: str) -> dict[str, int]:
        return {p["published"]: p["target"] for p in services[name].get("ports", [])}

    gateway = services["api-gateway"]["environment"]
    assert published("api-gateway") == {"8080": int(gateway["API_PORT"])}
    assert gateway["API_HOST"] == "0.0.0.0"  # inside the container
    diagnostics = services["diagnostics"]["environment"]
    assert published("diagnostics") == {"8050": int(diagnostics["DIAG_PORT"])}
    assert published("frontend") == {"80": 8080}
    assert published("keycloak") == {"8081": 8080}
    assert urlsplit(services["keycloak"]["environment"]["KC_HOSTNAME"]).port == 8081
    for name in ("postgres", "redis", "influxdb"):  # development access, loopback only
        assert {p["host_ip"] for p in services[name]["ports"]} == {"127.0.0.1"}


def test_keycloak_imports_the_realm_file(base_model: dict[str, Any]) -> None:
    keycloak = base_model["services"]["keycloak"]
    assert keycloak["command"] == ["start", "--import-realm"]
    mounts = {v["target"]: v["source"] for v in keycloak["volumes"]}
    realm = mounts["/opt/keycloak/data/import/clpm-realm.json"]
    assert Path(realm) == REPO_ROOT / "deploy" / "keycloak" / "clpm-realm.json"
    assert keycloak["environment"]["KC_HEALTH_ENABLED"] == "true"


def test_infrastructure_init_scripts_are_mounted(base_model: dict[str, Any]) -> None:
    services = base_model["services"]
    influx = {v["target"]: v["source"] for v in services["influxdb"]["volumes"]}
    assert Path(influx["/docker-entrypoint-initdb.d/10-dbrp.sh"]) == (
        REPO_ROOT / "deploy" / "influxdb" / "init-dbrp.sh"
    )
    assert services["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    postgres = {v["target"]: v["source"] for v in services["postgres"]["volumes"]}
    assert Path(postgres["/docker-entrypoint-initdb.d/10-keycloak-database.sh"]) == (
        REPO_ROOT / "deploy" / "postgres" / "init-keycloak-database.sh"
    )


def test_frontend_proxies_the_api_to_the_gateway(all_models: dict[str, dict[str, Any]]) -> None:
    for stack, model in all_models.items():
        frontend = model["services"]["frontend"]
        assert frontend["environment"]["CLPM_API_UPSTREAM"] == "api-gateway:8080", stack
        assert frontend["environment"]["CLPM_DNS_RESOLVER"] == "127.0.0.11", stack
        issuer = model["services"]["api-gateway"]["environment"]["OIDC_ISSUER"]
        assert frontend["build"]["args"]["VITE_OIDC_ISSUER"] == issuer, stack
        # the app's CSP lets it talk to the issuer's origin, and only to it
        assert issuer.startswith(frontend["environment"]["CLPM_OIDC_ORIGIN"] + "/realms/"), stack
        assert frontend["build"]["dockerfile"] == "frontend/Dockerfile"


def test_prod_scales_the_gateway_behind_the_proxy_with_limits(
    prod_model: dict[str, Any],
) -> None:
    services = prod_model["services"]
    gateway = services["api-gateway"]
    assert gateway["deploy"]["replicas"] == 3
    assert "ports" not in gateway  # replicas are reached through the frontend's nginx
    assert "container_name" not in gateway
    for name in ("postgres", "redis", "influxdb", "diagnostics"):
        assert "ports" not in services[name], name
    assert not set(DEV_TOOLS) & set(services)
    for name, service in services.items():
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0, name
        assert int(limits["memory"]) > 0, name
    for name in CLPM_SERVICES:
        env = services[name]["environment"]
        assert env["LOG_LEVEL"] == "info"
        assert env["NODE_ENV"] == "production"
        assert env["OIDC_ISSUER"] == PROD_SECRETS["KEYCLOAK_PUBLIC_URL"] + "/realms/clpm"


def test_dev_adds_the_tools_and_live_reload(dev_model: dict[str, Any]) -> None:
    services = dev_model["services"]
    pgadmin = services["pgadmin"]
    assert pgadmin["environment"]["PGADMIN_DEFAULT_EMAIL"] == "admin@clpm.com"
    assert pgadmin["environment"]["PGADMIN_DEFAULT_PASSWORD"] == "admin123"
    assert [(p["published"], p["target"]) for p in pgadmin["ports"]] == [("5050", 80)]
    mounts = {v["target"]: v["source"] for v in pgadmin["volumes"]}
    assert Path(mounts[pgadmin["environment"]["PGADMIN_SERVER_JSON_FILE"]]) == (
        REPO_ROOT / "deploy" / "pgadmin" / "servers.json"
    )
    chronograf = services["chronograf"]
    assert [(p["published"], p["target"]) for p in chronograf["ports"]] == [("8888", 8888)]
    influx_init = services["influxdb"]["environment"]
    assert chronograf["environment"]["INFLUXDB_URL"] == "http://influxdb:8086"
    assert (
        chronograf["environment"]["INFLUXDB_TOKEN"]
        == influx_init["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    )
    assert chronograf["environment"]["INFLUXDB_ORG"] == influx_init["DOCKER_INFLUXDB_INIT_ORG"]
    vite = services["frontend-dev"]
    assert [(p["published"], p["target"]) for p in vite["ports"]] == [("5173", 5173)]
    assert vite["environment"]["VITE_API_PROXY_TARGET"] == "http://api-gateway:8080"
    for name, (directory, package) in PACKAGES.items():
        service = services[name]
        assert service["build"]["target"] == f"{name}-dev", name
        assert service["environment"]["LOG_LEVEL"] == "debug", name
        sources = {v["target"]: Path(v["source"]) for v in service["volumes"]}
        assert sources["/src/shared/src"] == REPO_ROOT / "shared" / "src"
        assert (
            sources[f"/src/services/{directory}/src"] == REPO_ROOT / "services" / directory / "src"
        )
        assert all(v["read_only"] for v in service["volumes"]), name
        command = service["command"]
        assert command[0] == "watchfiles", name
        assert f"python -m {package}" in command, name
        assert set(command) >= set(sources), name  # it watches what is mounted
    migrations = {v["target"]: Path(v["source"]) for v in services["migrate"]["volumes"]}
    assert migrations["/opt/clpm/app/migrations"] == REPO_ROOT / "migrations"


def test_every_service_environment_is_valid_for_clpm_settings(
    all_models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Each CLPM container's environment, fed to clpm_shared.config as the container would."""
    environments = {
        f"{stack}/{name}": model["services"][name]["environment"]
        for stack, model in all_models.items()
        for name in (*CLPM_SERVICES, ONE_SHOT)
    }
    script = (
        "import json, os, sys\n"
        "from clpm_shared.config import load_settings\n"
        "results = {}\n"
        "for key, env in json.load(sys.stdin).items():\n"
        "    os.environ.clear(); os.environ.update(env)\n"
        "    try:\n"
        "        s = load_settings()\n"
        "    except SystemExit as exc:\n"
        "        results[key] = {'error': str(exc)}; continue\n"
        "    results[key] = {'db': s.database.async_url, 'issuer': s.auth.oidc_issuer,\n"
        "        'algorithms': s.auth.oidc_algorithms, 'cron': s.kpi.kpi_cron_schedule,\n"
        "        'cors': s.api.api_cors_origins, 'backend': s.influx.timeseries_backend.value,\n"
        "        'auth': s.auth.auth_mode.value}\n"
        "print(json.dumps(results))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(environments),
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no .env here
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    for key, values in resolved.items():
        assert "error" not in values, f"{key}: {values.get('error')}"
        assert values["backend"] == "influxql", key
        assert values["auth"] == "oidc", key
        assert values["algorithms"] == ["RS256", "ES256"], key
        assert values["cron"] == "*/15 * * * *", key
        assert "http://localhost:5173" in values["cors"], key
    assert resolved["base/api-gateway"]["db"] == (
        "postgresql+asyncpg://clpm:clpm_pwd@postgres:5432/clpm"
    )
    assert resolved["prod/api-gateway"]["db"] == (
        f"postgresql+asyncpg://clpm:{PROD_SECRETS['POSTGRES_PASSWORD']}@postgres:5432/clpm"
    )
    assert resolved["dev/kpi-worker"]["issuer"] == "http://localhost:8081/realms/clpm"


def test_services_are_the_expected_set(all_models: dict[str, dict[str, Any]]) -> None:
    core = {*INFRASTRUCTURE, *CLPM_SERVICES, ONE_SHOT, "frontend"}
    assert set(all_models["base"]["services"]) == core
    assert set(all_models["prod"]["services"]) == core
    assert set(all_models["dev"]["services"]) == core | set(DEV_TOOLS)
