"""What a member's owner sets up: GPU nodes, and a least-privilege identity registered in the hub.

The identity is exactly what a real user creates to register a cluster with samizdat: a ServiceAccount
in `samizdat-system`, a ClusterRole that may only read nodes, pods and namespaces, a Role that may manage
Deployments and Jobs in the workload namespace `samizdat-workloads`, and a long-lived token Secret. Its
kubeconfig goes into the hub as a Secret; `revoke-credentials` deletes the token Secret, so the revocation
is real (401), not simulated.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from e2e.sandbox.layout import GPUNodeGroup, MemberLayout

SYSTEM_NAMESPACE = "samizdat-system"
WORKLOAD_NAMESPACE = "samizdat-workloads"
IDENTITY = "samizdat"
TOKEN_SECRET = "samizdat-token"
COUNTRY_LABEL = "samizdat.io/country"


class Kubectl:
    """The real kubectl against one cluster; the sandbox drives clusters the way their admins would."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", "--request-timeout=20s", *args],
            input=stdin, capture_output=True, text=True, check=check, timeout=60,
        )

    def apply(self, objects: list[dict[str, Any]]) -> None:
        self.run("apply", "--server-side", "--force-conflicts", "--field-manager=sandbox", "-f", "-",
                 stdin=yaml.safe_dump_all(objects))

    def get_json(self, *args: str) -> Any:
        return json.loads(self.run("get", "-o", "json", *args).stdout)


def gpu_node(member: MemberLayout, group: GPUNodeGroup, ordinal: int) -> dict[str, Any]:
    """A kwok-managed node labelled as NVIDIA GPU Feature Discovery would label a real one."""
    gpu_type = group.product.split("-")[1].lower()
    labels = {
        "type": "kwok",
        "kubernetes.io/hostname": f"{member.name}-{gpu_type}-{ordinal}",
        "topology.kubernetes.io/region": member.region,
        COUNTRY_LABEL: member.country,
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": group.product,
        "nvidia.com/gpu.memory": str(group.memory_mib),
        "nvidia.com/gpu.count": str(group.gpus_per_node),
    }
    if group.confidential:
        labels["nvidia.com/cc.mode"] = "on"
    resources = {"cpu": "64", "memory": "512Gi", "pods": "110", "nvidia.com/gpu": str(group.gpus_per_node)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": labels["kubernetes.io/hostname"],
            "labels": labels,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
        "status": {"capacity": resources, "allocatable": resources},
    }


def gpu_nodes(member: MemberLayout) -> list[dict[str, Any]]:
    nodes = []
    for group in member.node_groups:
        start = sum(1 for node in nodes if node["metadata"]["labels"]["nvidia.com/gpu.product"] == group.product)
        nodes += [gpu_node(member, group, start + ordinal) for ordinal in range(group.count)]
    return nodes


def identity_objects() -> list[dict[str, Any]]:
    """The least-privilege RBAC of samizdat in a member (no cluster-admin, no Secrets, no writes outside
    its own namespace)."""
    subject = [{"kind": "ServiceAccount", "name": IDENTITY, "namespace": SYSTEM_NAMESPACE}]
    read = ["get", "list", "watch"]
    manage = [*read, "create", "update", "patch", "delete"]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": WORKLOAD_NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": IDENTITY, "namespace": SYSTEM_NAMESPACE}},
        {
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": TOKEN_SECRET, "namespace": SYSTEM_NAMESPACE,
                         "annotations": {"kubernetes.io/service-account.name": IDENTITY}},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "samizdat-member-reader"},
            "rules": [{"apiGroups": [""], "resources": ["nodes", "pods", "namespaces"], "verbs": read}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "samizdat-member-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "samizdat-member-reader"},
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "samizdat-workloads", "namespace": WORKLOAD_NAMESPACE},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"], "verbs": manage},
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": manage},
                {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": read},
                # fencing: stale replicas are stopped at once even when the member's controllers lag
                # and warm standbys: a pod's role label is patched in place (promotion, no restart)
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["patch", "delete", "deletecollection"]},
                # the Service per copy that selects serving pods only (see status.endpoints)
                {"apiGroups": [""], "resources": ["services"], "verbs": manage},
                {"apiGroups": [""], "resources": ["events"], "verbs": read},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "samizdat-workloads", "namespace": WORKLOAD_NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "samizdat-workloads"},
            "subjects": subject,
        },
    ]


def wait_for_token(kubectl: Kubectl, timeout: float = 60) -> str:
    """kube-controller-manager fills the token Secret asynchronously; wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        secret = kubectl.get_json("secret", TOKEN_SECRET, "-n", SYSTEM_NAMESPACE)
        token = secret.get("data", {}).get("token")
        if token:
            return base64.b64decode(token).decode()
        time.sleep(0.5)
    raise TimeoutError("the member's ServiceAccount token Secret was never filled")


def member_secret(name: str, kubeconfig: str) -> dict[str, Any]:
    """The hub Secret a user creates when registering a member (referenced by MemberCluster)."""
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": f"member-{name}", "namespace": SYSTEM_NAMESPACE,
                     "labels": {"samizdat.io/member": name}},
        "stringData": {"kubeconfig": kubeconfig},
    }


def member_cluster(member: MemberLayout) -> dict[str, Any]:
    """The MemberCluster object registering this member (applied once samizdat's CRDs are installed)."""
    return {
        "apiVersion": "samizdat.io/v1alpha1", "kind": "MemberCluster",
        "metadata": {"name": member.name},
        "spec": {
            "kubeconfigSecretRef": {"name": f"member-{member.name}", "namespace": SYSTEM_NAMESPACE,
                                    "key": "kubeconfig"},
            "jurisdiction": {"country": member.country, "region": member.region},
            "provider": member.provider,
            "tee": member.tee,
            "costPerGPUHour": member.cost_per_gpu_hour,
            "latencyMs": member.latency_ms,
            # loopback members: probe every second, Down after 2 s of failures
            "health": {"probeIntervalSeconds": 1, "probeTimeoutSeconds": 1, "suspectAfterFailures": 1,
                       "downAfterSeconds": 2},
        },
    }
