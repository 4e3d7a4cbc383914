"""The capacity ledger: promised replicas whose pods hold no GPU yet are charged before placement reads."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samizdat.core import inventory, ledger, manifests
from samizdat.core.placement import capacity
from samizdat.core.placement.snapshot import GPURequest, MemberInfo, NodeShape

H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-40GB"


def node(name: str, gpus: int = 8, product: str = H100, cordoned: bool = False,
         taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    memory = "81559" if product == H100 else "40960"
    return {
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.product": product, "nvidia.com/gpu.memory": memory,
                                              "nvidia.com/gpu.count": str(gpus)}},
        "spec": {"unschedulable": True, "taints": taints or []} if cordoned else {"taints": taints or []},
        "status": {"allocatable": {"nvidia.com/gpu": str(gpus)}, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def pod_spec(gpus: int = 1, products: tuple[str, ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "server", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]}
    if products:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": list(products)}]}
        ]}}}
    return spec


def pod(uid: str, node_name: str | None = None, gpus: int = 1, phase: str = "Pending",
        terminating: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": f"{uid}-pod", "labels": {manifests.UID_LABEL: uid}}
    if terminating:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec = {**pod_spec(gpus), "nodeName": node_name} if node_name else pod_spec(gpus)
    return {"metadata": metadata, "spec": spec, "status": {"phase": phase}}


def free(shapes: tuple[NodeShape, ...]) -> list[int]:
    return sorted(f for s in shapes for f in [s.free_gpus] * s.nodes)


@pytest.mark.parametrize(
    ("pods", "promises", "expected"),
    [
        pytest.param([], [ledger.Promise("w", 3, pod_spec())], [6, 7], id="decided-not-yet-created-spread"),
        pytest.param([pod("w")], [ledger.Promise("w", 3, pod_spec())], [6, 7], id="created-not-yet-bound"),
        pytest.param([pod("w", "a", phase="Running")] * 3, [ledger.Promise("w", 3, pod_spec())], [5, 8],
                     id="bound-pods-are-charged-once"),
        pytest.param([pod("w", "a", phase="Running")], [ledger.Promise("w", 3, pod_spec())], [6, 7],
                     id="one-bound-two-to-come-on-the-emptiest-node"),
        pytest.param([pod("w", phase="Succeeded")], [ledger.Promise("w", 1, pod_spec())], [8, 8],
                     id="finished-training-replica-needs-nothing"),
        pytest.param([pod("w", "a", phase="Running", terminating=True)], [ledger.Promise("w", 1, pod_spec())],
                     [7, 7], id="terminating-pod-holds-gpus-and-its-successor-is-charged"),
        pytest.param([pod("w", "a", phase="Running")] * 2, [ledger.Promise("w", 1, pod_spec())], [6, 8],
                     id="scale-down-under-way-charges-nothing-more"),
        pytest.param([], [ledger.Promise("w", 3, pod_spec(gpus=9))], [8, 8], id="fits-nowhere-charges-nothing"),
        pytest.param([], [ledger.Promise("w", 2, pod_spec(gpus=4)), ledger.Promise("v", 3, pod_spec())], [2, 3],
                     id="bigger-first-emptiest-node"),
    ],
)
def test_unbound_promises_are_charged(
    pods: list[dict[str, Any]], promises: list[ledger.Promise], expected: list[int]
) -> None:
    assert free(ledger.node_shapes([node("a"), node("b")], pods, promises)) == sorted(expected)


def test_promises_go_only_to_nodes_their_pods_may_use() -> None:
    nodes = [node("h", product=H100), node("a", product=A100)]
    shapes = ledger.node_shapes(nodes, [], [ledger.Promise("w", 2, pod_spec(gpus=4, products=(H100,)))])
    assert {(s.product, s.free_gpus) for s in shapes} == {(H100, 0), (A100, 8)}


def test_cordoned_and_tainted_nodes_offer_nothing_but_gpu_taints_are_tolerated() -> None:
    gpu_taint = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    hostile = [{"key": "maintenance", "value": "now", "effect": "NoSchedule"}]
    nodes = [node("a", taints=gpu_taint), node("b", taints=hostile), node("c", cordoned=True)]
    assert [n.name for n in inventory.gpu_nodes(nodes, [])] == ["a"]


def test_no_promises_is_the_plain_inventory() -> None:
    nodes = [node("a"), node("b", gpus=4)]
    pods = [pod("other", "a", gpus=3, phase="Running")]
    assert ledger.node_shapes(nodes, pods, []) == inventory.node_shapes(nodes, pods)


# ----- properties: concurrent decisions never give a member more than it has

nodes_strategy = st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=1, max_size=6)


def _world(sizes: list[tuple[int, int]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Nodes of `allocatable` GPUs, each with another tenant's pod holding `used` of them."""
    nodes = [node(f"n{i}", gpus=allocatable) for i, (allocatable, _) in enumerate(sizes)]
    pods = [pod(f"other{i}", f"n{i}", gpus=min(used, allocatable), phase="Running")
            for i, (allocatable, used) in enumerate(sizes) if min(used, allocatable)]
    return nodes, pods


