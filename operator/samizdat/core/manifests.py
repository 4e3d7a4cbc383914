"""Pure builders of what samizdat writes into member clusters: one Deployment (Serve) or Job (Train).

Like dask-kubernetes' `build_*_spec`, these take values and return dicts; they never talk to an API.
What differs between the two kinds of copy (how one is built, where its replica count lives, what
counts as ready, how it is scaled to zero) is one row of `COPY_KINDS`, read by the builder here and by
the member watcher that tells our copies' state and tampering apart.
Every copy carries labels and annotations tying it to its AIWorkload in the hub (uid, generation, model
digest) and the values samizdat asked for (replicas, images), so that the member watcher can tell our own
changes from a hostile admin's, and an orphan from a live copy.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from samizdat.core import inventory
from samizdat.core.model import AIWorkload, Mode
from samizdat.core.model.ai_workload import NODE_PORTS

WORKLOAD_NAMESPACE: Final = "samizdat-workloads"
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "samizdat"}
UID_LABEL: Final = "samizdat.io/workload-uid"
NAME_LABEL: Final = "samizdat.io/workload-name"
NAMESPACE_LABEL: Final = "samizdat.io/workload-namespace"
GENERATION_ANNOTATION: Final = "samizdat.io/generation"
DIGEST_ANNOTATION: Final = "samizdat.io/model-digest"
REPLICAS_ANNOTATION: Final = "samizdat.io/desired-replicas"
IMAGES_ANNOTATION: Final = "samizdat.io/images"
DIGEST_ENV: Final = "SAMIZDAT_MODEL_DIGEST"
# A served replica's role, on its pod only: the copy's template starts every pod as a standby, and
# samizdat relabels pods in place (a metadata patch; the pod keeps running, its UID unchanged). The
# role is in neither the Deployment's selector nor its ReplicaSet's, so a relabelled pod stays owned.
ROLE_LABEL: Final = "samizdat.io/role"
SERVING: Final = "serving"
STANDBY: Final = "standby"
DELETION_COST_ANNOTATION: Final = "controller.kubernetes.io/pod-deletion-cost"


@dataclass(frozen=True, slots=True)
class CopyKind:
    """One kind of member copy: what it is in the member's API, and where its replica counts live."""

    mode: Mode
    api_version: str
    kind: str
    replicas_field: str  # in `spec`: what samizdat sets, scales to zero, and a censor may change
    ready_fields: tuple[str, ...]  # in `status`: summed into the replicas that count as ready
    scale_subresource: bool  # scaled through `/scale` (a Deployment), else by a patch of `replicas_field`

    def desired(self, obj: Mapping[str, Any]) -> int:
        return int(obj.get("spec", {}).get(self.replicas_field, 0))

    def ready(self, obj: Mapping[str, Any]) -> int:
        status = obj.get("status", {})
        return sum(int(status.get(name, 0) or 0) for name in self.ready_fields)

    def scaled_to_zero(self) -> dict[str, Any]:
        """The merge patch that stops every pod of the copy, for `/scale` or the object itself."""
        return {"spec": {self.replicas_field: 0}}


COPY_KINDS: Final = (
    CopyKind(Mode.SERVE, "apps/v1", "Deployment", "replicas", ("readyReplicas",), scale_subresource=True),
    # A training replica that finished its work is as good as a ready one: it needs nothing more.
    CopyKind(Mode.TRAIN, "batch/v1", "Job", "parallelism", ("ready", "succeeded"), scale_subresource=False),
)
_BY_MODE: Final = {kind.mode: kind for kind in COPY_KINDS}
_BY_KIND: Final = {kind.kind: kind for kind in COPY_KINDS}


def copy_kind(kind: str) -> CopyKind:
    """The row for a copy's `kind` ("Deployment" or "Job"); KeyError for anything else."""
    return _BY_KIND[kind]


def copy_name(workload: AIWorkload) -> str:
    """Unique per hub object (uid), readable, and short enough for derived pod names and label values."""
    uid = workload.metadata.uid or hashlib.sha256(f"{workload.metadata.namespace}/{workload.metadata.name}".encode()).hexdigest()
    return f"{workload.metadata.name[:40].rstrip('-')}-{uid.replace('-', '')[:8]}"


