"""The capacity ledger: GPUs promised to a member that its own node and pod views do not show as used yet.

Each decision is exact for its own workload, but the free GPUs it reads are what the member's bound pods
leave. A replica decided a moment ago holds nothing there until its pod exists and is bound to a node,
so concurrent decisions reading the same counts would each hand out the same GPUs (36 workloads applied
at once gave a member of 8 GPUs 9 replicas). The ledger charges every such promise to the member's
nodes before placement reads them.

Level-based, like the rest: a promise is what the latest recorded decision gives the member, or, with no
decision recorded (after an operator restart), what our copy there asks for; from it go the replicas
whose pods are already bound to a node (their GPUs are in the views) or finished. Nothing is remembered
beyond the members' own objects and the decisions the running operator made.

Where an unbound replica is charged, the scheduler decides, not us. Never over-committing matters more
than exactness, so the charge is chosen to keep every member total and every same-size fit exact, and to
err on the side of less capacity elsewhere:
- each unbound replica's GPUs are charged once, in full, to one node its pod may use (node selector and
  required affinity of the copy's template), so a member's free total never exceeds what is really left;
- for a request of the same GPU count as the promised replica, or a divisor of it, every node choice
  removes exactly the same number of replica slots, so the result is exact wherever the pod lands;
- the charge goes to the fitting node with the most free GPUs, where the default kube-scheduler puts it
  (LeastAllocated scoring and the default spreading of a ReplicaSet's pods prefer the emptiest node);
  that breaks the biggest free block, the pessimistic guess for a later, larger replica;
- a replica no node can take now charges nothing (those GPUs do not exist here): it stays Pending, and
  the start deadline re-places it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from samizdat.core import inventory, manifests
from samizdat.core.placement.snapshot import NodeShape


@dataclass(frozen=True, slots=True)
class Promise:
    """Replicas of one workload the latest decision gives a member, and the pod spec each replica runs."""

    workload_uid: str
    replicas: int
    # The copy's pod template spec: GPUs per replica (first container) and the nodes it may use.
    pod_spec: Mapping[str, Any]

    @property
    def gpus_per_replica(self) -> int:
        return inventory.pod_gpu_request({"spec": self.pod_spec})


def _placed_replicas(pods: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """Per workload uid, replicas whose pods hold their GPUs already (bound, not terminating) or need
    none any more (a training replica that finished)."""
    placed: Counter[str] = Counter()
    for pod in pods:
        uid = pod.get("metadata", {}).get("labels", {}).get(manifests.UID_LABEL)
        if not uid or pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        phase = pod.get("status", {}).get("phase")
        if phase == "Succeeded" or (phase != "Failed" and pod.get("spec", {}).get("nodeName")):
            placed[uid] += 1
    return placed


def unbound(promises: Iterable[Promise], pods: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Replicas per workload uid that are promised here but hold no GPU in the member's views yet."""
    placed = _placed_replicas(pods)
    return {p.workload_uid: p.replicas - placed[p.workload_uid] for p in promises
            if p.replicas > placed[p.workload_uid]}


def charge(
    nodes: tuple[inventory.GPUNode, ...], pods: Iterable[Mapping[str, Any]], promises: Iterable[Promise]
) -> tuple[inventory.GPUNode, ...]:
    """The member's usable GPU nodes with every unbound promised replica charged to one (see above)."""
    promises = tuple(promises)
    waiting = unbound(promises, pods)
    free = {node.name: node.free_gpus for node in nodes}
    # Bigger replicas first: they have fewer nodes to choose from; the uid makes the order total.
    for promise in sorted(promises, key=lambda p: (-p.gpus_per_replica, p.workload_uid)):
        gpus = promise.gpus_per_replica
        if gpus < 1:
            continue
        fitting = [n.name for n in nodes if inventory.node_matches(promise.pod_spec, n.labels)]
        for _ in range(waiting.get(promise.workload_uid, 0)):
            # The emptiest fitting node (ties by name, so the result is stable).
            target = min(fitting, key=lambda name: (-free[name], name), default=None)
            if target is None or free[target] < gpus:
                break
            free[target] -= gpus
    return tuple(dataclasses.replace(node, free_gpus=free[node.name]) for node in nodes)


def node_shapes(
    nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]], promises: Iterable[Promise]
) -> tuple[NodeShape, ...]:
    """The member's inventory as placement must read it: bound pods and unbound promises both charged."""
    pods = tuple(pods)
    return inventory.group_shapes(charge(inventory.gpu_nodes(nodes, pods), pods, promises))
