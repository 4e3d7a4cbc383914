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


def _node_ready(node: Mapping[str, Any]) -> bool:
    if node.get("spec", {}).get("unschedulable"):
        return False
    conditions = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def node_shapes(nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> tuple[NodeShape, ...]:
    """Group schedulable GPU nodes by (product, memory, TEE, free GPUs); sorted for stable output."""
    used: Counter[str] = Counter()
    for pod in pods:
        node_name = pod.get("spec", {}).get("nodeName")
        if node_name and pod.get("status", {}).get("phase") not in FINISHED_POD_PHASES:
            used[node_name] += pod_gpu_request(pod)
    shapes: Counter[tuple[str, int, bool, int]] = Counter()
    for node in nodes:
        facts = gpu_facts(node.get("metadata", {}).get("labels", {}))
        if facts is None or not _node_ready(node):
            continue
        free = max(0, allocatable_gpus(node) - used[node["metadata"]["name"]])
        shapes[(facts.product, facts.memory_mib, facts.tee, free)] += 1
    return tuple(
        NodeShape(product=product, memory_mib=memory, tee=tee, free_gpus=free, nodes=count)
        for (product, memory, tee, free), count in sorted(shapes.items())
    )
