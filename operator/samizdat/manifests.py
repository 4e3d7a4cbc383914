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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from samizdat import inventory
from samizdat.model import AIWorkload, Mode

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
    template = _pod_template(workload, {**MANAGED_BY, **selector})
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
