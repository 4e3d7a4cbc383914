"""Writing an observation onto the agent's own Node: the agent's only Kubernetes I/O.

Two requests per change. Labels, annotations and the fault taint go in one JSON merge patch of the
Node that carries the resourceVersion just read: `spec.taints` is a list a merge patch replaces whole,
so the taints others set (the node lifecycle controller's, an admin's) are kept from that read, and a
concurrent change makes the patch fail with a conflict and be retried on the next pass rather than
lost. The condition goes in a strategic merge patch of `nodes/<name>/status`, which merges conditions
by type and leaves the kubelet's own alone.

These writes do not go through `clusters.writing`: that is the hub's door into members, where the hub's
epoch will be stamped; the agent is the node's own reporter, inside the member, with no epoch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from samizdat.core import inventory
from samizdat.agent.observation import Publication
from samizdat.remote.clusters import fetching, resources
from samizdat.remote.clusters.client import ClusterClient

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
FIELD_MANAGER = "samizdat-agent"


def taints(current: list[Mapping[str, Any]], ours: Mapping[str, str] | None) -> list[Mapping[str, Any]]:
    """The node's taints with samizdat's fault taint set to `ours` (or removed), others untouched."""
    kept = [taint for taint in current if taint.get("key") != inventory.FAULT_TAINT]
    return [*kept, ours] if ours is not None else kept


def condition(wanted: Mapping[str, str], current: list[Mapping[str, Any]], now: datetime) -> dict[str, str]:
    """`wanted` with its heartbeat now, and its transition time kept while its status holds."""
    stamp = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    before = next((c for c in current if c.get("type") == wanted["type"]), None)
    unchanged = before is not None and before.get("status") == wanted["status"] and before.get("lastTransitionTime")
    return {**wanted, "lastHeartbeatTime": stamp,
            "lastTransitionTime": str(before["lastTransitionTime"]) if unchanged and before else stamp}


async def publish(client: ClusterClient, node_name: str, publication: Publication, now: datetime) -> None:
    """Write `publication` on the node; raises `MemberError` (e.g. `Conflict`) for the caller to retry."""
    node = await fetching.get(client, resources.NODES, node_name)
    metadata = node.get("metadata", {})
    patch = {
        "metadata": {"resourceVersion": metadata.get("resourceVersion"), "labels": dict(publication.labels),
                     "annotations": dict(publication.annotations)},
        "spec": {"taints": taints(node.get("spec", {}).get("taints") or [], publication.taint)},
    }
    params = {"fieldManager": FIELD_MANAGER}
    path = resources.NODES.path(name=node_name)
    await client.request("PATCH", path, params=params, body=_json(patch), content_type=MERGE_PATCH)
    status = {"status": {"conditions": [
        condition(publication.condition, node.get("status", {}).get("conditions") or [], now)
    ]}}
    await client.request("PATCH", resources.NODES.path(name=node_name, subresource="status"), params=params,
                         body=_json(status), content_type=STRATEGIC_MERGE_PATCH)


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
