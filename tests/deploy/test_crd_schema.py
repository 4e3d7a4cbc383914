"""The CRDs in crds/: in sync with the models, and shaped as apiextensions.k8s.io/v1 requires.

The apiserver refuses a non-structural schema and CEL rules whose estimated cost is unbounded; these
tests catch both without one, as mysql-operator's test_crd_schema.py checks its CRD copies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from samizdat.core.model import crds

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"

# file -> (kind, plural, scope, short names, default printer columns in order)
EXPECTED = {
    "samizdat.io_memberclusters.yaml": (
        "MemberCluster", "memberclusters", "Cluster", ["mc"],
        ["Country", "Provider", "Phase", "Reason", "Free GPUs", "Age"],
    ),
    "samizdat.io_aiworkloads.yaml": (
        "AIWorkload", "aiworkloads", "Namespaced", ["aiw"], ["Replicas", "Ready", "Serving", "Standby", "Jurisdictions", "Rules", "Age"],
    ),
    "samizdat.io_alliances.yaml": ("Alliance", "alliances", "Cluster", None, ["Members", "Description", "Age"]),
}
# Keywords a structural schema may not use (or that pydantic would have leaked into it).
FORBIDDEN = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "uniqueItems", "const", "title", "nullable"}
# Where a schema may keep unknown fields: only the pod template, which is Kubernetes' own type.
PRESERVED = {"spec.template"}

CRD_FILES = [pytest.param(name, id=name.removeprefix("samizdat.io_").removesuffix(".yaml")) for name in EXPECTED]


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((CRD_DIR / name).read_text(encoding="utf-8"))
    return document


def _root(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its dotted path; array items are written as `path[]`."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}" if path else name)
    if "items" in node:
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}{{}}")


def _at(node: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    for name in filter(None, dotted.split(".")):
        node = node.get("properties", {}).get(name)
        if node is None:
            return None
    return node


def test_crd_directory_holds_exactly_the_three_crds() -> None:
    assert sorted(path.name for path in CRD_DIR.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", CRD_FILES)
def test_crd_file_is_what_the_models_generate(name: str) -> None:
    (resource,) = [resource for resource in crds.RESOURCES if resource.filename == name]

    assert (CRD_DIR / name).read_text(encoding="utf-8") == crds.render(resource), (
        "crds/ is stale: run `python -m samizdat.core.model.crds crds/`"
    )


@pytest.mark.parametrize("name", CRD_FILES)
def test_crd_names_scope_and_version(name: str) -> None:
    kind, plural, scope, short_names, _ = EXPECTED[name]
    crd = _load(name)
    spec = crd["spec"]

    assert (crd["apiVersion"], crd["kind"]) == ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    assert crd["metadata"] == {"name": f"{plural}.samizdat.io"}
    assert (spec["group"], spec["scope"]) == ("samizdat.io", scope)
    assert spec["names"]["kind"] == kind
    assert spec["names"]["listKind"] == f"{kind}List"
    assert (spec["names"]["plural"], spec["names"]["singular"]) == (plural, kind.lower())
    assert spec["names"].get("shortNames") == short_names
    assert spec["names"]["categories"] == ["samizdat"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)


@pytest.mark.parametrize("name", CRD_FILES)
def test_status_subresource_exactly_when_there_is_a_status(name: str) -> None:
    crd = _load(name)
    version = crd["spec"]["versions"][0]

    has_status = "status" in _root(crd)["properties"]
    assert ("subresources" in version) == has_status
    if has_status:
        assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("name", CRD_FILES)
def test_printer_columns_point_at_fields_of_their_type(name: str) -> None:
    crd = _load(name)
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]

    assert [column["name"] for column in columns if not column.get("priority")] == EXPECTED[name][4]
    for column in columns:
        if column["jsonPath"] == ".metadata.creationTimestamp":
            assert column["type"] == "date"
            continue
        node = _column_field(_root(crd), column["jsonPath"])
        assert node is not None, f"{column['name']}: {column['jsonPath']} is not in the schema"
        # kubectl prints a list as its JSON text.
        assert column["type"] == ("string" if node["type"] == "array" else node["type"]), column["name"]


def _column_field(root: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    # `.status.conditions[?(@.type=="X")].status` reads a field of the list item the filter selects.
    head, _, selected = json_path.partition("[?(")
    if not selected:
        return _at(root, head)
    items = _at(root, head)
    return None if items is None else _at(items["items"], selected.split(")]", 1)[1])


def test_rules_column_reads_the_rules_satisfied_condition() -> None:
    columns = _load("samizdat.io_aiworkloads.yaml")["spec"]["versions"][0]["additionalPrinterColumns"]

    (rules,) = [column for column in columns if column["name"] == "Rules"]

    assert rules["jsonPath"] == '.status.conditions[?(@.type=="RulesSatisfied")].status'


@pytest.mark.parametrize("name", CRD_FILES)
def test_schema_is_structural(name: str) -> None:
    root = _root(_load(name))

    assert root["properties"]["metadata"] == {"type": "object"}
    assert root["required"] == ["spec"]
    for path, node in _nodes(root):
        assert not FORBIDDEN & node.keys(), f"{path}: {sorted(FORBIDDEN & node.keys())}"
        assert "type" in node, f"{path}: every node needs a type"
        assert not ("properties" in node and "additionalProperties" in node), path
        assert node.get("additionalProperties") is not False, path
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert path in PRESERVED, f"{path} keeps unknown fields"
        if node["type"] != "object":
            assert not {"properties", "additionalProperties", "required"} & node.keys(), path
        if node["type"] != "array":
            assert "items" not in node, path


@pytest.mark.parametrize("name", CRD_FILES)
def test_list_types_are_consistent(name: str) -> None:
    for path, node in _nodes(_root(_load(name))):
        list_type = node.get("x-kubernetes-list-type")
        if list_type is None:
            continue
        assert node["type"] == "array", path
        if list_type == "set":
            assert node["items"]["type"] in {"string", "integer", "number", "boolean"}, path
        if list_type == "map":
            keys = node["x-kubernetes-list-map-keys"]
            assert set(keys) <= set(node["items"].get("required", [])), f"{path}: map keys must be required"


@pytest.mark.parametrize("name", CRD_FILES)
def test_every_user_facing_field_is_described(name: str) -> None:
    undescribed = [
        path
        for path, node in _nodes(_root(_load(name)))
        if path.startswith(("spec", "status")) and not path.endswith("[]") and not path.endswith("{}")
        and not node.get("description")
    ]

    assert undescribed == []


def test_explain_placement_is_useful() -> None:
    placement = _at(_root(_load("samizdat.io_aiworkloads.yaml")), "spec.placement")
    assert placement is not None

    for field in ("minJurisdictions", "maxPerJurisdiction", "maxPerAlliance", "deniedAlliances", "requireTEE"):
        assert len(placement["properties"][field]["description"]) > 20, field


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        pytest.param("spec.placement.allowedJurisdictions[]", "^[A-Z]{2}$", id="allowed"),
        pytest.param("spec.placement.deniedJurisdictions[]", "^[A-Z]{2}$", id="denied"),
        pytest.param("spec.model.digest", "^sha256:[a-f0-9]{64}$", id="digest"),
        pytest.param("status.jurisdictionList[]", "^[A-Z]{2}$", id="status-list"),
    ],
)
def test_workload_patterns(path: str, pattern: str) -> None:
    nodes = dict(_nodes(_root(_load("samizdat.io_aiworkloads.yaml"))))

    assert nodes[path]["pattern"] == pattern


@pytest.mark.parametrize(
    ("name", "path", "values"),
    [
        pytest.param("samizdat.io_aiworkloads.yaml", "spec.mode", ["Serve", "Train"], id="mode"),
        pytest.param("samizdat.io_aiworkloads.yaml", "status.conditions[].type",
                     ["Placed", "RulesSatisfied", "Available", "Degraded"], id="workload-conditions"),
        pytest.param("samizdat.io_memberclusters.yaml", "status.phase",
                     ["Pending", "Ready", "Suspect", "Down", "Quarantined"], id="phase"),
        pytest.param("samizdat.io_memberclusters.yaml", "status.conditions[].type",
                     ["Ready", "Reachable", "Censoring", "CredentialsExpiring", "Fenced"], id="member-conditions"),
    ],
)
def test_enums(name: str, path: str, values: list[str]) -> None:
    assert dict(_nodes(_root(_load(name))))[path]["enum"] == values


def _references(rule: str) -> Iterator[str]:
    """The field paths a CEL rule reads, e.g. `.placement.minJurisdictions`, without method calls."""
    for match in re.finditer(r"self((?:\.\w+)+)", rule):
        path = match.group(1)
        yield path.rsplit(".", 1)[0] if rule[match.end():].startswith("(") else path


@pytest.mark.parametrize("name", CRD_FILES)
def test_cel_rules_only_touch_bounded_fields(name: str) -> None:
    """The apiserver estimates each rule's cost from maxItems/maxLength; unbounded input fails the CRD."""
    checked = 0
    for path, node in _nodes(_root(_load(name))):
        for validation in node.get("x-kubernetes-validations", []):
            assert _at(node, validation["fieldPath"]) is not None, f"{path}: bad fieldPath {validation['fieldPath']}"
            for reference in _references(validation["rule"]):
                field = _at(node, reference)
                assert field is not None, f"{path}: rule refers to missing {reference}"
                if field["type"] == "array":
                    assert "maxItems" in field, f"{path}{reference}: unbounded list in a CEL rule"
                    field = field["items"]
                if field["type"] == "string":
                    assert "maxLength" in field, f"{path}{reference}: unbounded string in a CEL rule"
                checked += 1
    assert checked > 0 or name == "samizdat.io_alliances.yaml"
