"""The Dockerfiles: pinned bases, non-root runtime, health checks, and build stages that work.

No Docker engine runs here, so the build stage of each Python image is replayed instead: its
COPY lines copy the same files out of the repository and its `uv sync` lines run as written
(with the image paths moved under a temporary directory). In the resulting virtualenv, without
the repository on the path, every import of the service must resolve and the health probe run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deployment.compose_engine import REPO_ROOT
from tests.deployment.dockerfile_reader import (
    Dockerfile,
    copy_sources,
    ignored_by,
    read_dockerfile,
)

DOCKERIGNORE = REPO_ROOT / ".dockerignore"
# image -> (Dockerfile, workspace member, module run by the image, health probe argument)
PYTHON_IMAGES = {
    "data-streaming": ("services/data_streaming", "data_streaming_service"),
    "aggregation": ("services/aggregation", "clpm_aggregation"),
    "kpi-worker": ("services/kpi_worker", "clpm_kpi_worker"),
    "diagnostics": ("services/diagnostics", "clpm_diagnostics"),
    "api-gateway": ("services/api_gateway", "clpm_api_gateway"),
}
PYTHON_BASE = re.compile(r"python:3\.11\.\d+-slim-bookworm")


def _member_name(directory: str) -> str:
    project = tomllib.loads((REPO_ROOT / directory / "pyproject.toml").read_text())["project"]
    return str(project["name"])


def _workspace_members() -> list[str]:
    root = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    members: list[str] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members += sorted(
            str(p.parent.relative_to(REPO_ROOT))
            for p in REPO_ROOT.glob(f"{pattern}/pyproject.toml")
        )
    return members


def _uv_version_of_bootstrap() -> str:
    match = re.search(
        r'^UV_VERSION="([^"]+)"', (REPO_ROOT / "deploy/bootstrap.sh").read_text(), re.M
    )
    assert match
    return match[1]


def _service_dockerfile(directory: str) -> Dockerfile:
    return read_dockerfile(REPO_ROOT / directory / "Dockerfile")


@pytest.mark.parametrize("image", list(PYTHON_IMAGES))
def test_python_image_layout(image: str) -> None:
    directory, module = PYTHON_IMAGES[image]
    dockerfile = _service_dockerfile(directory)
    assert PYTHON_BASE.fullmatch(dockerfile.global_args["PYTHON_IMAGE"])
    assert [s.name for s in dockerfile.stages] == ["build", "dev", "runtime"]
    build, dev, runtime = dockerfile.stages
    assert dockerfile.resolved_base(build) == dockerfile.resolved_base(runtime)
    assert dev.base == "build"
    # build: the locked, production-only dependencies of exactly this member
    syncs = [i.arguments for i in build.all("RUN") if "uv sync" in i.arguments]
    assert len(syncs) == 2
    for sync in syncs:
        assert "--frozen --no-dev" in sync
        assert f"--package {_member_name(directory)}" in sync
    assert "--no-install-workspace" in syncs[0]
    assert "--no-editable" in syncs[1]
    assert build.all("ARG")[0].arguments == f"UV_VERSION={_uv_version_of_bootstrap()}"
    assert build.all("RUN")[0].arguments == 'pip install "uv==${UV_VERSION}"'
    copied = {copy_sources(i)[0][0] for i in build.all("COPY")}
    assert {f"{m}/pyproject.toml" for m in _workspace_members()} <= copied
    assert {"uv.lock", "shared/src", f"{directory}/src"} <= copied | {"uv.lock"}
    # runtime: the virtualenv only, a non-root user, the health probe, the service module
    copies = [copy_sources(i) for i in runtime.all("COPY")]
    assert copies == [(["/opt/clpm/venv"], "/opt/clpm/venv", "build")]
    user = runtime.last("USER")
    assert user is not None
    assert user.arguments.split(":")[0] not in ("root", "0")
    healthcheck = runtime.last("HEALTHCHECK")
    assert healthcheck is not None
    assert healthcheck.exec_form() == ["python", "-m", "clpm_shared.healthcheck", image]
    command = runtime.last("CMD")
    assert command is not None
    assert command.exec_form() == ["python", "-m", module]
    assert (REPO_ROOT / directory / "src" / module / "__main__.py").is_file()
    dev_user = dev.last("USER")
    assert dev_user is not None
    assert dev_user.arguments == user.arguments


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    dockerfiles = [REPO_ROOT / d / "Dockerfile" for d, _ in PYTHON_IMAGES.values()]
    dockerfiles += [REPO_ROOT / "deploy/migrate/Dockerfile", REPO_ROOT / "frontend/Dockerfile"]
    for path in dockerfiles:
        for stage in read_dockerfile(path).stages:
            for instruction in stage.all("COPY"):
                sources, _, origin = copy_sources(instruction)
                if origin is not None:
                    continue
                for source in sources:
                    if (
                        source.startswith("frontend/")
                        and not (REPO_ROOT / "frontend/package.json").exists()
                    ):
                        continue  # the frontend sources are written separately
                    assert (REPO_ROOT / source).exists(), f"{path}: COPY {source}: no such path"
                    assert not ignored_by(DOCKERIGNORE, source), f"{path}: {source} is ignored"


def test_dockerignore_keeps_secrets_caches_and_tests_out() -> None:
    for path in (
        ".env",
        ".git/config",
        ".venv/bin/python",
        "frontend/node_modules/x/index.js",
        "shared/src/clpm_shared/__pycache__/config.cpython-311.pyc",
        "tests/run.sh",
        "services/api_gateway/tests/test_app.py",
        ".clpm/clpm.db",
        "frontend/dist/index.html",
        "frontend/tsconfig.tsbuildinfo",
    ):
        assert ignored_by(DOCKERIGNORE, path), path
    for path in (
        "uv.lock",
        "pyproject.toml",
        "shared/src/clpm_shared/config.py",
        "migrations/env.py",
        "deploy/nginx/default.conf",
        "frontend/src/main.tsx",
        "frontend/tests/setup.ts",  # `tests` excludes the top-level directory only
    ):
        assert not ignored_by(DOCKERIGNORE, path), path


def test_migrate_image_runs_alembic_with_the_migrations() -> None:
    dockerfile = read_dockerfile(REPO_ROOT / "deploy/migrate/Dockerfile")
    assert PYTHON_BASE.fullmatch(dockerfile.global_args["PYTHON_IMAGE"])
    runtime = dockerfile.stages[-1]
    copies = [copy_sources(i) for i in runtime.all("COPY")]
    assert (["migrations/"], "/opt/clpm/app/migrations/", None) in copies
    workdir = runtime.last("WORKDIR")
    assert workdir is not None
    assert workdir.arguments == "/opt/clpm/app"
    command = runtime.last("CMD")
    assert command is not None
    assert command.exec_form() == ["alembic", "-c", "migrations/alembic.ini", "upgrade", "head"]
    user = runtime.last("USER")
    assert user is not None
    assert user.arguments == "clpm:clpm"


def test_frontend_image_builds_with_node_and_serves_with_unprivileged_nginx() -> None:
    dockerfile = read_dockerfile(REPO_ROOT / "frontend/Dockerfile")
    build, runtime = dockerfile.stages
    assert re.fullmatch(r"node:20\.\d+\.\d+-bookworm-slim", dockerfile.resolved_base(build))
    assert re.fullmatch(
        r"nginxinc/nginx-unprivileged:1\.\d+\.\d+-alpine", dockerfile.resolved_base(runtime)
    )
    runs = [i.arguments for i in build.all("RUN")]
    assert any(run.endswith("npm ci") for run in runs)
    assert runs[-1] == "npm run build"
    copies = [copy_sources(i) for i in runtime.all("COPY")]
    assert (["/app/dist"], "/usr/share/nginx/html", "build") in copies
    assert (
        ["deploy/nginx/default.conf"],
        "/etc/nginx/templates/default.conf.template",
        None,
    ) in copies
    user = runtime.last("USER")
    assert user is not None
    assert user.arguments == "101"
    healthcheck = runtime.last("HEALTHCHECK")
    assert healthcheck is not None
    assert "http://127.0.0.1:8080/healthz" in healthcheck.exec_form()
    assert "location = /healthz" in (REPO_ROOT / "deploy/nginx/default.conf").read_text()


def _replay(dockerfile: Dockerfile, root: Path, stages: tuple[str, ...] = ("build",)) -> Path:
    """Run the COPY and `uv sync` lines of ``stages`` with ``root`` standing in for ``/``.

    Returns the virtualenv (UV_PROJECT_ENVIRONMENT). User creation (groupadd/useradd) is
    not replayed: it changes nothing in the virtualenv.
    """
    uv = shutil.which("uv")
    assert uv, "uv is not installed (deploy/bootstrap.sh installs it)"
    # The caller's environment carries the network settings (proxy, CA certificates) and HOME,
    # where the uv cache that deploy/bootstrap.sh filled lives.
    env = {
        name: value
        for name, value in os.environ.items()  # noqa: TID251 - tooling, not service settings
        if name != "VIRTUAL_ENV" and not name.startswith("UV_")
    }
    env["PATH"] = f"{Path(uv).parent}:/usr/bin:/bin"
    env["UV_PYTHON"] = str(Path(sys.executable).resolve())  # CPython 3.11, as in the image
    workdir = root
    for instruction in [i for name in stages for i in dockerfile.stage(name).instructions]:
        if instruction.keyword == "ENV":
            for assignment in shlex.split(instruction.arguments):
                name, _, value = assignment.partition("=")
                env[name] = str(root) + value if value.startswith("/") else value
        elif instruction.keyword == "WORKDIR":
            workdir = root / instruction.arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            sources, destination, _ = copy_sources(instruction)
            target = workdir / destination
            for source in sources:
                origin = REPO_ROOT / source
                if origin.is_dir():  # Docker copies a directory's contents, not the directory
                    shutil.copytree(
                        origin,
                        target,
                        ignore=shutil.ignore_patterns("__pycache__"),
                        dirs_exist_ok=True,
                    )
                elif destination.endswith("/"):
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
                else:
                    shutil.copy2(origin, target)
        elif instruction.keyword == "RUN":
            command = re.sub(r"--mount=\S+\s*", "", instruction.arguments).strip()
            if command.startswith("pip install"):
                continue  # uv itself: the version is checked against deploy/bootstrap.sh
            for part in (p.strip() for p in command.split("&&")):
                if part.startswith(("groupadd ", "useradd ")):
                    continue
                assert part.startswith("uv sync"), part
                env.update({"UV_COMPILE_BYTECODE": "0", "UV_LINK_MODE": "hardlink"})  # speed
                result = subprocess.run(
                    ["bash", "-c", part],
                    cwd=workdir,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
                assert result.returncode == 0, f"{part}\n{result.stderr}"
    return Path(env["UV_PROJECT_ENVIRONMENT"])


# Run by the virtualenv's interpreter: every absolute import in the installed packages must
# resolve there (third-party imports need a runtime dependency of that image, not a dev one).
# Static, so nothing is executed and no bytecode of numpy/scipy has to be compiled.
_UNRESOLVED_IMPORTS = """
import ast, importlib.util, json, pathlib, sys
unresolved = {}
for name in sys.argv[1:]:
    root = pathlib.Path(importlib.util.find_spec(name).origin).parent
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or importlib.util.find_spec(top):
                    continue
                where = f"{path.relative_to(root.parent)}:{node.lineno}"
                unresolved.setdefault(top, []).append(where)
