"""deploy/k8s rendered as ``kustomize build`` would, for the kustomization fields CLPM uses.

kustomize itself is not installable from the registries the test suite uses, so this renders
the subset the manifests use (resources, namespace, labels, images, configMapGenerator with
files) and refuses any other field, so that a new kustomize feature in deploy/k8s makes the
tests fail loudly instead of being skipped. Generated ConfigMaps keep their plain names
(kustomize would append a content hash to them and to their references).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "labels",
    "resources",
    "images",
    "configMapGenerator",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}


class UnsupportedKustomizationError(Exception):
    """The kustomization uses a field this renderer does not implement."""


def read_kustomization(directory: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(document) - SUPPORTED_FIELDS
    if unknown:
        raise UnsupportedKustomizationError(f"{directory}: {sorted(unknown)}")
    return document


def resource_files(directory: Path) -> list[Path]:
    """Every manifest file the kustomization in ``directory`` includes, recursively."""
    files: list[Path] = []
    for entry in read_kustomization(directory).get("resources", []):
        path = directory / entry
        files += resource_files(path) if path.is_dir() else [path]
    return files


def generated_files(directory: Path) -> list[Path]:
    """Every file read by a configMapGenerator, recursively."""
    kustomization = read_kustomization(directory)
    files = [directory / f for g in kustomization.get("configMapGenerator", []) for f in g["files"]]
    for entry in kustomization.get("resources", []):
        if (directory / entry).is_dir():
            files += generated_files(directory / entry)
    return files


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects of the kustomization in ``directory``, transformed like kustomize does."""
    kustomization = read_kustomization(directory)
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            objects += render(path)
        else:
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for generator in kustomization.get("configMapGenerator", []):
        data = {}
        for name in generator["files"]:
            file = directory / name
            data[file.name] = file.read_text()
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )
    objects = [copy.deepcopy(o) for o in objects]
    for obj in objects:
        metadata = obj.setdefault("metadata", {})
        if "namespace" in kustomization and obj["kind"] not in CLUSTER_SCOPED:
            metadata["namespace"] = kustomization["namespace"]
        for label_set in kustomization.get("labels", []):
            if label_set.get("includeSelectors", False) or label_set.get("includeTemplates"):
                raise UnsupportedKustomizationError("labels into selectors or templates")
            metadata.setdefault("labels", {}).update(label_set["pairs"])
        for image in kustomization.get("images", []):
            for container in containers(obj):
                name, _, _tag = container["image"].rpartition(":")
                if name == image["name"]:
                    new_name = image.get("newName", name)
                    container["image"] = f"{new_name}:{image['newTag']}"
    return objects


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload (Deployment, StatefulSet, Job), else None."""
    if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
        spec: dict[str, Any] = obj["spec"]["template"]["spec"]
        return spec
    return None


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    if spec is None:
        return []
    found: list[dict[str, Any]] = spec.get("initContainers", []) + spec["containers"]
    return found
