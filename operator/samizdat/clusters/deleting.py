"""Deleting member objects, idempotently: an object that is already gone counts as deleted.

A delete carries no object, so it cannot carry the leader's epoch either. Each object is therefore
first marked for retirement with a merge patch, which does carry the epoch (see `writing`), and only
then deleted: a member's fence lets samizdat delete only objects marked by a leader of at least its
fence epoch (see `leadership.fence`), and a stale leader's mark is refused like any of its writes.
"""

from __future__ import annotations

from samizdat.clusters import errors, resources, writing
from samizdat.clusters.client import MemberClient
from samizdat.leadership import RETIRE_ANNOTATION

# Background: the API server answers at once and the member's garbage collector removes dependents
# (a Deployment's ReplicaSets and Pods) afterwards, so a delete never waits on a slow member's GC.
DELETE_OPTIONS = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}


async def delete(
    client: MemberClient, resource: resources.Resource, name: str, *, namespace: str | None = None
) -> bool:
    """Mark one object for retirement and delete it; True if this call deleted it, False if it (or its
    namespace) was already gone."""
    path = resource.path(namespace=namespace, name=name)
    try:
        await writing.write(client, "PATCH", path, body={"metadata": {"annotations": {RETIRE_ANNOTATION: "true"}}},
                            content_type="application/merge-patch+json")
        await writing.write(client, "DELETE", path, body=DELETE_OPTIONS)
    except errors.NotFound:
        return False
    return True


async def delete_all(client: MemberClient, resource: resources.Resource, *, namespace: str, label_selector: str) -> None:
    """Delete every object of `resource` matching `label_selector` in `namespace` (one request)."""
    path = resource.path(namespace=namespace)
    await writing.write(client, "DELETE", path, body=DELETE_OPTIONS, params={"labelSelector": label_selector})
