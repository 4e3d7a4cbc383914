"""Deleting member objects, idempotently: an object that is already gone counts as deleted."""

from __future__ import annotations

from samizdat.clusters import errors, resources, writing
from samizdat.clusters.client import MemberClient

# Background: the API server answers at once and the member's garbage collector removes dependents
# (a Deployment's ReplicaSets and Pods) afterwards, so a delete never waits on a slow member's GC.
DELETE_OPTIONS = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}


async def delete(
    client: MemberClient, resource: resources.Resource, name: str, *, namespace: str | None = None
) -> bool:
    """Delete one object; True if this call deleted it, False if it (or its namespace) was already gone."""
    try:
        await writing.write(client, "DELETE", resource.path(namespace=namespace, name=name), body=DELETE_OPTIONS)
    except errors.NotFound:
        return False
    return True


async def delete_all(client: MemberClient, resource: resources.Resource, *, namespace: str, label_selector: str) -> None:
    """Delete every object of `resource` matching `label_selector` in `namespace` (one request)."""
    path = resource.path(namespace=namespace)
    await writing.write(client, "DELETE", path, body=DELETE_OPTIONS, params={"labelSelector": label_selector})
