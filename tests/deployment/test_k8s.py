"""deploy/k8s: valid against the Kubernetes API schemas, and consistent with itself and compose."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from clpm_shared.config import environment_variable_names
from tests.deployment.compose_engine import REPO_ROOT
from tests.deployment.kustomize_renderer import (
    containers,
    generated_files,
    pod_spec,
    read_kustomization,
    render,
    resource_files,
)

K8S = REPO_ROOT / "deploy" / "k8s"
# The oldest Kubernetes release the manifests target, and the newest the schemas know.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CLPM_WORKLOADS = ("data-streaming", "aggregation", "kpi-worker", "diagnostics", "api-gateway")
WORKERS = ("data-streaming", "aggregation", "kpi-worker")
COPIES = {
    "clpm-realm.json": REPO_ROOT / "deploy/keycloak/clpm-realm.json",
    "init-dbrp.sh": REPO_ROOT / "deploy/influxdb/init-dbrp.sh",
    "init-keycloak-database.sh": REPO_ROOT / "deploy/postgres/init-keycloak-database.sh",
}


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render(K8S)


def _by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _workloads(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] in ("Deployment", "StatefulSet")}


def _settings_configmap(objects: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = _by_kind(objects, "ConfigMap")["clpm-settings"]["data"]
    return data


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_against_the_kubernetes_schema(
    objects: list[dict[str, Any]], version: str
) -> None:
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} is invalid for Kubernetes {version}: {exc.message}")


def test_schema_check_really_rejects_a_bad_object(objects: list[dict[str, Any]]) -> None:
    """Guards the guard: a misspelt field and a wrong type are reported."""
    gateway = json.loads(json.dumps(_workloads(objects)["api-gateway"]))
    gateway["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagee"):
        kubernetes_validate.validate(gateway, KUBERNETES_VERSIONS[0], strict=True)
    hpa = json.loads(json.dumps(_by_kind(objects, "HorizontalPodAutoscaler")["api-gateway"]))
    hpa["spec"]["minReplicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(hpa, KUBERNETES_VERSIONS[0], strict=True)


def test_expected_objects_are_all_there(objects: list[dict[str, Any]]) -> None:
    kinds: dict[str, set[str]] = {}
    for obj in objects:
        kinds.setdefault(obj["kind"], set()).add(obj["metadata"]["name"])
    assert kinds["Namespace"] == {"clpm"}
    assert kinds["Deployment"] == {*CLPM_WORKLOADS, "frontend", "keycloak"}
    assert kinds["StatefulSet"] == {"postgres", "redis", "influxdb"}
    assert kinds["Job"] == {"clpm-migrate"}
    assert kinds["HorizontalPodAutoscaler"] == {"api-gateway"}
    assert kinds["Service"] == {
        "api-gateway", "diagnostics", "frontend", "keycloak", "postgres", "redis", "influxdb",
    }  # fmt: skip
    assert "Secret" not in kinds  # created by the operator, never committed
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "clpm", obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "clpm"


def test_every_manifest_file_is_in_a_kustomization() -> None:
    listed = {p.resolve() for p in resource_files(K8S) + generated_files(K8S)}
    listed |= {(K8S / d / "kustomization.yaml").resolve() for d in ("", "app", "infrastructure")}
    on_disk = {p.resolve() for p in K8S.rglob("*") if p.is_file() and p.suffix != ".md"}
    assert on_disk - listed == {(K8S / "secret.example.yaml").resolve()}
    read_kustomization(K8S)  # and only fields the renderer implements (it raises otherwise)


def test_selectors_match_pod_labels_and_ports_exist(objects: list[dict[str, Any]]) -> None:
    workloads = _workloads(objects)
    for name, workload in workloads.items():
        selector = workload["spec"]["selector"]["matchLabels"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name
    for name, service in _by_kind(objects, "Service").items():
        selected = [
            w
            for w in workloads.values()
            if service["spec"]["selector"].items()
            <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, f"Service {name} selects {len(selected)} workloads"
        port_names = {p["name"] for c in containers(selected[0]) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"Service {name}: {port['targetPort']}"
    services = _by_kind(objects, "Service")

    def service_port(name: str) -> int:
        port: int = services[name]["spec"]["ports"][0]["port"]
        return port

    settings = _settings_configmap(objects)
    assert service_port("postgres") == int(settings["POSTGRES_PORT"])
    assert service_port("api-gateway") == int(settings["API_PORT"])
    assert service_port("diagnostics") == int(settings["DIAG_PORT"])
    for variable, service in (
        ("INFLUXDB_URL", "influxdb"),
        ("DIAG_SERVICE_URL", "diagnostics"),
        ("OIDC_JWKS_URI", "keycloak"),
    ):
        url = urlsplit(settings[variable])
        assert (url.hostname, url.port) == (service, service_port(service)), variable
    assert service_port("redis") == 6379


def test_every_long_running_container_has_probes_and_resources(
    objects: list[dict[str, Any]],
) -> None:
    for name, workload in _workloads(objects).items():
        for container in containers(workload):
            assert "livenessProbe" in container, name
            assert "readinessProbe" in container, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert {"cpu", "memory"} <= set(resources["limits"]), name


def test_images_are_pinned_and_match_compose(objects: list[dict[str, Any]]) -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    compose_images = {s["image"] for s in compose.values() if "build" not in s}
    tags = {i["name"]: i["newTag"] for i in read_kustomization(K8S)["images"]}
    for obj in objects:
        for container in containers(obj):
            name, _, tag = container["image"].rpartition(":")
            assert re.fullmatch(r"\d+(\.\d+){1,2}(-[a-z0-9.-]+)?", tag), container["image"]
            if name.startswith("clpm/"):
                assert tags[name] == tag
            else:
                assert container["image"] in compose_images, f"{container['image']} != compose"


def test_clpm_pods_run_unprivileged(objects: list[dict[str, Any]]) -> None:
    workloads = {**_workloads(objects), **_by_kind(objects, "Job")}
    for name in (*CLPM_WORKLOADS, "frontend", "clpm-migrate"):
        spec = pod_spec(workloads[name])
        assert spec is not None
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            writable = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in writable, name


def _container_environment(
    workload: dict[str, Any], configmap: dict[str, str], secret: dict[str, str]
) -> dict[str, str]:
    """What the container's process sees: envFrom, then env with $(VAR) expanded."""
    container = containers(workload)[0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == "clpm-settings"
        env.update(configmap)
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m[1]], entry["value"])
        elif "secretKeyRef" in entry["valueFrom"]:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "clpm-secrets"
            env[entry["name"]] = secret[ref["key"]]
        else:
            ref = entry["valueFrom"]["configMapKeyRef"]
            assert ref["name"] == "clpm-settings"
            env[entry["name"]] = configmap[ref["key"]]
    return env


