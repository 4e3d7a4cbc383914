"""Deleting member objects, idempotently: an object that is already gone counts as deleted.

A delete carries no object, so it cannot carry the leader's epoch either. Each object the member's
fence judges (samizdat's Deployments and Jobs) is therefore first marked for retirement with a merge
patch, which does carry the epoch (see `writing`), and only then deleted: the fence lets samizdat delete
only objects marked by a leader of at least its fence epoch (see `leadership.fence`), and a stale
leader's mark is refused like any of its writes. Nothing else needs the mark (Secrets, RBAC, the hub's
objects, which `join` and `unjoin` delete as the user).
"""

from __future__ import annotations

from samizdat.remote.clusters import errors, resources, writing
from samizdat.remote.clusters.client import ClusterClient
from samizdat.core.leadership import RETIRE_ANNOTATION, fence

# Background: the API server answers at once and the member's garbage collector removes dependents
# (a Deployment's ReplicaSets and Pods) afterwards, so a delete never waits on a slow member's GC.
DELETE_OPTIONS = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}


async def delete(
    client: ClusterClient, resource: resources.Resource, name: str, *, namespace: str | None = None
) -> bool:
    """Mark one object for retirement (if fenced) and delete it; True if this call deleted it, False if it (or its
    namespace) was already gone."""
    path = resource.path(namespace=namespace, name=name)
    try:
        if (resource.group, resource.plural) in fence.FENCED:
            await writing.write(client, "PATCH", path, content_type="application/merge-patch+json",
                                body={"metadata": {"annotations": {RETIRE_ANNOTATION: "true"}}})
        await writing.write(client, "DELETE", path, body=DELETE_OPTIONS)
    except errors.NotFound:
        return False
    return True


async def delete_all(client: ClusterClient, resource: resources.Resource, *, namespace: str, label_selector: str) -> None:
    """Delete every object of `resource` matching `label_selector` in `namespace` (one request)."""
    path = resource.path(namespace=namespace)
    await writing.write(client, "DELETE", path, body=DELETE_OPTIONS, params={"labelSelector": label_selector})
