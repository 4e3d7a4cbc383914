"""Changing the replica count of a member's Deployment with a merge patch of `spec.replicas`.

Scaling is how a partitioned member that comes back is fenced (scaled to 0 before its old replicas
count). It is a merge patch rather than a server-side apply of a partial manifest because, with apply,
every field we stop sending is a field we remove: a partial apply by our field manager would strip the
Deployment of its template. A merge patch touches `spec.replicas` and nothing else. It patches the
Deployment itself, not its `/scale` subresource, because a Scale object carries no annotations: the
leader's epoch (see `writing`) rides on the Deployment, where the member's fence can check it. The
same patch sets the copy's desired-replicas annotation: whoever watches the copy (a standby operator, or
this one after a restart, with no memory of the write) then sees spec and annotations agree, and does
not read samizdat's own scale-down as a censor's.
"""

from __future__ import annotations

from samizdat.core import manifests
from samizdat.remote.clusters import errors, resources, writing
from samizdat.remote.clusters.client import ClusterClient

MERGE_PATCH = "application/merge-patch+json"


async def scale(
    client: ClusterClient, resource: resources.Resource, name: str, *, namespace: str, replicas: int
) -> int:
    """Set `spec.replicas`; returns the replica count the member now records. `NotFound` if absent."""
    if not resource.scalable:
        raise ValueError(f"{resource.plural} have no scale subresource")
    if replicas < 0:
        raise ValueError(f"replicas must not be negative, got {replicas}")
    path = resource.path(namespace=namespace, name=name)
    reply = await writing.write(client, "PATCH", path, body={
        "metadata": {"annotations": {manifests.REPLICAS_ANNOTATION: str(replicas)}},
        "spec": {"replicas": replicas},
    }, content_type=MERGE_PATCH)
    spec = reply.json().get("spec") or {}
    # Go omits a zero `replicas` from what it returns: absent means 0.
    recorded = spec.get("replicas", 0) if isinstance(spec, dict) else None
    if not isinstance(recorded, int):
        raise errors.MemberMalformed(client.member, f"scale of {resource.plural}/{name} returned no replica count")
    return recorded