def test_settings_cover_env_docker_and_load_in_every_clpm_pod(
    objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    configmap = _settings_configmap(objects)
    settings_names = environment_variable_names()
    assert set(configmap) <= settings_names
    # What must differ from the built-in defaults in a cluster: where things are, what backends
    # and identity provider to use. Other settings may be left to their defaults.
    required = {
        "POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_USER", "TIMESERIES_BACKEND", "INFLUXDB_URL",
        "INFLUXDB_ORG", "INFLUXDB_BUCKET", "CACHE_BACKEND", "AUTH_MODE", "OIDC_ISSUER",
        "OIDC_AUDIENCE", "OIDC_JWKS_URI", "API_HOST", "API_PORT", "DIAG_HOST", "DIAG_PORT",
        "DIAG_SERVICE_URL", "CLPM_DATA_DIR", "STREAM_LOG_FILE", "LOCAL_ISSUER_KEY_PATH",
    }  # fmt: skip
    assert required <= set(configmap)
    env_docker = dict(
        line.split("=", 1)
        for line in (REPO_ROOT / "env.docker").read_text().splitlines()
        if re.match(r"^[A-Z][A-Z0-9_]*=", line)
    )
    for name in required:
        assert configmap[name] == env_docker[name].strip("'"), f"{name}: k8s and env.docker differ"
    secret_example = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    secret = secret_example["stringData"]
    workloads = {**_workloads(objects), **_by_kind(objects, "Job")}
    environments = {
        name: _container_environment(workloads[name], configmap, secret)
        for name in (*CLPM_WORKLOADS, "clpm-migrate")
    }
    for name, env in environments.items():
        if name != "clpm-migrate":
            assert env["REDIS_URL"] == f"redis://:{secret['REDIS_PASSWORD']}@redis:6379/0"
            assert env["INFLUXDB_TOKEN"] == secret["INFLUXDB_TOKEN"]
        assert env["POSTGRES_PASSWORD"] == secret["POSTGRES_PASSWORD"], name
    script = (
        "import json, os, sys\n"
        "from clpm_shared.config import load_settings\n"
        "for name, env in json.load(sys.stdin).items():\n"
        "    os.environ.clear(); os.environ.update(env)\n"
        "    s = load_settings()\n"
        "    assert s.database.async_url.endswith('@postgres:5432/clpm'), name\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(environments),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # every key any object takes from the Secret is in the documented example
    for obj in objects:
        for container in containers(obj):
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secret, f"{obj['metadata']['name']}: {ref['key']}"


def test_gateway_autoscales_and_the_hpa_owns_its_replicas(objects: list[dict[str, Any]]) -> None:
    hpa = _by_kind(objects, "HorizontalPodAutoscaler")["api-gateway"]["spec"]
    target = hpa["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "api-gateway")
    gateway = _workloads(objects)["api-gateway"]
    assert "replicas" not in gateway["spec"]
    assert hpa["minReplicas"] >= 2
    assert hpa["maxReplicas"] > hpa["minReplicas"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert "cpu" in containers(gateway)[0]["resources"]["requests"]  # utilization needs it
    for name in ("api-gateway", "diagnostics"):
        probes = containers(_workloads(objects)[name])[0]
        assert probes["readinessProbe"]["httpGet"]["path"] == "/ready", name
        assert probes["livenessProbe"]["httpGet"]["path"] == "/health", name


def test_migration_job_runs_alembic(objects: list[dict[str, Any]]) -> None:
    job = _by_kind(objects, "Job")["clpm-migrate"]
    spec = pod_spec(job)
    assert spec is not None
    assert spec["restartPolicy"] in ("OnFailure", "Never")
    assert job["spec"]["backoffLimit"] >= 1
    assert spec["containers"][0]["command"] == [
        "alembic", "-c", "migrations/alembic.ini", "upgrade", "head",
    ]  # fmt: skip
    assert spec["containers"][0]["image"].startswith("clpm/migrate:")


def test_workers_are_probed_on_their_own_heartbeat(objects: list[dict[str, Any]]) -> None:
    workloads = _workloads(objects)
    for name in WORKERS:
        container = containers(workloads[name])[0]
        for probe in ("startupProbe", "livenessProbe"):
            command = container[probe]["exec"]["command"]
            assert command[:2] == ["sh", "-c"], name
            assert command[2] == (
                f'exec python -m clpm_shared.healthcheck {name} --instance-prefix "$HOSTNAME"'
            )
    kpi = containers(workloads["kpi-worker"])[0]["startupProbe"]
    # the first heartbeat is written at start, before the catch-up cycle; then every minute
    assert kpi["periodSeconds"] * kpi["failureThreshold"] >= 5 * 60


def test_issuer_and_keycloak_hostname_agree(objects: list[dict[str, Any]]) -> None:
    keycloak = containers(_workloads(objects)["keycloak"])[0]
    env = {e["name"]: e.get("value") for e in keycloak["env"]}
    assert _settings_configmap(objects)["OIDC_ISSUER"] == env["KC_HOSTNAME"] + "/realms/clpm"
    assert env["KC_HOSTNAME_BACKCHANNEL_DYNAMIC"] == "true"
    assert keycloak["args"] == ["start", "--import-realm"]
    mounts = {m["name"]: m["mountPath"] for m in keycloak["volumeMounts"]}
    assert mounts["realm"] == "/opt/keycloak/data/import"


def test_frontend_proxies_to_the_gateway_service(objects: list[dict[str, Any]]) -> None:
    frontend = containers(_workloads(objects)["frontend"])[0]
    env = {e["name"]: e["value"] for e in frontend["env"]}
    host, port = env["CLPM_API_UPSTREAM"].rsplit(":", 1)
    service = _by_kind(objects, "Service")["api-gateway"]
    assert host == f"api-gateway.{service['metadata']['namespace']}.svc.cluster.local"
    assert int(port) == service["spec"]["ports"][0]["port"]


def test_generated_config_files_are_copies_of_the_canonical_ones() -> None:
    for name, canonical in COPIES.items():
        copy = K8S / "infrastructure" / "files" / name
        source = canonical.relative_to(REPO_ROOT)
        assert copy.read_bytes() == canonical.read_bytes(), (
            f"{copy.relative_to(REPO_ROOT)} is out of date: cp {source} {copy.parent}/"
        )