def _slots(free_gpus: list[int], gpus: int) -> int:
    return sum(f // gpus for f in free_gpus)


@settings(max_examples=300, deadline=None)
@given(sizes=nodes_strategy, gpus=st.integers(1, 4), wants=st.lists(st.integers(1, 5), min_size=1, max_size=12),
       seed=st.integers(0, 2**16))
def test_concurrent_decisions_never_overcommit_and_any_scheduling_matches(
    sizes: list[tuple[int, int]], gpus: int, wants: list[int], seed: int
) -> None:
    """Workloads decided one after another before any pod exists each read the ledger; however the
    scheduler then binds the promised pods, every one fits, and what the ledger says is left is exact."""
    nodes, pods = _world(sizes)
    before = [n.free_gpus for n in inventory.gpu_nodes(nodes, pods)]
    promises: list[ledger.Promise] = []
    for number, want in enumerate(wants):
        shapes = ledger.node_shapes(nodes, pods, promises)
        member = MemberInfo("m", "DE", "p", shapes=shapes)
        granted = min(want, capacity.new_replicas(member, GPURequest(count=gpus), False, want))
        if granted:
            promises.append(ledger.Promise(f"w{number:02d}", granted, pod_spec(gpus)))
    promised = sum(p.replicas for p in promises)
    assert promised <= _slots(before, gpus)
    # Any scheduler: each promised pod to a random node with room.
    rng = random.Random(seed)
    after = list(before)
    for _ in range(promised):
        room = [i for i, f in enumerate(after) if f >= gpus]
        assert room, "a promised replica found no node"
        after[rng.choice(room)] -= gpus
    left = ledger.node_shapes(nodes, pods, promises)
    assert _slots(free(left), gpus) == _slots(after, gpus)
    assert sum(free(left)) == sum(after)


@settings(max_examples=300, deadline=None)
@given(sizes=nodes_strategy, wants=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 3)), min_size=1, max_size=10))
def test_mixed_sizes_never_promise_more_gpus_than_are_free(
    sizes: list[tuple[int, int]], wants: list[tuple[int, int]]
) -> None:
    """With replicas of different sizes the ledger still charges every promised GPU: the total promised
    never exceeds what the member has free, and the ledger itself finds a node for every promised pod."""
    nodes, pods = _world(sizes)
    total = sum(n.free_gpus for n in inventory.gpu_nodes(nodes, pods))
    promises: list[ledger.Promise] = []
    for number, (gpus, want) in enumerate(wants):
        member = MemberInfo("m", "DE", "p", shapes=ledger.node_shapes(nodes, pods, promises))
        granted = min(want, capacity.new_replicas(member, GPURequest(count=gpus), False, want))
        if granted:
            promises.append(ledger.Promise(f"w{number:02d}", granted, pod_spec(gpus)))
    promised_gpus = sum(p.replicas * p.gpus_per_replica for p in promises)
    assert promised_gpus <= total
    assert sum(free(ledger.node_shapes(nodes, pods, promises))) == total - promised_gpus
