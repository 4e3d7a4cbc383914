"""The README's rooms table says what the folders and the import contracts say: each room one package,
listing every subpackage and module in it, and the rooms in the order of the import-linter layers; and
the tests' folders mirror the packages they test."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "operator" / "samizdat"
TESTS = ROOT / "tests"
# test folders of no package: shared helpers, chart/CRD/Dockerfile/alert files, the benches, the e2e harness
BESIDE_THE_ROOMS = {"support", "deploy", "benches", "harness"}


def rooms_table() -> dict[str, set[str]]:
    """Room package -> the names its README row lists."""
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| [^|]+ \| `(samizdat\.\w+)` \| ([^|]+) \|", readme, flags=re.M)
    return {package: set(re.findall(r"`(\w+)`", holds)) for package, holds in rows}


def contents(room: str) -> set[str]:
    folder = PACKAGE / room
    return {path.stem for path in folder.iterdir()
            if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()}


def test_every_room_lists_exactly_what_its_folder_holds() -> None:
    table = rooms_table()
    rooms = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert {package.removeprefix("samizdat.") for package in table} == rooms
    for package, listed in table.items():
        assert listed == contents(package.removeprefix("samizdat.")), package


def test_the_rooms_are_the_import_layers_and_each_rooms_contract_orders_all_it_holds() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layered = [c for c in contracts if c["type"] == "layers"]
    (rooms,) = [c["layers"] for c in layered if "containers" not in c]
    assert set(rooms) == set(rooms_table())
    inner = {c["containers"][0]: c["layers"] for c in layered if "containers" in c}
    for package, layers in inner.items():
        named = {name.strip() for layer in layers for name in layer.split("|")}
        assert named == contents(package.removeprefix("samizdat.")), package


def test_the_tests_mirror_the_packages_and_every_folder_is_a_package() -> None:
    folders = [path.relative_to(TESTS) for path in TESTS.rglob("*")
               if path.is_dir() and path.name != "__pycache__" and any(path.glob("*.py"))]
    for folder in folders:
        # same-named test files in two folders collide unless each folder is a package of its own
        assert (TESTS / folder / "__init__.py").exists(), folder
        if folder.parts[0] not in BESIDE_THE_ROOMS:
            assert (PACKAGE / folder / "__init__.py").exists(), f"tests/{folder} mirrors no package"
