"""GPU facts of member nodes and the compact inventory placement decides over.

Every GPU fact is read from node labels through `gpu_facts`, in one place, whether the labels come
from NVIDIA's GPU Feature Discovery or, later, from samizdat's own NVML agent. Free GPUs per node are
the node's allocatable `nvidia.com/gpu` minus what every non-finished pod bound to it requests (ours
and other tenants'), and nodes are grouped by shape so a 100,000-node fleet stays small yet exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from samizdat.placement.snapshot import NodeShape

GPU_RESOURCE = "nvidia.com/gpu"
PRODUCT_LABEL = "nvidia.com/gpu.product"
MEMORY_LABEL = "nvidia.com/gpu.memory"
COUNT_LABEL = "nvidia.com/gpu.count"
CC_MODE_LABEL = "nvidia.com/cc.mode"
FINISHED_POD_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, slots=True)
class GPUFacts:
    product: str
    memory_mib: int
    count: int
    tee: bool


def gpu_facts(labels: Mapping[str, str]) -> GPUFacts | None:
    """The node's GPUs as its labels describe them, or None for a node without (parsable) GPU labels."""
    product = labels.get(PRODUCT_LABEL)
    if not product:
        return None
    try:
        memory = int(labels.get(MEMORY_LABEL, "0"))
        count = int(labels.get(COUNT_LABEL, "0"))
    except ValueError:
        return None
    # GFD reports "on" when the GPU runs in confidential-computing mode ("devtools"/"off" otherwise).
    return GPUFacts(product=product, memory_mib=memory, count=count, tee=labels.get(CC_MODE_LABEL) == "on")


def _quantity(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def pod_gpu_request(pod: Mapping[str, Any]) -> int:
    """GPUs a pod holds: extended resources have request == limit, and either may be given."""
    total = 0
    for container in pod.get("spec", {}).get("containers", []):
        resources = container.get("resources", {})
        amount = resources.get("requests", {}).get(GPU_RESOURCE, resources.get("limits", {}).get(GPU_RESOURCE, 0))
        total += _quantity(amount)
    return total


def allocatable_gpus(node: Mapping[str, Any]) -> int:
    """GPUs the node offers pods (its allocatable `nvidia.com/gpu`), 0 when absent or unparsable."""
    return _quantity(node.get("status", {}).get("allocatable", {}).get(GPU_RESOURCE, 0))


def _node_usable(node: Mapping[str, Any]) -> bool:
    """Ready, not cordoned, and no taint keeps a GPU pod off it. Only taints keyed by the GPU resource
    are tolerated: the ExtendedResourceToleration admission plugin tolerates those for every pod that
    requests GPUs, and GPU operators taint GPU nodes that way. Any other NoSchedule taint is counted as
    keeping our replicas off (a template that does tolerate it loses capacity here, never gains any)."""
    spec = node.get("spec", {})
    if spec.get("unschedulable"):
        return False
    if any(t.get("effect") in ("NoSchedule", "NoExecute") and t.get("key") != GPU_RESOURCE
           for t in spec.get("taints") or []):
        return False
    conditions = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclass(frozen=True, slots=True)
class GPUNode:
    """One schedulable GPU node and the GPUs no bound pod holds yet."""

    name: str
    facts: GPUFacts
    labels: Mapping[str, str]
    free_gpus: int


def used_gpus(pods: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """GPUs held per node name by every non-finished pod bound to it (ours and other tenants')."""
    used: Counter[str] = Counter()
    for pod in pods:
        node_name = pod.get("spec", {}).get("nodeName")
        if node_name and pod.get("status", {}).get("phase") not in FINISHED_POD_PHASES:
            used[node_name] += pod_gpu_request(pod)
    return used


def gpu_nodes(nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> tuple[GPUNode, ...]:
    """Usable (Ready, neither cordoned nor tainted) GPU nodes with their free GPUs, sorted by name."""
    used = used_gpus(pods)
    found = []
    for node in nodes:
        labels = node.get("metadata", {}).get("labels", {})
        facts = gpu_facts(labels)
        if facts is None or not _node_usable(node):
            continue
        name = node["metadata"]["name"]
        found.append(GPUNode(name=name, facts=facts, labels=labels,
                             free_gpus=max(0, allocatable_gpus(node) - used[name])))
    return tuple(sorted(found, key=lambda n: n.name))


def group_shapes(nodes: Iterable[GPUNode]) -> tuple[NodeShape, ...]:
    """Group nodes by (product, memory, TEE, free GPUs); sorted for stable output."""
    shapes: Counter[tuple[str, int, bool, int]] = Counter(
        (n.facts.product, n.facts.memory_mib, n.facts.tee, n.free_gpus) for n in nodes
    )
    return tuple(
        NodeShape(product=product, memory_mib=memory, tee=tee, free_gpus=free, nodes=count)
        for (product, memory, tee, free), count in sorted(shapes.items())
    )


def node_shapes(nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> tuple[NodeShape, ...]:
    """The compact inventory of schedulable GPU nodes as bound pods leave them."""
    return group_shapes(gpu_nodes(nodes, pods))


def _expression_holds(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator, values = expression.get("key", ""), expression.get("operator"), expression.get("values") or []
    value = labels.get(key)
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and values:
        try:
            actual, bound = int(value), int(values[0])
        except ValueError:
            return False
        return actual > bound if operator == "Gt" else actual < bound
    return False


def node_matches(pod_spec: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a node with `labels` satisfies the pod's nodeSelector and required node affinity, as
    the scheduler's NodeAffinity filter judges them (terms ORed, expressions within a term ANDed)."""
    selector = pod_spec.get("nodeSelector") or {}
    if any(labels.get(key) != value for key, value in selector.items()):
        return False
    required = (pod_spec.get("affinity") or {}).get("nodeAffinity", {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return True
    return any(
        all(_expression_holds(e, labels) for e in term.get("matchExpressions") or [])
        for term in required.get("nodeSelectorTerms") or []
    )


def untolerated_taints(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> tuple[str, ...]:
    """The node's NoSchedule/NoExecute taints the pod does not tolerate, as "key=value:Effect"."""
    tolerations = pod_spec.get("tolerations") or []

    def tolerated(taint: Mapping[str, Any]) -> bool:
        for toleration in tolerations:
            if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
                continue
            if toleration.get("operator") == "Exists":
                if not toleration.get("key") or toleration.get("key") == taint.get("key"):
                    return True
            elif toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get("value", ""):
                return True
        return False

    return tuple(
        f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}"
        for t in node.get("spec", {}).get("taints") or []
        if t.get("effect") in ("NoSchedule", "NoExecute") and not tolerated(t)
    )
