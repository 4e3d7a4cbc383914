"""The pydantic models: defaults, wire names, and every rule they share with the CRDs' CEL rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pydantic
import pytest

from samizdat.core import model
from samizdat.core.model import ai_workload as workload_module
from samizdat.core.model import member_cluster as member_module
from samizdat.core.model.common import CelRule

Builder = Callable[..., dict[str, Any]]
DIGEST = "sha256:" + "ab" * 32


def _error(exc: pytest.ExceptionInfo[pydantic.ValidationError]) -> tuple[str, str]:
    (first, *_) = exc.value.errors()
    return ".".join(str(part) for part in first["loc"]), first["msg"]


def test_workload_defaults_fill_a_minimal_spec(ai_workload: Builder) -> None:
    spec = model.AIWorkload.model_validate(ai_workload()).spec

    assert spec.mode is model.Mode.SERVE
    assert spec.gpu == model.GPURequirements(count=1, products=(), min_memory_mib=0)
    assert spec.placement.min_jurisdictions == 1
    assert spec.placement.min_providers == 1
    assert spec.placement.max_per_jurisdiction is None
    assert spec.failover == model.FailoverPolicy(standby_replicas=0, quarantine_seconds=300)
    assert spec.model is None


def test_member_defaults_fill_a_minimal_spec(member_cluster: Builder) -> None:
    document = member_cluster()
    del document["status"]
    cluster = model.MemberCluster.model_validate(document)

    assert cluster.spec.kubeconfig_secret_ref.key == "kubeconfig"
    assert (cluster.spec.tee, cluster.spec.cordoned) == (False, False)
    assert cluster.spec.health == model.HealthPolicy(
        probe_interval_seconds=1, probe_timeout_seconds=1, suspect_after_failures=1, down_after_seconds=3
    )
    assert cluster.status.phase is model.Phase.PENDING
    assert cluster.status.gpu_inventory == ()


def test_member_spec_uses_kubernetes_field_names(member_cluster: Builder) -> None:
    cluster = model.MemberCluster.model_validate(member_cluster(spec={"costPerGPUHour": 2.5, "latencyMs": 7}))

    spec = cluster.model_dump(mode="json")["spec"]

    assert (spec["costPerGPUHour"], spec["latencyMs"]) == (2.5, 7)
    assert spec["kubeconfigSecretRef"] == {"name": "m1", "namespace": "samizdat-system", "key": "kubeconfig"}
    assert "cost_per_gpu_hour" not in spec


def test_wire_names_of_gpu_fields(member_cluster: Builder, ai_workload: Builder) -> None:
    cluster = model.MemberCluster.model_validate(member_cluster(status={"totalGPUs": 16, "freeGPUs": 8}))
    workload = model.AIWorkload.model_validate(
        ai_workload({"gpu": {"minMemoryMiB": 40960}, "placement": {"requireTEE": True, "requireObservedTEE": True}})
    )

    status = cluster.model_dump(mode="json")["status"]
    spec = workload.model_dump(mode="json")["spec"]

    assert (status["totalGPUs"], status["freeGPUs"]) == (16, 8)
    assert set(status["gpuInventory"][0]) == {"product", "memoryMiB", "tee", "teeObserved", "freeGPUs", "nodes"}
    assert spec["gpu"]["minMemoryMiB"] == 40960
    assert spec["placement"]["requireTEE"] is spec["placement"]["requireObservedTEE"] is True


def test_round_trip_through_json_is_lossless(member_cluster: Builder, ai_workload: Builder) -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    condition = {"type": "Ready", "status": "True", "reason": "ProbeSucceeded", "lastTransitionTime": now}
    cluster = model.MemberCluster.model_validate(
        member_cluster(status={"conditions": [condition], "quarantinedUntil": now, "lastProbeLatencyMs": 12.5})
    )
    workload = model.AIWorkload.model_validate(ai_workload({"model": {"digest": DIGEST}}))

    for resource in (cluster, workload):
        dumped = resource.model_dump(mode="json", exclude_none=True)
        assert type(resource).model_validate(dumped) == resource
    assert cluster.model_dump(mode="json")["status"]["quarantinedUntil"] == "2026-01-02T03:04:05Z"


def test_models_are_frozen(ai_workload: Builder) -> None:
    workload = model.AIWorkload.model_validate(ai_workload())

    with pytest.raises(pydantic.ValidationError, match="frozen"):
        workload.spec.replicas = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("replicas", "standby", "placed"),
    [
        pytest.param(3, 0, 3, id="serving-only"),
        pytest.param(3, 2, 5, id="standby-counts"),
        pytest.param(0, 2, 0, id="scaled-to-zero-drops-standby"),
    ],
)
def test_placed_replicas_include_standby(ai_workload: Builder, replicas: int, standby: int, placed: int) -> None:
    spec = {"replicas": replicas, "failover": {"standbyReplicas": standby}}

    assert model.AIWorkload.model_validate(ai_workload(spec)).spec.placed_replicas == placed


# Each CEL rule, broken; pydantic must refuse with the CEL rule's own message.
WORKLOAD_RULE_BREAKS = [
    pytest.param(
        {"replicas": 2, "placement": {"minJurisdictions": 3}},
        workload_module.MIN_JURISDICTIONS_WITHIN_REPLICAS,
        id="min-jurisdictions-above-replicas",
    ),
    pytest.param(
        {"replicas": 2, "placement": {"minProviders": 3}},
        workload_module.MIN_PROVIDERS_WITHIN_REPLICAS,
        id="min-providers-above-replicas",
    ),
    pytest.param(
        {"replicas": 5, "placement": {"maxPerJurisdiction": 2, "allowedJurisdictions": ["DE", "FR"]}},
        workload_module.REPLICAS_WITHIN_ALLOWED_CAPACITY,
        id="replicas-above-allowed-capacity",
    ),
    pytest.param(
        {"replicas": 3, "failover": {"standbyReplicas": 2},
         "placement": {"maxPerJurisdiction": 2, "allowedJurisdictions": ["DE", "FR"]}},
        workload_module.REPLICAS_WITHIN_ALLOWED_CAPACITY,
        id="standby-above-allowed-capacity",
    ),
    pytest.param(
        {"placement": {"allowedJurisdictions": ["DE", "FR"], "deniedJurisdictions": ["FR"]}},
        workload_module.ALLOWED_DENIED_DISJOINT,
        id="allowed-and-denied-overlap",
    ),
    pytest.param(
        {"replicas": 4, "placement": {"minJurisdictions": 3, "allowedJurisdictions": ["DE", "FR"]}},
        workload_module.MIN_JURISDICTIONS_WITHIN_ALLOWED,
        id="min-jurisdictions-above-allowed",
    ),
    pytest.param(
        {"mode": "Train", "traffic": {"dns": {"name": "llm.example.org"}}},
        workload_module.DNS_ONLY_TO_SERVE,
        id="dns-name-for-a-training-run",
    ),
]
MEMBER_RULE_BREAKS = [
    pytest.param({"probeIntervalSeconds": 5, "probeTimeoutSeconds": 6}, member_module.PROBE_TIMEOUT_WITHIN_INTERVAL,
                 id="timeout-above-interval"),
    pytest.param({"probeIntervalSeconds": 30, "downAfterSeconds": 20}, member_module.DOWN_AFTER_AT_LEAST_INTERVAL,
                 id="down-before-second-probe"),
]


def test_every_cel_rule_has_a_python_twin_under_test() -> None:
    declared = {
        value for module in (workload_module, member_module) for value in vars(module).values()
        if isinstance(value, CelRule)
    }

    assert declared == {case.values[1] for case in WORKLOAD_RULE_BREAKS + MEMBER_RULE_BREAKS}


@pytest.mark.parametrize(("spec", "rule"), WORKLOAD_RULE_BREAKS)
def test_workload_cel_rules_hold_in_python(ai_workload: Builder, spec: dict[str, Any], rule: CelRule) -> None:
    with pytest.raises(pydantic.ValidationError) as exc:
        model.AIWorkload.model_validate(ai_workload(spec))

    assert _error(exc)[1] == f"Value error, {rule.message}"


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"replicas": 0, "placement": {"minJurisdictions": 3, "minProviders": 3}}, id="scaled-to-zero"),
        pytest.param({"replicas": 1, "failover": {"standbyReplicas": 2}, "placement": {"minJurisdictions": 3}},
                     id="standby-reaches-min-jurisdictions"),
        pytest.param({"replicas": 4, "placement": {"maxPerJurisdiction": 2, "allowedJurisdictions": ["DE", "FR"]}},
                     id="exactly-at-allowed-capacity"),
        pytest.param({"replicas": 9, "placement": {"maxPerJurisdiction": 2}}, id="capacity-unbounded-without-allowed"),
        pytest.param({"placement": {"allowedJurisdictions": ["DE"], "deniedJurisdictions": ["FR"]}},
                     id="allowed-and-denied-disjoint"),
    ],
)
def test_workload_edge_cases_the_rules_accept(ai_workload: Builder, spec: dict[str, Any]) -> None:
    model.AIWorkload.model_validate(ai_workload(spec))


@pytest.mark.parametrize(("health", "rule"), MEMBER_RULE_BREAKS)
def test_member_cel_rules_hold_in_python(member_cluster: Builder, health: dict[str, int], rule: CelRule) -> None:
    with pytest.raises(pydantic.ValidationError) as exc:
        model.MemberCluster.model_validate(member_cluster(spec={"health": health}))

    assert _error(exc) == ("spec.health", f"Value error, {rule.message}")


@pytest.mark.parametrize(
    ("spec", "location"),
    [
        pytest.param({"replicas": -1}, "spec.replicas", id="negative-replicas"),
        pytest.param({"replicas": 2**31}, "spec.replicas", id="replicas-beyond-int32"),
        pytest.param({"mode": "Batch"}, "spec.mode", id="unknown-mode"),
        pytest.param({"gpu": {"count": 0}}, "spec.gpu.count", id="zero-gpus"),
        pytest.param({"gpu": {"minMemoryMiB": -1}}, "spec.gpu.minMemoryMiB", id="negative-memory"),
        pytest.param({"placement": {"minJurisdictions": 0}}, "spec.placement.minJurisdictions",
                     id="zero-jurisdictions"),
        pytest.param({"placement": {"maxPerCluster": 0}}, "spec.placement.maxPerCluster", id="zero-max-per-cluster"),
        pytest.param({"placement": {"deniedJurisdictions": ["de"]}}, "spec.placement.deniedJurisdictions.0",
                     id="lower-case-country"),
        pytest.param({"placement": {"deniedJurisdictions": ["DEU"]}}, "spec.placement.deniedJurisdictions.0",
                     id="alpha-3-country"),
        pytest.param({"placement": {"allowedJurisdictions": ["DE", "DE"]}}, "spec.placement.allowedJurisdictions",
                     id="duplicate-country"),
        pytest.param({"placement": {"deniedAlliances": ["Five Eyes"]}}, "spec.placement.deniedAlliances.0",
                     id="alliance-not-a-name"),
        pytest.param({"failover": {"standbyReplicas": -1}}, "spec.failover.standbyReplicas", id="negative-standby"),
        pytest.param({"model": {"digest": "sha256:" + "AB" * 32}}, "spec.model.digest", id="upper-case-digest"),
        pytest.param({"model": {"digest": "md5:" + "ab" * 16}}, "spec.model.digest", id="not-sha256"),
        pytest.param({"model": {"uri": "https://example.org/w"}}, "spec.model.digest", id="digest-missing"),
        pytest.param({"template": None}, "spec.template", id="template-missing"),
        pytest.param({"replica": 3}, "spec.replica", id="unknown-field"),
    ],
)
def test_workload_field_constraints(ai_workload: Builder, spec: dict[str, Any], location: str) -> None:
    with pytest.raises(pydantic.ValidationError) as exc:
        model.AIWorkload.model_validate(ai_workload(spec))

    assert _error(exc)[0] == location


@pytest.mark.parametrize(
    ("changes", "location"),
    [
        pytest.param({"spec": {"jurisdiction": {"country": "gb"}}}, "spec.jurisdiction.country",
                     id="lower-case-country"),
        pytest.param({"spec": {"costPerGPUHour": -0.1}}, "spec.costPerGPUHour", id="negative-cost"),
        pytest.param({"spec": {"provider": ""}}, "spec.provider", id="empty-provider"),
        pytest.param({"spec": {"kubeconfigSecretRef": {"namespace": "Samizdat"}}},
                     "spec.kubeconfigSecretRef.namespace", id="namespace-not-dns-label"),
        pytest.param({"status": {"phase": "Lost"}}, "status.phase", id="unknown-phase"),
        pytest.param({"status": {"quarantinedUntil": "2026-01-01T00:00:00"}}, "status.quarantinedUntil",
                     id="time-without-zone"),
        pytest.param({"status": {"gpuInventory": [{"product": "x", "memoryMiB": 1, "freeGPUs": 1, "nodes": 0}]}},
                     "status.gpuInventory.0.nodes", id="shape-without-nodes"),
        pytest.param({"status": {"conditions": [{"type": "Healthy", "status": "True", "reason": "Ok",
                                                 "lastTransitionTime": "2026-01-01T00:00:00Z"}]}},
                     "status.conditions.0.type", id="unknown-condition-type"),
        pytest.param({"status": {"censorshipEvidence": {"kind": "Vandalism", "time": "2026-01-01T00:00:00Z"}}},
                     "status.censorshipEvidence.kind", id="unknown-censorship-kind"),
    ],
)
def test_member_field_constraints(member_cluster: Builder, changes: dict[str, Any], location: str) -> None:
    with pytest.raises(pydantic.ValidationError) as exc:
        model.MemberCluster.model_validate(member_cluster(spec=changes.get("spec"), status=changes.get("status")))

    assert _error(exc)[0] == location


def test_metadata_keeps_what_samizdat_reads_and_ignores_the_rest(ai_workload: Builder) -> None:
    document = ai_workload()
    document["metadata"] |= {"generation": 4, "managedFields": [{"manager": "kubectl"}], "labels": {"team": "a"}}

    metadata = model.AIWorkload.model_validate(document).metadata

    assert (metadata.generation, metadata.labels) == (4, {"team": "a"})


def test_alliance_requires_members(alliance: Builder) -> None:
    document = alliance("pact", ["DE"])
    del document["spec"]["members"]

    with pytest.raises(pydantic.ValidationError) as exc:
        model.Alliance.model_validate(document)

    assert _error(exc)[0] == "spec.members"