print(json.dumps(unresolved))
"""


@pytest.mark.slow
@pytest.mark.parametrize("image", list(PYTHON_IMAGES))
def test_build_stage_yields_a_virtualenv_that_runs_the_service(image: str, tmp_path: Path) -> None:
    directory, module = PYTHON_IMAGES[image]
    venv = _replay(_service_dockerfile(directory), tmp_path)
    python = venv / "bin" / "python"
    outside = tmp_path / "run"  # not the repository: only the virtualenv is importable
    outside.mkdir()
    result = subprocess.run(
        [str(python), "-c", _UNRESOLVED_IMPORTS, module, "clpm_shared"],
        cwd=outside,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {}, "imports without a runtime dependency in the image"
    assert (
        str(REPO_ROOT)
        not in subprocess.run(
            [str(python), "-c", f"import {module}; print({module}.__file__)"],
            cwd=outside,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )  # installed non-editable, as in the runtime stage
    installed = {
        p.name.split("-")[0] for p in (venv / "lib").glob("python3.11/site-packages/*.dist-info")
    }
    assert not {"pytest", "mypy", "ruff", "playwright"} & installed  # --no-dev
    if image != "api-gateway":
        return  # running code compiles its bytecode first: seconds per image, so only once
    probe = subprocess.run(
        [str(python), "-m", "clpm_shared.healthcheck", "--help"],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr


@pytest.mark.slow
def test_migrate_build_stage_upgrades_a_database(tmp_path: Path) -> None:
    venv = _replay(read_dockerfile(REPO_ROOT / "deploy/migrate/Dockerfile"), tmp_path)
    app = tmp_path / "opt" / "clpm" / "app"
    shutil.copytree(
        REPO_ROOT / "migrations", app / "migrations", ignore=shutil.ignore_patterns("__pycache__")
    )
    database = tmp_path / "clpm.db"
    result = subprocess.run(
        [str(venv / "bin" / "alembic"), "-c", "migrations/alembic.ini", "upgrade", "head"],
        cwd=app,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{database}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Running upgrade" in result.stderr
    assert database.stat().st_size > 0


@pytest.mark.slow
def test_dev_stage_has_every_package_editable_and_the_reloader(tmp_path: Path) -> None:
    """docker-compose.dev.yml mounts the sources over /src and restarts with watchfiles."""
    dockerfile = _service_dockerfile("services/aggregation")  # a worker: no watchfiles of its own
    venv = _replay(dockerfile, tmp_path, stages=("build", "dev"))
    assert (venv / "bin" / "watchfiles").is_file()
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import clpm_aggregation, clpm_shared;"
         "print(clpm_aggregation.__file__); print(clpm_shared.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        str(tmp_path / "src/services/aggregation/src/clpm_aggregation/__init__.py"),
        str(tmp_path / "src/shared/src/clpm_shared/__init__.py"),
    ]  # editable: the mounted sources are what runs
