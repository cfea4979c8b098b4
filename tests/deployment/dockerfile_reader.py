"""A small Dockerfile reader: stages and their instructions, enough to check and replay them."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    arguments: str  # continuation lines joined with single spaces

    def exec_form(self) -> list[str]:
        """The JSON (exec) form of CMD, or of HEALTHCHECK's CMD; shell forms are refused."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = text[text.index("CMD ") + 4 :]
        words: list[str] = json.loads(text)
        return words


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Dockerfile:
    path: Path
    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)

    def chain(self, name: str) -> list[Stage]:
        """The stage ``name`` and the stages it is built on (``FROM <stage>``), the first first."""
        names = {stage.name for stage in self.stages}
        stages = [self.stage(name)]
        while stages[0].base in names:
            stages.insert(0, self.stage(stages[0].base))
        return stages

    def environment(self, name: str) -> dict[str, str]:
        """The ENV of stage ``name`` with what it inherits (values as written, not expanded)."""
        values: dict[str, str] = {}
        for stage in self.chain(name):
            for instruction in stage.all("ENV"):
                for assignment in shlex.split(instruction.arguments):
                    key, _, value = assignment.partition("=")
                    values[key] = value
        return values

    def resolved_base(self, stage: Stage) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: self.global_args[m[1]], stage.base)


def read_dockerfile(path: Path) -> Dockerfile:
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append((pending + line.strip()).strip())
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = arguments.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        elif not stages and keyword == "ARG":
            name, _, default = arguments.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, arguments))
    return Dockerfile(path, global_args, stages)


def copy_sources(instruction: Instruction) -> tuple[list[str], str, str | None]:
    """(sources, destination, --from stage or None) of a COPY instruction."""
    words = shlex.split(instruction.arguments)
    origin = None
    options = [w for w in words if w.startswith("--")]
    for option in options:
        if option.startswith("--from="):
            origin = option.removeprefix("--from=")
    paths = [w for w in words if not w.startswith("--")]
    return paths[:-1], paths[-1], origin


def ignored_by(dockerignore: Path, relative: str) -> bool:
    """Whether ``relative`` (a path in the build context) is excluded by .dockerignore.

    Patterns match from the context root (``tests`` is only the top-level tests/), except
    ``**/`` ones, which match at any depth; a path is excluded when it or a parent matches.
    """
    patterns = [
        line.strip()
        for line in dockerignore.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    excluded = False
    parts = Path(relative.rstrip("/")).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for line in patterns:
        negate = line.startswith("!")
        pattern = line.removeprefix("!").rstrip("/")
        for prefix in prefixes:
            if pattern.startswith("**/"):
                tail = pattern.removeprefix("**/")
                matched = fnmatch.fnmatchcase(prefix, tail) or fnmatch.fnmatchcase(
                    prefix, f"*/{tail}"
                )
            else:
                matched = fnmatch.fnmatchcase(prefix, pattern)
            if matched:
                excluded = not negate
    return excluded
