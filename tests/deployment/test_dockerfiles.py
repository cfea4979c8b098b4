"""The Dockerfiles: one for the Python images (common stages once, a target per image), frontend's.

Every image target is checked for the same properties: pinned base, non-root user, health
check, command, environment defaults and port, and a runtime without uv or the build tools.
No Docker engine runs here, so the build stage is also replayed: its COPY lines copy the same
files out of the repository and its `uv sync` lines run as written, with the build args that
docker-compose.yml passes and the image paths moved under a temporary directory. In the
resulting virtualenv, without the repository on the path, every import of the service must
resolve and the health probe run.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.deployment.compose_engine import REPO_ROOT
from tests.deployment.dockerfile_reader import (
    Dockerfile,
    Instruction,
    copy_sources,
    ignored_by,
    read_dockerfile,
)

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
PYTHON_BASE = re.compile(r"python:3\.11\.\d+-slim-bookworm")
COMMON_STAGES = ["base", "uv", "build", "runtime", "dev"]
HEALTHCHECK_OPTIONS = "--interval=30s --timeout=10s --start-period=60s --retries=3"
VENV = "/opt/clpm/venv"
# Set in `base`, so in every image and dev image.
BASE_ENVIRONMENT = {
    "PATH": f"{VENV}/bin:$PATH",
    "PYTHONUNBUFFERED": "1",
    "CLPM_DATA_DIR": "/var/lib/clpm",
}


@dataclass(frozen=True)
class Image:
    """What one image target sets: the rest comes from the common stages."""

    member: str  # workspace member directory whose package the image installs
    command: list[str]
    probe: list[str] | None  # HEALTHCHECK CMD; None: HEALTHCHECK NONE
    environment: dict[str, str] = field(default_factory=dict)
    port: str | None = None
    workdir: str = "/var/lib/clpm"

    @property
    def module(self) -> str:
        return self.command[2] if self.command[:2] == ["python", "-m"] else "alembic"


def _probe(name: str) -> list[str]:
    return ["python", "-m", "clpm_shared.healthcheck", name]


IMAGES = {
    "data-streaming": Image(
        "services/data_streaming",
        ["python", "-m", "data_streaming_service"],
        _probe("data-streaming"),
    ),
    "aggregation": Image(
        "services/aggregation", ["python", "-m", "clpm_aggregation"], _probe("aggregation")
    ),
    "kpi-worker": Image(
        "services/kpi_worker", ["python", "-m", "clpm_kpi_worker"], _probe("kpi-worker")
    ),
    "diagnostics": Image(
        "services/diagnostics",
        ["python", "-m", "clpm_diagnostics"],
        _probe("diagnostics"),
        {"DIAG_HOST": "0.0.0.0", "DIAG_PORT": "8050"},
        "8050",
    ),
    "api-gateway": Image(
        "services/api_gateway",
        ["python", "-m", "clpm_api_gateway"],
        _probe("api-gateway"),
        {"API_HOST": "0.0.0.0", "API_PORT": "8080"},
        "8080",
    ),
    "migrate": Image(
        "shared",
        ["alembic", "-c", "migrations/alembic.ini", "upgrade", "head"],
        None,
        workdir="/opt/clpm/app",
    ),
}
SERVICES = [name for name in IMAGES if name != "migrate"]  # each has a `<name>-dev` target


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


def _build_args(image: str) -> dict[str, str]:
    """The build args the image needs: its package, and its sources unless it is shared's."""
    member = IMAGES[image].member
    args = {"SERVICE_PACKAGE": _member_name(member)}
    if member != "shared":
        args["SERVICE_SRC"] = f"{member}/src"
    return args


def _syncs(dockerfile: Dockerfile, stage: str) -> list[Instruction]:
    return [i for i in dockerfile.stage(stage).all("RUN") if "uv sync" in i.arguments]


def _only(instructions: list[Instruction]) -> Instruction:
    assert len(instructions) == 1, instructions
    return instructions[0]


def _last(dockerfile: Dockerfile, target: str, keyword: str) -> Instruction | None:
    """The instruction ``keyword`` in effect for ``target`` (its own or inherited)."""
    found = [i for stage in dockerfile.chain(target) for i in stage.all(keyword)]
    return found[-1] if found else None


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return read_dockerfile(DOCKERFILE)


def test_common_stages_once_then_one_target_per_image(dockerfile: Dockerfile) -> None:
    names = [stage.name for stage in dockerfile.stages]
    assert names[: len(COMMON_STAGES)] == COMMON_STAGES
    targets = names[len(COMMON_STAGES) :]
    assert sorted(targets) == sorted([*IMAGES, *(f"{name}-dev" for name in SERVICES)])
    assert names[-1] in IMAGES  # `docker build` without --target never builds a dev image
    bases = {stage.name: stage.base for stage in dockerfile.stages}
    assert bases["base"] == "${PYTHON_IMAGE}"
    assert PYTHON_BASE.fullmatch(dockerfile.global_args["PYTHON_IMAGE"])
    assert (bases["uv"], bases["build"], bases["runtime"], bases["dev"]) == (
        "base",
        "uv",
        "base",
        "uv",
    )
    for target in targets:
        assert bases[target] == ("dev" if target.endswith("-dev") else "runtime"), target


