"""From resources to the placement snapshot: every field carried over, and who may take new replicas."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from samizdat.core import model
from samizdat.core.placement import from_model, snapshot

Builder = Callable[..., dict[str, Any]]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_member_carries_every_field(member_cluster: Builder) -> None:
    cluster = model.MemberCluster.model_validate(
        member_cluster(
            "fra", "DE", "ionos",
            spec={"jurisdiction": {"region": "DE-HE"}, "tee": True, "costPerGPUHour": 3.5, "latencyMs": 12},
            status={"gpuInventory": [
                {"product": "NVIDIA-H100-80GB-HBM3", "memoryMiB": 81559, "tee": True, "freeGPUs": 8, "nodes": 2},
                {"product": "NVIDIA-L4", "memoryMiB": 23034, "freeGPUs": 1, "nodes": 5},
            ]},
            labels={"tier": "gold"},
        )
    )

    assert from_model.to_member(cluster, NOW) == snapshot.MemberInfo(
        name="fra",
        country="DE",
        provider="ionos",
        region="DE-HE",
        tee=True,
        cost_per_gpu_hour=3.5,
        latency_ms=12.0,
        labels={"tier": "gold"},
        shapes=(
            snapshot.NodeShape(product="NVIDIA-H100-80GB-HBM3", memory_mib=81559, tee=True, free_gpus=8, nodes=2),
            snapshot.NodeShape(product="NVIDIA-L4", memory_mib=23034, tee=False, free_gpus=1, nodes=5),
        ),
        unschedulable_reason=None,
    )


@pytest.mark.parametrize(
    ("spec", "status", "reason"),
    [
        pytest.param({}, {"phase": "Ready"}, None, id="ready"),
        pytest.param({}, {"phase": "Pending"}, "pending: not probed yet", id="pending"),
        pytest.param({}, {"phase": "Suspect"}, "suspect: failing probes", id="suspect"),
        pytest.param({}, {"phase": "Down"}, "down", id="down"),
        pytest.param({"cordoned": True}, {"phase": "Ready"}, "cordoned", id="cordoned"),
        pytest.param({"cordoned": True}, {"phase": "Down"}, "cordoned; down", id="cordoned-and-down"),
        pytest.param({}, {"phase": "Quarantined", "quarantinedUntil": NOW + timedelta(seconds=1)},
                     "quarantined until 2026-03-01T12:00:01Z", id="quarantined"),
        pytest.param({}, {"phase": "Quarantined", "quarantinedUntil": NOW}, None, id="quarantine-ends-on-time"),
        pytest.param({}, {"phase": "Quarantined", "quarantinedUntil": NOW - timedelta(hours=1)}, None,
                     id="quarantine-expired"),
        pytest.param({}, {"phase": "Quarantined"}, "quarantined", id="quarantined-without-end"),
        pytest.param({}, {"phase": "Quarantined", "quarantinedUntil": "2026-03-01T16:00:00+02:00"},
                     "quarantined until 2026-03-01T14:00:00Z", id="quarantine-end-shown-in-utc"),
    ],
)
def test_unschedulable_reason(
    member_cluster: Builder, spec: dict[str, Any], status: dict[str, Any], reason: str | None
) -> None:
    cluster = model.MemberCluster.model_validate(member_cluster(spec=spec, status=status))

    assert from_model.to_member(cluster, NOW).unschedulable_reason == reason


def test_member_without_status_is_pending_and_empty(member_cluster: Builder) -> None:
    document = member_cluster()
    del document["status"]

    member = from_model.to_member(model.MemberCluster.model_validate(document), NOW)

    assert (member.shapes, member.unschedulable_reason) == ((), "pending: not probed yet")


def test_request_carries_every_rule(ai_workload: Builder) -> None:
    workload = model.AIWorkload.model_validate(
        ai_workload({
            "replicas": 4,
            "gpu": {"count": 2, "products": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H200"], "minMemoryMiB": 80000},
            "placement": {
                "minJurisdictions": 2, "maxPerJurisdiction": 2, "maxPerAlliance": 3, "maxPerProvider": 2,
                "maxPerCluster": 1, "minProviders": 2, "allowedJurisdictions": ["DE", "FR", "IS"],
                "deniedJurisdictions": ["US"], "deniedAlliances": ["five-eyes"], "requireTEE": True,
                "clusterSelector": {"matchLabels": {"tier": "gold"}},
            },
        })
    )

    request = from_model.to_request(workload, {"a": 1})

    assert request == snapshot.Request(
        replicas=4,
        gpu=snapshot.GPURequest(count=2, products=frozenset({"NVIDIA-H100-80GB-HBM3", "NVIDIA-H200"}),
                                min_memory_mib=80000),
        rules=snapshot.Rules(
            min_jurisdictions=2, max_per_jurisdiction=2, max_per_alliance=3, max_per_provider=2, max_per_cluster=1,
            min_providers=2, allowed_jurisdictions=frozenset({"DE", "FR", "IS"}),
            denied_jurisdictions=frozenset({"US"}), denied_alliances=frozenset({"five-eyes"}), require_tee=True,
            cluster_selector={"tier": "gold"},
        ),
        current={"a": 1},
    )


def test_observed_tee_implies_tee(ai_workload: Builder) -> None:
    workload = model.AIWorkload.model_validate(ai_workload({"placement": {"requireObservedTEE": True}}))
    rules = from_model.to_request(workload, {}).rules
    assert rules.require_tee and rules.require_observed_tee


def test_request_of_minimal_workload_has_no_limits(ai_workload: Builder) -> None:
    request = from_model.to_request(model.AIWorkload.model_validate(ai_workload()), {})

    assert request == snapshot.Request(replicas=2, gpu=snapshot.GPURequest(), rules=snapshot.Rules(), current={})


@pytest.mark.parametrize(
    ("replicas", "standby", "placed"),
    [pytest.param(2, 1, 3, id="standby-placed-too"), pytest.param(0, 1, 0, id="scaled-to-zero")],
)
def test_request_places_standby_replicas(ai_workload: Builder, replicas: int, standby: int, placed: int) -> None:
    workload = model.AIWorkload.model_validate(
        ai_workload({"replicas": replicas, "failover": {"standbyReplicas": standby}})
    )

    assert from_model.to_request(workload, {}).replicas == placed


def test_request_current_is_a_copy(ai_workload: Builder) -> None:
    current = {"a": 1}
    request = from_model.to_request(model.AIWorkload.model_validate(ai_workload()), current)
    current["a"] = 5

    assert request.current == {"a": 1}


def test_snapshot_merges_user_alliances_over_built_ins(member_cluster: Builder, alliance: Builder) -> None:
    members = [model.MemberCluster.model_validate(member_cluster(name)) for name in ("a", "b")]
    alliances = [
        model.Alliance.model_validate(alliance("five-eyes", ["US"])),
        model.Alliance.model_validate(alliance("nordics", ["DK", "FI", "IS", "NO", "SE"])),
    ]

    result = from_model.to_snapshot(members, alliances, NOW)

    assert [member.name for member in result.members] == ["a", "b"]
    assert result.alliances["five-eyes"] == frozenset({"US"})
    assert result.alliances["nordics"] == frozenset({"DK", "FI", "IS", "NO", "SE"})
    assert result.alliances["eu"] >= {"DE", "FR"}
