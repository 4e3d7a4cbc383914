"""GPU facts from node labels, and the per-shape inventory placement decides over."""

from __future__ import annotations

from typing import Any

import pytest

from samizdat.core import inventory
from samizdat.core.placement.snapshot import NodeShape

H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.memory": "81559",
        "nvidia.com/gpu.count": "8"}


def node(name: str, labels: dict[str, str], gpus: int = 8, ready: bool = True, cordoned: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"unschedulable": True} if cordoned else {},
        "status": {"allocatable": {"nvidia.com/gpu": str(gpus)},
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def pod(node_name: str | None, gpus: int, phase: str = "Running") -> dict[str, Any]:
    return {"spec": {"nodeName": node_name, "containers": [{"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]},
            "status": {"phase": phase}}


@pytest.mark.parametrize(
    ("labels", "facts"),
    [
        pytest.param(H100, inventory.GPUFacts("NVIDIA-H100-80GB-HBM3", 81559, 8, False), id="gfd-h100"),
        pytest.param({**H100, "nvidia.com/cc.mode": "on"}, inventory.GPUFacts("NVIDIA-H100-80GB-HBM3", 81559, 8, True),
                     id="confidential"),
        pytest.param({**H100, "nvidia.com/cc.mode": "off"}, inventory.GPUFacts("NVIDIA-H100-80GB-HBM3", 81559, 8, False),
                     id="cc-off"),
        pytest.param({}, None, id="no-gpu"),
        pytest.param({**H100, "nvidia.com/gpu.memory": "lots"}, None, id="garbled-memory"),
    ],
)
def test_gpu_facts_come_from_labels(labels: dict[str, str], facts: inventory.GPUFacts | None) -> None:
    assert inventory.gpu_facts(labels) == facts


OBSERVED = {"samizdat.io/gpu.product": "NVIDIA-H100-80GB-HBM3", "samizdat.io/gpu.memory": "81559",
            "samizdat.io/gpu.count": "8", "samizdat.io/gpu.healthy": "8"}


@pytest.mark.parametrize(
    ("labels", "facts"),
    [
        pytest.param({**H100, **OBSERVED, "samizdat.io/cc": "ready"},
                     inventory.GPUFacts("NVIDIA-H100-80GB-HBM3", 81559, 8, True, True, 8), id="observed-tee"),
        pytest.param({**H100, **OBSERVED, "nvidia.com/cc.mode": "on", "samizdat.io/cc": "off"},
                     inventory.GPUFacts("NVIDIA-H100-80GB-HBM3", 81559, 8, False, False, 8),
                     id="claimed-tee-observed-off"),
        pytest.param({**H100, **OBSERVED, "samizdat.io/cc": "not-ready"},
                     inventory.GPUFacts("NVIDIA-H100-80GB-HBM3", 81559, 8, False, False, 8), id="observed-not-ready"),
        pytest.param({**H100, "nvidia.com/gpu.product": "NVIDIA-B200", **OBSERVED, "samizdat.io/gpu.healthy": "7"},
                     inventory.GPUFacts("NVIDIA-H100-80GB-HBM3", 81559, 8, False, False, 7),
                     id="observed-product-beats-a-typed-label"),
        pytest.param({**H100, "nvidia.com/cc.mode": "on", "samizdat.io/cc": "unknown"},
                     inventory.GPUFacts("NVIDIA-H100-80GB-HBM3", 81559, 8, True, False, None),
                     id="agent-without-driver-leaves-the-claims"),
    ],
)
def test_observed_facts_win_over_claimed_ones(labels: dict[str, str], facts: inventory.GPUFacts) -> None:
    assert inventory.gpu_facts(labels) == facts


def test_faulted_nodes_hold_nothing_and_unhealthy_gpus_are_not_free() -> None:
    faulted = node("faulted", {**H100, **OBSERVED})
    faulted["spec"]["taints"] = [{"key": inventory.FAULT_TAINT, "value": "Xid79", "effect": "NoExecute"}]
    degraded = node("degraded", {**H100, **OBSERVED, "samizdat.io/gpu.healthy": "6"})
    observed_tee = node("tee", {**H100, **OBSERVED, "samizdat.io/cc": "ready"})
    assert inventory.node_shapes([faulted, degraded, observed_tee], [pod("degraded", 2)]) == (
        NodeShape("NVIDIA-H100-80GB-HBM3", 81559, False, 4, 1),
        NodeShape("NVIDIA-H100-80GB-HBM3", 81559, True, 8, 1, tee_observed=True),
    )


def test_replicas_on_faulted_gpus_are_lost_once_the_member_cannot_place_them() -> None:
    faulted = node("x", {**H100, **OBSERVED})
    faulted["spec"]["taints"] = [{"key": inventory.FAULT_TAINT, "value": "Xid79", "effect": "NoExecute"}]
    nodes = {"x": faulted, "y": node("y", H100)}
    stranded, moved = pod("x", 1), pod("y", 1)
    unschedulable = pod(None, 1, phase="Pending")
    unschedulable["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    evicted = {**pod("x", 1), "metadata": {"deletionTimestamp": "2026-12-01T00:00:00Z"}}
    waiting = pod(None, 1, phase="Pending")  # not tried yet: the member's scheduler goes first
    assert inventory.replicas_lost_to_faults([stranded, moved, unschedulable, evicted, waiting], nodes) == 2
    # without a faulted node, an unschedulable pod is not the agent's business
    assert inventory.replicas_lost_to_faults([unschedulable], {"y": node("y", H100)}) == 0


def test_free_gpus_subtract_every_bound_unfinished_pod() -> None:
    nodes = [node("a", H100), node("b", H100), node("c", H100)]
    pods = [pod("a", 4), pod("a", 2), pod("b", 8), pod("c", 8, phase="Succeeded"), pod(None, 8)]
    assert inventory.node_shapes(nodes, pods) == (
        NodeShape("NVIDIA-H100-80GB-HBM3", 81559, False, 0, 1),
        NodeShape("NVIDIA-H100-80GB-HBM3", 81559, False, 2, 1),
        NodeShape("NVIDIA-H100-80GB-HBM3", 81559, False, 8, 1),
    )


def test_alike_nodes_are_grouped_and_unusable_ones_left_out() -> None:
    nodes = [node(f"n{i}", H100) for i in range(5)] + [
        node("down", H100, ready=False), node("cordoned", H100, cordoned=True), node("cpu", {}),
    ]
    assert inventory.node_shapes(nodes, []) == (NodeShape("NVIDIA-H100-80GB-HBM3", 81559, False, 8, 5),)


def test_pod_gpu_request_reads_requests_or_limits() -> None:
    both = {"spec": {"containers": [
        {"resources": {"requests": {"nvidia.com/gpu": "2"}}},
        {"resources": {"limits": {"nvidia.com/gpu": "1"}}},
        {"resources": {}},
    ]}}
    assert inventory.pod_gpu_request(both) == 3
