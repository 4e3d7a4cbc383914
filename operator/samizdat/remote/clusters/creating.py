"""Creating an object whose name the API server picks (`metadata.generateName`), which apply cannot do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from samizdat.remote.clusters import resources, writing
from samizdat.remote.clusters.client import ClusterClient


async def create(client: ClusterClient, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """POST `manifest` to its collection; returns the object as created (with its name and uid)."""
    resource = resources.of(manifest)
    metadata = manifest.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    if resource.namespaced and (not isinstance(namespace, str) or not namespace):
        raise ValueError(f"a {resource.kind} manifest needs metadata.namespace")
    path = resource.path(namespace=namespace if resource.namespaced else None)
    return (await writing.write(client, "POST", path, body=manifest)).json()
