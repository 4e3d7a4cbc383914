"""What a member's owner sets up before samizdat comes: GPU nodes, and kubectl to act as the admin.

samizdat's identity in each member is not made here: the sandbox registers members as a user does, with
`samizdat join` (`Sandbox.register`), which creates it from `samizdat.core.membership`. `revoke-credentials`
deletes the credential Secrets its tokens are bound to, so the revocation is real (401), not simulated.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from e2e.sandbox.layout import GPUNodeGroup, MemberLayout
from samizdat.core import manifests, membership

SYSTEM_NAMESPACE = membership.IDENTITY_NAMESPACE  # in members: the identity's; in the hub: member Secrets'
WORKLOAD_NAMESPACE = manifests.WORKLOAD_NAMESPACE
IDENTITY = membership.IDENTITY
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