def test_base_creates_the_unprivileged_user(dockerfile: Dockerfile) -> None:
    base = dockerfile.stage("base")
    run = _only(base.all("RUN")).arguments
    assert "groupadd --system --gid 10001 clpm" in run
    assert "useradd --system --uid 10001 --gid clpm --home-dir /var/lib/clpm" in run
    assert "--shell /usr/sbin/nologin clpm" in run
    assert dockerfile.environment("base") == BASE_ENVIRONMENT
    assert base.all("USER") == []  # the build stages run as root; runtime and dev switch


def test_build_stage_installs_the_named_package_from_the_lock(dockerfile: Dockerfile) -> None:
    uv = dockerfile.stage("uv")
    assert uv.all("ARG")[0].arguments == f"UV_VERSION={_uv_version_of_bootstrap()}"
    assert _only(uv.all("RUN")).arguments == 'pip install "uv==${UV_VERSION}"'
    environment = dockerfile.environment("uv")
    assert environment["UV_COMPILE_BYTECODE"] == "1"
    assert environment["UV_PROJECT_ENVIRONMENT"] == VENV
    assert environment["UV_PYTHON_DOWNLOADS"] == "never"
    manifests = {copy_sources(i)[0][0] for i in uv.all("COPY")}
    assert {f"{m}/pyproject.toml" for m in _workspace_members()} | {"pyproject.toml"} <= (
        manifests | {"pyproject.toml"}
    )
    assert "uv.lock" in copy_sources(uv.all("COPY")[0])[0]
    build = dockerfile.stage("build")
    assert [i.arguments for i in build.all("ARG")] == ["SERVICE_PACKAGE", "SERVICE_SRC=shared/src"]
    deps, workspace = (i.arguments for i in _syncs(dockerfile, "build"))
    for sync in (deps, workspace):
        assert sync.startswith(
            "--mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev"
        )
    # third-party dependencies first (a layer that only uv.lock and the manifests invalidate) ...
    assert "--no-install-workspace" in deps
    assert '--package "${SERVICE_PACKAGE:?' in deps  # no package given: the build stops
    # ... then the package and shared, non-editable, from the sources copied in between
    assert workspace.endswith('--no-editable --package "${SERVICE_PACKAGE}"')
    copies = [copy_sources(i) for i in build.all("COPY")]
    assert copies == [
        (["shared/src"], "shared/src", None),
        (["${SERVICE_SRC}"], "${SERVICE_SRC}", None),
    ]
    ordered = [i.keyword for i in build.instructions]
    assert ordered == ["ARG", "ARG", "RUN", "COPY", "COPY", "RUN"]


def test_build_stage_stops_without_a_package(dockerfile: Dockerfile, tmp_path: Path) -> None:
    """The shell expands ${SERVICE_PACKAGE:?...} before uv runs: a clear message, no image."""
    command = re.sub(r"--mount=\S+\s*", "", _syncs(dockerfile, "build")[0].arguments)
    result = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=tmp_path,
        env={"PATH": "/nonexistent"},  # uv would not be found either: the expansion fails first
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode != 0
    assert "build with --build-arg SERVICE_PACKAGE=" in result.stderr


def test_runtime_holds_the_virtualenv_only(dockerfile: Dockerfile) -> None:
    runtime = dockerfile.stage("runtime")
    copies = [copy_sources(i) for i in runtime.all("COPY")]
    assert copies == [([VENV], VENV, "build")]
    assert runtime.all("RUN") == []
    assert dockerfile.environment("runtime") == {**BASE_ENVIRONMENT, "PYTHONDONTWRITEBYTECODE": "1"}
    user = runtime.last("USER")
    assert user is not None
    assert user.arguments == "clpm:clpm"


