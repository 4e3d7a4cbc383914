"""The CRD schemas and the pydantic models describe the same objects.

The CRDs are generated from the models, so this walks both independently of the generator: every
property, type, bound, pattern, enum, default and required field must match, and sample objects must be
accepted (or refused) by both. CEL rules cannot be run here; test_model checks their Python twins and
the e2e suite runs them in a real kube-apiserver.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Callable, Iterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import annotated_types
import pydantic
import pytest
import yaml
from pydantic.fields import FieldInfo

from samizdat.core import model

Builder = Callable[..., dict[str, Any]]
REPO = Path(__file__).resolve().parents[3]
KINDS: dict[str, type[pydantic.BaseModel]] = {
    "MemberCluster": model.MemberCluster,
    "AIWorkload": model.AIWorkload,
    "Alliance": model.Alliance,
}
FILES = {
    "MemberCluster": "samizdat.io_memberclusters.yaml",
    "AIWorkload": "samizdat.io_aiworkloads.yaml",
    "Alliance": "samizdat.io_alliances.yaml",
}


def _schema(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "crds" / FILES[kind]).read_text(encoding="utf-8"))
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


# --- walking the models -------------------------------------------------------------------------------


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """Strip Optional and Annotated from a type, collecting the constraints Annotated carried."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        for item in extra:
            metadata = [*metadata, *(item.metadata if isinstance(item, FieldInfo) else [item])]
        return _unwrap(base, metadata)
    return annotation, metadata


def _constraints(metadata: list[Any], openapi_type: str) -> dict[str, Any]:
    """The OpenAPI keywords pydantic constraints stand for."""
    length = ("minItems", "maxItems") if openapi_type == "array" else ("minLength", "maxLength")
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            found["minimum"] = item.ge
        elif isinstance(item, annotated_types.Le):
            found["maximum"] = item.le
        elif isinstance(item, annotated_types.MinLen):
            found[length[0]] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            found[length[1]] = item.max_length
        elif getattr(item, "pattern", None) is not None:
            found["pattern"] = item.pattern
    return found


def _compare(annotation: Any, metadata: list[Any], node: dict[str, Any], path: str) -> Iterator[str]:
    """Disagreements between one model type and one schema node."""
    annotation, metadata = _unwrap(annotation, metadata)
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        expected_type = "object"
    elif origin is tuple:
        expected_type = "array"
    elif origin is dict:
        expected_type = "object"
    elif isinstance(annotation, type) and issubclass(annotation, StrEnum):
        expected_type = "string"
        if node.get("enum") != [member.value for member in annotation]:
            yield f"{path}: enum {node.get('enum')} != {[member.value for member in annotation]}"
    elif annotation in (datetime, pydantic.AwareDatetime):
        expected_type = "string"
        if node.get("format") != "date-time":
            yield f"{path}: a time must have format date-time"
    else:
        expected_type = {bool: "boolean", int: "integer", float: "number", str: "string"}[annotation]
        if annotation is not str and not any(isinstance(item, pydantic.Strict) for item in metadata):
            yield f"{path}: lax {annotation.__name__} would accept strings the apiserver refuses"
    if node.get("type") != expected_type:
        yield f"{path}: type {node.get('type')} != {expected_type}"
        return

    bounds = {key: node[key] for key in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
                                         "pattern") if key in node}
    if bounds != _constraints(metadata, expected_type):
        yield f"{path}: constraints {bounds} != model's {_constraints(metadata, expected_type)}"

    if expected_type == "object" and origin is None:
        yield from _compare_model(annotation, node, path)
    elif origin is tuple:
        yield from _compare(typing.get_args(annotation)[0], [], node["items"], f"{path}[]")
    elif origin is dict:
        value_type = typing.get_args(annotation)[1]
        if value_type is Any:
            if node.get("x-kubernetes-preserve-unknown-fields") is not True:
                yield f"{path}: free-form object must preserve unknown fields"
        else:
            yield from _compare(value_type, [], node.get("additionalProperties", {}), f"{path}{{}}")


def _compare_model(cls: type[pydantic.BaseModel], node: dict[str, Any], path: str) -> Iterator[str]:
    fields = {field.alias or name: field for name, field in cls.model_fields.items()}
    properties = node.get("properties", {})
    if set(properties) != set(fields):
        only_crd, only_model = sorted(set(properties) - set(fields)), sorted(set(fields) - set(properties))
        yield f"{path}: CRD has {only_crd}, model has {only_model}"
    required = {alias for alias, field in fields.items() if field.is_required()}
    if set(node.get("required", [])) != required:
        yield f"{path}: required {sorted(node.get('required', []))} != model's {sorted(required)}"
    for alias, field in fields.items():
        if alias in properties:
            child = properties[alias]
            yield from _compare(field.annotation, list(field.metadata), child, f"{path}.{alias}")
            yield from _compare_default(field, child, f"{path}.{alias}")


