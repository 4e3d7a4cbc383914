"""GPU facts of member nodes and the compact inventory placement decides over.

Every GPU fact is read from node labels through `gpu_facts`, in one place. Two sources may describe a
node: samizdat's NVML agent (`samizdat agent`), which writes what it *observed* under `samizdat.io/`
names, and NVIDIA's GPU Feature Discovery or a person, whose `nvidia.com/` labels are claims. Observed
facts win wherever the agent wrote them: a label typed as `nvidia.com/cc.mode=on` on a node whose agent
sees confidential computing off is not a TEE. This module owns the label, taint and condition names
the agent writes, so the agent and the inventory cannot drift apart.

Free GPUs per node are the node's allocatable `nvidia.com/gpu` (no more than the agent counts healthy)
minus what every non-finished pod bound to it requests (ours and other tenants'); a node the agent
tainted for a fatal GPU fault holds nothing. Nodes are grouped by shape so a 100,000-node fleet stays
small yet exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from samizdat.core.placement.snapshot import NodeShape

GPU_RESOURCE = "nvidia.com/gpu"
PRODUCT_LABEL = "nvidia.com/gpu.product"
MEMORY_LABEL = "nvidia.com/gpu.memory"
COUNT_LABEL = "nvidia.com/gpu.count"
CC_MODE_LABEL = "nvidia.com/cc.mode"
FINISHED_POD_PHASES = frozenset({"Succeeded", "Failed"})

# What samizdat's agent observed through NVML (labels, so that pods can select on them too).
OBSERVED_PRODUCT_LABEL = "samizdat.io/gpu.product"
OBSERVED_MEMORY_LABEL = "samizdat.io/gpu.memory"
OBSERVED_COUNT_LABEL = "samizdat.io/gpu.count"
OBSERVED_HEALTHY_LABEL = "samizdat.io/gpu.healthy"  # GPUs without a fault that takes them out of service
OBSERVED_CC_LABEL = "samizdat.io/cc"  # one of `CC_STATES`
CC_READY = "ready"  # CC on, production environment, no devtools, GPUs accepting work: a TEE
# Every observed confidential-computing state: `ready` is the only one that makes a TEE.
CC_STATES = (CC_READY, "not-ready", "devtools", "simulated", "off", "unsupported", "unknown")
OBSERVED_AT_ANNOTATION = "samizdat.io/gpu-observed-at"
AGENT_VERSION_ANNOTATION = "samizdat.io/agent-version"
OBSERVATION_ANNOTATION = "samizdat.io/gpu-observation"  # the whole observation, JSON
HEALTH_CONDITION = "GPUHealthy"
FAULT_TAINT = "samizdat.io/gpu-fault"  # on a fatal fault, NoExecute: the member's pods move away


@dataclass(frozen=True, slots=True)
class GPUFacts:
    product: str
    memory_mib: int
    count: int
    tee: bool
    # Whether the agent observed confidential computing ready (not merely a label claiming it).
    tee_observed: bool = False
    # GPUs the agent counts healthy; None where no agent reports.
    healthy: int | None = None


def gpu_facts(labels: Mapping[str, str]) -> GPUFacts | None:
    """The node's GPUs, observed facts preferred over claimed ones; None for a node without (parsable)
    GPU labels."""
    product = labels.get(OBSERVED_PRODUCT_LABEL) or labels.get(PRODUCT_LABEL)
    if not product:
        return None
    try:
        memory = int(labels.get(OBSERVED_MEMORY_LABEL) or labels.get(MEMORY_LABEL, "0"))
        count = int(labels.get(OBSERVED_COUNT_LABEL) or labels.get(COUNT_LABEL, "0"))
        healthy = int(labels[OBSERVED_HEALTHY_LABEL]) if OBSERVED_HEALTHY_LABEL in labels else None
    except ValueError:
        return None
    cc = labels.get(OBSERVED_CC_LABEL)
    tee_observed = cc == CC_READY
    # GFD and NVIDIA's CC manager say "on" for confidential-computing mode ("devtools"/"off" otherwise);
    # where the agent could look (NVML answered), only what it saw counts.
    tee = tee_observed if cc not in (None, "unknown") else labels.get(CC_MODE_LABEL) == "on"
    return GPUFacts(product=product, memory_mib=memory, count=count, tee=tee, tee_observed=tee_observed,
                    healthy=healthy)


def gpu_faulted(node: Mapping[str, Any]) -> bool:
    """Whether the node's agent tainted it for a fatal GPU fault."""
    return any(taint.get("key") == FAULT_TAINT for taint in node.get("spec", {}).get("taints") or [])


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


def pod_ready(pod: Mapping[str, Any]) -> bool:
    """The pod's Ready condition is True: it passes its readiness checks (its model is loaded)."""
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_live(pod: Mapping[str, Any]) -> bool:
    """The pod is a replica that runs or will: neither finished nor being deleted."""
    return not pod.get("metadata", {}).get("deletionTimestamp") and (
        pod.get("status", {}).get("phase") not in FINISHED_POD_PHASES
    )


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


def _unschedulable(pod: Mapping[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conditions)


def replicas_lost_to_faults(pods: Iterable[Mapping[str, Any]], nodes: Mapping[str, Mapping[str, Any]]) -> int:
    """Replicas among `pods` (one copy's) that a member holds only on paper because its agents found GPUs
    fatally faulted: pods still bound to a node tainted for a fault, and, while the member has such a
    node, pods its scheduler finds no room for. The member's scheduler gets the first try: a replica it
    moves to a healthy node of the same member is not lost. With no faulted node this is zero; a pod
    that waits for room on a healthy member is a matter for start deadlines, not for the agent."""
    faulted = {name for name, node in nodes.items() if gpu_faulted(node)}
    if not faulted:
        return 0
    lost = 0
    for pod in pods:
        if pod.get("metadata", {}).get("deletionTimestamp") or pod.get("status", {}).get("phase") in FINISHED_POD_PHASES:
            continue  # going or gone: its replacement is what counts
        node_name = pod.get("spec", {}).get("nodeName")
        if node_name in faulted or (not node_name and _unschedulable(pod)):
            lost += 1
    return lost


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
    """Usable (Ready, neither cordoned nor tainted, no fatal GPU fault) GPU nodes with their free GPUs (no
    more than the agent counts healthy), sorted by name."""
    used = used_gpus(pods)
    found = []
    for node in nodes:
        labels = node.get("metadata", {}).get("labels", {})
        facts = gpu_facts(labels)
        if facts is None or not _node_usable(node) or gpu_faulted(node):
            continue
        name = node["metadata"]["name"]
        usable = allocatable_gpus(node)
        if facts.healthy is not None:
            usable = min(usable, facts.healthy)
        found.append(GPUNode(name=name, facts=facts, labels=labels, free_gpus=max(0, usable - used[name])))
    return tuple(sorted(found, key=lambda n: n.name))


def group_shapes(nodes: Iterable[GPUNode]) -> tuple[NodeShape, ...]:
    """Group nodes by (product, memory, TEE, observed TEE, free GPUs); sorted for stable output."""
    shapes: Counter[tuple[str, int, bool, bool, int]] = Counter(
        (n.facts.product, n.facts.memory_mib, n.facts.tee, n.facts.tee_observed, n.free_gpus) for n in nodes
    )
    return tuple(
        NodeShape(product=product, memory_mib=memory, tee=tee, free_gpus=free, nodes=count, tee_observed=observed)
        for (product, memory, tee, observed, free), count in sorted(shapes.items())
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