@pytest.mark.parametrize("image", list(IMAGES))
def test_image_target(image: str, dockerfile: Dockerfile) -> None:
    expected = IMAGES[image]
    chain = dockerfile.chain(image)
    assert [stage.name for stage in chain] == ["base", "runtime", image]
    assert dockerfile.resolved_base(chain[0]) == dockerfile.global_args["PYTHON_IMAGE"]
    target = chain[-1]
    # no uv, pip or compiler in the image: nothing installed after the pinned base but the
    # user, the virtualenv built elsewhere (and migrate's revisions)
    instructions = [i for stage in chain for i in stage.instructions]
    copies = [copy_sources(i) for i in instructions if i.keyword == "COPY"]
    expected_copies = [([VENV], VENV, "build")]
    if image == "migrate":
        expected_copies.append((["migrations/"], "/opt/clpm/app/migrations/", None))
    assert copies == expected_copies
    assert not [i for i in instructions if i.keyword in ("ADD", "ARG")]
    runs = [i.arguments for stage in chain[1:] for i in stage.all("RUN")]
    # the build fails when the virtualenv lacks what the command runs (another SERVICE_PACKAGE)
    guard = "import alembic, clpm_shared" if image == "migrate" else f"import {expected.module}"
    assert runs == [f'python -c "{guard}"']
    assert not re.search(r"\b(uv|pip|apt-get|gcc)\b", " ".join(runs))
    user = _last(dockerfile, image, "USER")
    assert user is not None
    assert user.arguments == "clpm:clpm"
    assert target.all("USER") == []  # the runtime's user, not one of its own
    assert dockerfile.environment(image) == {
        **BASE_ENVIRONMENT,
        "PYTHONDONTWRITEBYTECODE": "1",
        **expected.environment,
    }
    exposed = [i.arguments for i in target.all("EXPOSE")]
    assert exposed == ([expected.port] if expected.port else [])
    workdir = _last(dockerfile, image, "WORKDIR")
    assert workdir is not None
    assert workdir.arguments == expected.workdir
    healthcheck = _only(target.all("HEALTHCHECK"))
    if expected.probe is None:
        assert healthcheck.arguments == "NONE"  # a one-shot job: its exit status is its health
    else:
        assert healthcheck.arguments.startswith(f"{HEALTHCHECK_OPTIONS} CMD ")
        assert healthcheck.exec_form() == expected.probe
    assert _only(target.all("CMD")).exec_form() == expected.command
    if expected.module != "alembic":
        member_src = REPO_ROOT / expected.member / "src"
        assert (member_src / expected.module / "__main__.py").is_file()


@pytest.mark.parametrize("image", SERVICES)
def test_dev_target(image: str, dockerfile: Dockerfile) -> None:
    """Same command, environment, port and user as the image, on every package editable."""
    expected = IMAGES[image]
    target = f"{image}-dev"
    assert [stage.name for stage in dockerfile.chain(target)] == ["base", "uv", "dev", target]
    own = dockerfile.stage(target)
    assert {i.keyword for i in own.instructions} <= {"ENV", "EXPOSE", "CMD"}
    assert _only(own.all("CMD")).exec_form() == expected.command
    assert [i.arguments for i in own.all("EXPOSE")] == ([expected.port] if expected.port else [])
    environment = dockerfile.environment(target)
    assert environment == {**dockerfile.environment("uv"), **expected.environment}
    assert environment.items() >= BASE_ENVIRONMENT.items()
    user = _last(dockerfile, target, "USER")
    assert user is not None
    assert user.arguments == _last(dockerfile, image, "USER").arguments  # type: ignore[union-attr]
    dev = dockerfile.stage("dev")
    deps, workspace = (i.arguments for i in _syncs(dockerfile, "dev"))
    assert deps.endswith("uv sync --frozen --no-dev --no-install-workspace --all-packages")
    assert workspace.endswith("uv sync --frozen --no-dev --all-packages")  # editable
    copies = [copy_sources(i) for i in dev.all("COPY")]
    assert copies == [(["shared/"], "shared/", None), (["services/"], "services/", None)]


@pytest.mark.parametrize("image", list(IMAGES))
def test_compose_builds_each_image_from_its_target(
    image: str, dockerfile: Dockerfile, base_model: dict[str, Any], dev_model: dict[str, Any]
) -> None:
    build = base_model["services"][image]["build"]
    assert Path(build["context"]) == REPO_ROOT
    assert build["dockerfile"] == "Dockerfile"
    assert build["target"] == image
    assert build["args"] == _build_args(image)
    source = build["args"].get("SERVICE_SRC", "shared/src")  # the ARG's default
    assert (REPO_ROOT / source).is_dir()
    assert not ignored_by(DOCKERIGNORE, source)
    dev_build = dev_model["services"][image]["build"]
    assert dev_build["target"] == (f"{image}-dev" if image in SERVICES else image)
    assert dev_build["target"] in {stage.name for stage in dockerfile.stages}


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    for path in (DOCKERFILE, REPO_ROOT / "frontend/Dockerfile"):
        dockerfile = read_dockerfile(path)
        defaults = {
            name: value
            for stage in dockerfile.stages
            for i in stage.all("ARG")
            for name, _, value in [i.arguments.partition("=")]
        }
        for stage in dockerfile.stages:
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
                    if source == "${SERVICE_SRC}":  # each image's, and the default
                        candidates = [defaults["SERVICE_SRC"]]
                        candidates += [a["SERVICE_SRC"] for a in map(_build_args, SERVICES)]
                    else:
                        assert "$" not in source, f"{path}: COPY {source}"
                        candidates = [source]
                    for candidate in candidates:
                        assert (REPO_ROOT / candidate).exists(), f"{path}: COPY {candidate}"
                        assert not ignored_by(DOCKERIGNORE, candidate), f"{path}: {candidate}"


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