def _gpu_affinity(workload: AIWorkload) -> dict[str, Any] | None:
    requirements: list[dict[str, Any]] = []
    gpu = workload.spec.gpu
    if gpu.products:
        requirements.append({"key": inventory.PRODUCT_LABEL, "operator": "In", "values": sorted(gpu.products)})
    if gpu.min_memory_mib:
        requirements.append({"key": inventory.MEMORY_LABEL, "operator": "Gt", "values": [str(gpu.min_memory_mib - 1)]})
    # TEE nodes exactly as the inventory counts them (terms are ORed): observed ready by samizdat's
    # agent, or, where no agent reports, labelled as in confidential-computing mode.
    observed: dict[str, Any] = {"key": inventory.OBSERVED_CC_LABEL, "operator": "In", "values": [inventory.CC_READY]}
    placement = workload.spec.placement
    if placement.require_observed_tee:
        terms = [[*requirements, observed]]
    elif placement.require_tee:
        claimed: list[dict[str, Any]] = [{"key": inventory.OBSERVED_CC_LABEL, "operator": "DoesNotExist"},
                   {"key": inventory.CC_MODE_LABEL, "operator": "In", "values": ["on"]}]
        terms = [[*requirements, observed], [*requirements, *claimed]]
    elif requirements:
        terms = [requirements]
    else:
        return None
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": term} for term in terms]
    }}}


def _pod_template(workload: AIWorkload, labels: Mapping[str, str]) -> dict[str, Any]:
    template = copy.deepcopy(workload.spec.template)
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**metadata.get("labels", {}), **labels}
    spec = template.setdefault("spec", {})
    containers = spec.get("containers") or []
    if containers:
        # The GPUs of a replica go to its first container, the model server; sidecars get none.
        resources = containers[0].setdefault("resources", {})
        resources.setdefault("limits", {})[inventory.GPU_RESOURCE] = str(workload.spec.gpu.count)
        if workload.spec.model is not None:
            env = [e for e in containers[0].get("env", []) if e.get("name") != DIGEST_ENV]
            containers[0]["env"] = [*env, {"name": DIGEST_ENV, "value": workload.spec.model.digest}]
    affinity = _gpu_affinity(workload)
    if affinity is not None:
        spec["affinity"] = {**spec.get("affinity", {}), **affinity}
    if workload.spec.mode is Mode.TRAIN:
        spec.setdefault("restartPolicy", "OnFailure")
    return template


def container_images(template: Mapping[str, Any]) -> dict[str, str]:
    containers = template.get("spec", {}).get("containers") or []
    return {str(c.get("name")): str(c.get("image")) for c in containers}


def build_copy(workload: AIWorkload, replicas: int) -> dict[str, Any]:
    """The member copy of `workload` running `replicas` replicas: a Deployment, or a Job for Train."""
    uid = workload.metadata.uid or ""
    selector = {UID_LABEL: uid}
    labels = {**MANAGED_BY, UID_LABEL: uid, NAME_LABEL: workload.metadata.name,
              NAMESPACE_LABEL: workload.metadata.namespace or ""}
    roles = {ROLE_LABEL: STANDBY} if workload.spec.mode is Mode.SERVE else {}
    template = _pod_template(workload, {**MANAGED_BY, **selector, **roles})
    annotations = {
        GENERATION_ANNOTATION: str(workload.metadata.generation or 0),
        REPLICAS_ANNOTATION: str(replicas),
        IMAGES_ANNOTATION: json.dumps(container_images(template), sort_keys=True),
    }
    if workload.spec.model is not None:
        annotations[DIGEST_ANNOTATION] = workload.spec.model.digest
    metadata = {"name": copy_name(workload), "namespace": WORKLOAD_NAMESPACE, "labels": labels,
                "annotations": annotations}
    kind = _BY_MODE[workload.spec.mode]
    header = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata}
    if workload.spec.mode is Mode.TRAIN:
        # Indexed, so that `completions` may change with `parallelism` when the member's share of the
        # replicas does (elastic Indexed Jobs, GA since Kubernetes 1.31); a plain Job would refuse it.
        # Each pod also gets its rank as JOB_COMPLETION_INDEX.
        return {**header, "spec": {
            "completionMode": "Indexed", kind.replicas_field: replicas, "completions": replicas, "backoffLimit": 6,
            "template": template,
        }}
    return {**header, "spec": {
        kind.replicas_field: replicas, "selector": {"matchLabels": selector}, "template": template,
    }}


def replica_pod_spec(workload: AIWorkload) -> dict[str, Any]:
    """The pod spec every replica of the workload runs (GPUs on its first container, node affinity):
    what the capacity ledger charges a promised replica by, before its copy exists."""
    spec: dict[str, Any] = _pod_template(workload, {})["spec"]
    return spec