def _compare_default(field: FieldInfo, node: dict[str, Any], path: str) -> Iterator[str]:
    """Scalars default alike; an object defaults to {} filled by nested defaults; empty lists stay absent."""
    if field.is_required():
        return
    default = field.get_default(call_default_factory=True)
    if isinstance(default, pydantic.BaseModel):
        if node.get("default") != {} or default != type(default).model_validate({}):
            yield f"{path}: object default must be {{}} and equal the nested defaults"
    elif default in (None, (), {}):
        if "default" in node:
            yield f"{path}: CRD default {node['default']!r} where the model has none"
    elif node.get("default") != default:
        yield f"{path}: CRD default {node.get('default')!r} != model's {default!r}"


@pytest.mark.parametrize("kind", [pytest.param(kind, id=kind) for kind in KINDS])
def test_crd_and_model_describe_the_same_fields(kind: str) -> None:
    schema, cls = _schema(kind), KINDS[kind]
    disagreements = []
    for part in ("spec", "status"):
        field = cls.model_fields.get(part)
        if field is None:
            assert part not in schema["properties"], f"CRD has {part}, model does not"
            continue
        disagreements += list(_compare(field.annotation, [], schema["properties"][part], part))

    assert disagreements == []


def test_walker_notices_a_disagreement() -> None:
    """The comparison above must be able to fail: a CRD bound the model lacks is reported."""
    node = json.loads(json.dumps(_schema("AIWorkload")["properties"]["spec"]))
    node["properties"]["replicas"]["maximum"] = 10
    node["properties"]["extra"] = {"type": "string"}

    found = list(_compare(model.AIWorkloadSpec, [], node, "spec"))

    assert any("spec.replicas: constraints" in item for item in found)
    assert any("CRD has ['extra']" in item for item in found)


# --- sample objects -----------------------------------------------------------------------------------


def _violations(node: dict[str, Any], value: Any, path: str = "") -> Iterator[str]:
    """What the apiserver's OpenAPI validation (not CEL) would refuse in `value`; unknown fields count."""
    expected = node.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    }
    if not checks[expected](value):
        yield f"{path}: not a {expected}"
        return
    if "enum" in node and value not in node["enum"]:
        yield f"{path}: {value!r} not in enum"
    if "pattern" in node and not re.search(node["pattern"], value):
        yield f"{path}: {value!r} does not match {node['pattern']}"
    if node.get("format") == "date-time" and datetime.fromisoformat(value).tzinfo is None:
        yield f"{path}: time without offset"
    for keyword, measure, holds in (
        ("minLength", len, lambda a, b: a >= b), ("maxLength", len, lambda a, b: a <= b),
        ("minItems", len, lambda a, b: a >= b), ("maxItems", len, lambda a, b: a <= b),
        ("minimum", lambda v: v, lambda a, b: a >= b), ("maximum", lambda v: v, lambda a, b: a <= b),
    ):
        if keyword in node and not holds(measure(value), node[keyword]):
            yield f"{path}: violates {keyword} {node[keyword]}"
    if expected == "array":
        if node.get("x-kubernetes-list-type") == "set" and len(set(value)) != len(value):
            yield f"{path}: duplicate entries in a set"
        for index, item in enumerate(value):
            yield from _violations(node["items"], item, f"{path}[{index}]")
    if expected == "object":
        yield from (f"{path}.{key}: required" for key in node.get("required", []) if key not in value)
        for key, item in value.items():
            if key in node.get("properties", {}):
                yield from _violations(node["properties"][key], item, f"{path}.{key}")
            elif isinstance(node.get("additionalProperties"), dict):
                yield from _violations(node["additionalProperties"], item, f"{path}.{key}")
            elif not node.get("x-kubernetes-preserve-unknown-fields"):
                yield f"{path}.{key}: unknown field, the apiserver would prune it"


def _as_sent(document: dict[str, Any]) -> dict[str, Any]:
    """The object as JSON on the wire: YAML timestamps become RFC 3339 strings."""
    sent: dict[str, Any] = json.loads(json.dumps(document, default=lambda value: value.isoformat()))
    return sent


def _crd_violations(document: dict[str, Any]) -> list[str]:
    schema = _schema(document["kind"])
    sent = _as_sent(document)
    return [
        problem
        for part in ("spec", "status")
        if part in sent
        for problem in _violations(schema["properties"][part], sent[part], part)
    ]


def _model_accepts(document: dict[str, Any]) -> bool:
    try:
        KINDS[document["kind"]].model_validate(_as_sent(document))
    except pydantic.ValidationError:
        return False
    return True