def _replay(dockerfile: Dockerfile, target: str, args: dict[str, str], root: Path) -> Path:
    """Run the ARG, ENV, WORKDIR, COPY and `uv sync` lines of ``target`` and the stages it is
    built on, with the build ``args`` and ``root`` standing in for ``/``.

    Returns the virtualenv (UV_PROJECT_ENVIRONMENT). User creation (groupadd/useradd) and
    PATH are not replayed: they change nothing in the virtualenv.
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

    def substituted(text: str) -> str:  # what Docker does to ARGs in COPY
        return re.sub(r"\$\{(\w+)\}", lambda m: env[m[1]], text)

    workdir = root
    for stage in dockerfile.chain(target):
        for instruction in stage.instructions:
            if instruction.keyword == "ARG":
                name, _, default = instruction.arguments.partition("=")
                if name in args or default:
                    env[name] = args.get(name, default)
            elif instruction.keyword == "ENV":
                for assignment in shlex.split(instruction.arguments):
                    name, _, value = assignment.partition("=")
                    if name != "PATH":
                        env[name] = str(root) + value if value.startswith("/") else value
            elif instruction.keyword == "WORKDIR":
                workdir = root / instruction.arguments.lstrip("/")
                workdir.mkdir(parents=True, exist_ok=True)
            elif instruction.keyword == "COPY":
                sources, destination, _ = copy_sources(instruction)
                target_path = workdir / substituted(destination)
                for source in map(substituted, sources):
                    origin = REPO_ROOT / source
                    if origin.is_dir():  # Docker copies a directory's contents
                        shutil.copytree(
                            origin,
                            target_path,
                            ignore=shutil.ignore_patterns("__pycache__"),
                            dirs_exist_ok=True,
                        )
                    elif destination.endswith("/"):
                        target_path.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(origin, target_path / origin.name)
                    else:
                        shutil.copy2(origin, target_path)
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
skipped = [a[1:] for a in sys.argv[1:] if a.startswith("-")]  # -pkg.sub: an extra not installed
for name in (a for a in sys.argv[1:] if not a.startswith("-")):
    root = pathlib.Path(importlib.util.find_spec(name).origin).parent
    for path in sorted(root.rglob("*.py")):
        dotted = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        if any(dotted == s or dotted.startswith(s + ".") for s in skipped):
            continue
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
@pytest.mark.parametrize("image", SERVICES)
def test_build_stage_yields_a_virtualenv_that_runs_the_service(
    image: str, dockerfile: Dockerfile, base_model: dict[str, Any], tmp_path: Path
) -> None:
    module = IMAGES[image].module
    build_args = base_model["services"][image]["build"]["args"]  # as docker compose builds it
    venv = _replay(dockerfile, "build", build_args, tmp_path)
    python = venv / "bin" / "python"
    outside = tmp_path / "run"  # not the repository: only the virtualenv is importable
    outside.mkdir()
    # clpm_shared.web needs the extra `web` (FastAPI), which only the HTTP services request;
    # clpm_shared.reports the extra `reports` (renderers) of the gateway and the kpi-worker
    project = tomllib.loads((REPO_ROOT / IMAGES[image].member / "pyproject.toml").read_text())
    extras: set[str] = set()
    for requirement in project["project"]["dependencies"]:
        found = re.fullmatch(r"clpm-shared\[([a-z,]+)\]", requirement)
        if found:
            extras.update(found[1].split(","))
    result = subprocess.run(
        [str(python), "-c", _UNRESOLVED_IMPORTS, module, "clpm_shared"]
        + [f"-clpm_shared.{extra}" for extra in ("web", "reports") if extra not in extras],
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
def test_migrate_build_stage_upgrades_a_database(
    dockerfile: Dockerfile, base_model: dict[str, Any], tmp_path: Path
) -> None:
    build_args = base_model["services"]["migrate"]["build"]["args"]
    venv = _replay(dockerfile, "build", build_args, tmp_path)
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
def test_dev_stage_has_every_package_editable_and_the_reloader(
    dockerfile: Dockerfile, tmp_path: Path
) -> None:
    """docker-compose.dev.yml mounts the sources over /src and restarts with watchfiles."""
    venv = _replay(dockerfile, "aggregation-dev", {}, tmp_path)  # a worker: no watchfiles own
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