def build_service(workload: AIWorkload, owner: Mapping[str, Any]) -> dict[str, Any] | None:
    """The member Service clients reach the serving replicas through: it selects the workload's pods
    labelled serving, never a standby. A NodePort, so a client outside the member can reach it at the
    member's address; owned by the member's copy (`owner`, as the member reports it, uid included), so
    the member's garbage collector removes it with the copy. None for Train, or a template declaring
    no container ports (nothing to reach)."""
    ports = [
        {"name": str(port.get("name") or f"port-{port['containerPort']}"), "port": int(port["containerPort"]),
         "targetPort": int(port["containerPort"]), "protocol": str(port.get("protocol") or "TCP")}
        for container in workload.spec.template.get("spec", {}).get("containers") or []
        for port in container.get("ports") or []
        if "containerPort" in port
    ]
    if workload.spec.mode is not Mode.SERVE or not ports:
        return None
    if workload.spec.traffic.dns is not None:
        ports[0]["nodePort"] = pinned_node_port(workload)
    metadata = owner["metadata"]
    reference = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": metadata["name"],
                 "uid": metadata["uid"]}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": metadata["name"], "namespace": WORKLOAD_NAMESPACE, "labels": dict(metadata.get("labels", {})),
        "ownerReferences": [reference],
    }, "spec": {
        "type": "NodePort", "selector": {UID_LABEL: workload.metadata.uid or "", ROLE_LABEL: SERVING},
        "ports": ports,
    }}


def pinned_node_port(workload: AIWorkload) -> int:
    """The node port of a workload with a DNS name, the same on every member so that name:port never
    changes: spec.traffic.dns.nodePort, else one derived from the workload's namespace and name (known
    before it is applied, stable across a re-create)."""
    dns = workload.spec.traffic.dns
    if dns is not None and dns.node_port is not None:
        return dns.node_port
    key = f"{workload.metadata.namespace}/{workload.metadata.name}".encode()
    return NODE_PORTS.start + int.from_bytes(hashlib.sha256(key).digest()[:4], "big") % len(NODE_PORTS)


def service_current(service: Mapping[str, Any], workload: AIWorkload) -> bool:
    """Whether a member's serving Service already answers where the workload wants it: on the pinned
    node port when it has a DNS name (a name added later moves the port), anywhere otherwise."""
    if workload.spec.traffic.dns is None:
        return True
    ports = service.get("spec", {}).get("ports") or [{}]
    return bool(ports[0].get("nodePort") == pinned_node_port(workload))


def role_patch(role: str) -> dict[str, Any]:
    """The merge patch that gives one pod its role: metadata only, so the pod is not restarted. When
    its member's share shrinks, the ReplicaSet removes the pods of lowest deletion cost first: standbys."""
    cost = "1" if role == SERVING else "0"
    return {"metadata": {"labels": {ROLE_LABEL: role}, "annotations": {DELETION_COST_ANNOTATION: cost}}}


def relabels(pods: Iterable[Mapping[str, Any]], serving: int) -> list[tuple[str, str]]:
    """(pod name, role) writes that leave exactly `serving` of a member's live pods serving (fewer if
    it has fewer) and the rest standby. Ready pods serve first (a serving pod that stopped being ready
    gives way to a ready standby); among equally ready ones those already serving keep serving, then
    the oldest. Promotions come before demotions, so serving capacity never dips while they land."""
    live = sorted(pods, key=_promotion_order)
    names = {pod["metadata"]["name"] for pod in live[:serving]}
    promote = [(pod["metadata"]["name"], SERVING) for pod in live if pod["metadata"]["name"] in names
               and _role(pod) != SERVING]
    demote = [(pod["metadata"]["name"], STANDBY) for pod in live if pod["metadata"]["name"] not in names
              and _role(pod) != STANDBY]
    return promote + demote


def is_serving(pod: Mapping[str, Any]) -> bool:
    return _role(pod) == SERVING


def _role(pod: Mapping[str, Any]) -> str | None:
    role = pod.get("metadata", {}).get("labels", {}).get(ROLE_LABEL)
    return str(role) if role is not None else None


def _promotion_order(pod: Mapping[str, Any]) -> tuple[bool, bool, str, str]:
    metadata = pod.get("metadata", {})
    return (not inventory.pod_ready(pod), _role(pod) != SERVING, str(metadata.get("creationTimestamp", "")),
            str(metadata.get("name")))
