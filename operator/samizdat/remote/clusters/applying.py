"""Creating or updating member objects by server-side apply, as the field manager "samizdat".

Server-side apply makes a write idempotent and declarative: applying the same manifest twice changes
nothing, and the member's API server, not us, merges our fields with anyone else's. We apply with
`force=true` because samizdat is the authority over the objects it places: if a member's admin (or a
censor) changed a field we own, our next apply takes it back instead of failing on the conflict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from samizdat.remote.clusters import resources, writing
from samizdat.remote.clusters.client import ClusterClient

APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML, so the manifest is sent as JSON


async def apply(client: ClusterClient, manifest: Mapping[str, Any], *, force: bool = True) -> dict[str, Any]:
    """Create or update the object `manifest` describes; returns the object as the member now has it.

    Raises `ValueError` for a manifest of an unknown kind or without the name (and namespace) it needs,
    `Conflict` when `force=False` and another manager owns a field we set, and `MemberError`s as usual.
    """
    resource = resources.of(manifest)
    metadata = manifest.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not name:
        raise ValueError(f"a {resource.kind} manifest needs metadata.name")
    if resource.namespaced and (not isinstance(namespace, str) or not namespace):
        raise ValueError(f"{resource.kind} {name!r} needs metadata.namespace")
    path = resource.path(namespace=namespace if resource.namespaced else None, name=name)
    params = {"force": "true" if force else "false"}
    reply = await writing.write(client, "PATCH", path, body=manifest, content_type=APPLY_PATCH, params=params)
    return reply.json()