def _shipped_documents() -> Iterator[Any]:
    for path in [
        *sorted((REPO / "docs" / "examples").glob("*.yaml")),
        REPO / "operator" / "samizdat" / "core" / "jurisdictions" / "alliances.yaml",
    ]:
        for index, document in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            yield pytest.param(document, id=f"{path.name}-{document['metadata']['name']}-{index}")


@pytest.mark.parametrize("document", list(_shipped_documents()))
def test_shipped_objects_are_valid_for_both(document: dict[str, Any]) -> None:
    assert _crd_violations(document) == []
    assert _model_accepts(document)


def _built(fixture: str, *args: Any, **kwargs: Any) -> Callable[[pytest.FixtureRequest], dict[str, Any]]:
    def build(request: pytest.FixtureRequest) -> dict[str, Any]:
        builder: Builder = request.getfixturevalue(fixture)
        return builder(*args, **kwargs)

    return build


A_TIME = "2026-01-01T00:00:00Z"
CASES = [
    pytest.param(_built("member_cluster"), True, id="minimal-member"),
    pytest.param(_built("ai_workload"), True, id="minimal-workload"),
    pytest.param(_built("alliance", "pact", ["DE", "FR"]), True, id="minimal-alliance"),
    pytest.param(_built("ai_workload", {"mode": "Train", "gpu": {"products": ["NVIDIA-H100-80GB-HBM3"]},
                                        "placement": {"clusterSelector": {"matchLabels": {"tier": "gold"}}}}),
                 True, id="full-workload"),
    pytest.param(_built("member_cluster", status={
        "conditions": [
            {"type": "Censoring", "status": "True", "reason": "ScaledToZero", "lastTransitionTime": A_TIME},
        ],
        "censorshipEvidence": {"kind": "ScaledToZero", "time": A_TIME}, "phase": "Quarantined",
        "quarantinedUntil": A_TIME, "lastProbeLatencyMs": 3.5}), True, id="censoring-member"),
    pytest.param(_built("ai_workload", {"replicas": -1}), False, id="negative-replicas"),
    pytest.param(_built("ai_workload", {"replicas": "3"}), False, id="replicas-as-string"),
    pytest.param(_built("ai_workload", {"placement": {"requireTEE": "true"}}), False, id="flag-as-string"),
    pytest.param(_built("member_cluster", spec={"costPerGPUHour": "2.5"}), False, id="number-as-string"),
    pytest.param(_built("member_cluster", spec={"costPerGPUHour": 2}), True, id="integer-for-number"),
    pytest.param(_built("ai_workload", {"mode": "serve"}), False, id="mode-wrong-case"),
    pytest.param(_built("ai_workload", {"gpu": {"count": 0}}), False, id="zero-gpus"),
    pytest.param(_built("ai_workload", {"placement": {"deniedJurisdictions": ["gb"]}}), False, id="lower-case-country"),
    pytest.param(_built("ai_workload", {"placement": {"deniedJurisdictions": ["GB", "GB"]}}), False,
                 id="duplicate-country"),
    pytest.param(_built("ai_workload", {"placement": {"allowedJurisdictions": ["DE"] * 251}}), False,
                 id="too-many-countries"),
    pytest.param(_built("ai_workload", {"model": {"digest": "sha256:abc"}}), False, id="short-digest"),
    pytest.param(_built("ai_workload", {"template": None}), False, id="no-template"),
    pytest.param(_built("ai_workload", {"placements": {}}), False, id="unknown-field"),
    pytest.param(_built("member_cluster", spec={"latencyMs": -1}), False, id="negative-latency"),
    pytest.param(_built("member_cluster", spec={"kubeconfigSecretRef": {"key": "a/b"}}), False, id="bad-secret-key"),
    pytest.param(_built("member_cluster", status={"phase": "Gone"}), False, id="unknown-phase"),
    pytest.param(_built("member_cluster", status={"gpuInventory": [{"product": "x", "memoryMiB": 1, "nodes": 1}]}),
                 False, id="shape-without-free-gpus"),
    pytest.param(_built("member_cluster", status={"conditions": [{"type": "Ready", "status": "Yes", "reason": "R",
                                                                  "lastTransitionTime": A_TIME}]}),
                 False, id="condition-status-not-tristate"),
    pytest.param(_built("alliance", "pact", ["DEU"]), False, id="alliance-alpha-3"),
]


@pytest.mark.parametrize(("build", "valid"), CASES)
def test_samples_get_the_same_verdict_from_both(
    request: pytest.FixtureRequest, build: Callable[[pytest.FixtureRequest], dict[str, Any]], valid: bool
) -> None:
    document = build(request)

    assert (_crd_violations(document) == []) is valid, _crd_violations(document)
    assert _model_accepts(document) is valid
