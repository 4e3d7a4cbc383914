"""samizdat's own calls to the hub: reading (and renewing) member Secrets and writing the status of its resources.

kopf watches the hub; status is written here, as a merge patch of the status subresource, because
daemons write it continuously rather than once per handler run; Events are recorded here too, by
`clusters.recording`, which counts a repeat on the Event that said it first (kopf would post another).
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Mapping
from typing import Any

from samizdat.core.report.events import EventType
from samizdat.remote.clusters import applying, deleting, errors, fetching, kubeconfig, recording, resources, writing
from samizdat.remote.clusters.client import ClusterClient
from samizdat.core.model import GROUP, VERSION

HUB = "hub"
REPORTING_COMPONENT = "samizdat"  # who Events say they are from (`From:` in `kubectl describe`)


def connect(server: str | None = None) -> ClusterClient:
    """The hub from inside a pod (its ServiceAccount) or, outside one, as kubectl would find it; with
    `server` (`samizdat run --hub-server`), the pod's ServiceAccount at that API server, and only there."""
    if server is not None:
        return ClusterClient(HUB, kubeconfig.from_service_account(server=server))
    try:
        credentials = kubeconfig.from_service_account()
    except kubeconfig.KubeconfigError:
        credentials = kubeconfig.from_environment()
    return ClusterClient(HUB, credentials)


async def read_kubeconfig(hub: ClusterClient, namespace: str, name: str, key: str) -> str:
    return await fetching.read_secret(hub, namespace=namespace, name=name, key=key)


async def read_versioned_kubeconfig(hub: ClusterClient, namespace: str, name: str, key: str) -> tuple[str, str]:
    """A member's kubeconfig and the resourceVersion of the Secret it was read from (to write it back)."""
    secret = await fetching.get(hub, resources.SECRETS, name, namespace=namespace)
    return fetching.secret_value(hub, secret, key), str(secret["metadata"]["resourceVersion"])


async def write_kubeconfig(hub: ClusterClient, namespace: str, name: str, key: str, text: str, *,
                           version: str) -> bool:
    """Replace one member's kubeconfig in its Secret (a renewed credential), leaving the rest of it, but
    only while the Secret is still at `version`, the one the renewal read.

    False when it is not: a `join` rotated the credential meanwhile, and its kubeconfig must stand
    (overwriting it would hand the operator a token of the credential the join is retiring). The
    resourceVersion in the patch makes the API server refuse it (Conflict) instead of losing that update.
    """
    path = resources.SECRETS.path(namespace=namespace, name=name)
    body = {"metadata": {"resourceVersion": version}, "data": {key: base64.b64encode(text.encode()).decode()}}
    try:
        await writing.write(hub, "PATCH", path, body=body, content_type="application/merge-patch+json")
    except errors.Conflict:
        return False
    return True


async def still_there(hub: ClusterClient, body: Mapping[str, Any]) -> bool:
    """Whether the hub still holds this very object (the same uid); True when the hub cannot say.
    A list by name, not a get: the chart grants list and watch, as kopf needs, and no more."""
    metadata = body["metadata"]
    try:
        found = await fetching.list_objects(hub, resources.of(body), namespace=metadata.get("namespace"),
                                            field_selector=f"metadata.name={metadata['name']}")
    except errors.MemberError:
        return True
    return any(item.get("metadata", {}).get("uid") == metadata["uid"] for item in found.items)


async def patch_status(hub: ClusterClient, plural: str, name: str, namespace: str | None, status: dict[str, Any]) -> None:
    scope = f"/namespaces/{namespace}" if namespace else ""
    path = f"/apis/{GROUP}/{VERSION}{scope}/{plural}/{name}/status"
    await writing.write(hub, "PATCH", path, body={"status": status}, content_type="application/merge-patch+json")


def recorder(hub: ClusterClient) -> recording.Recorder:
    """samizdat's Events, from this replica (a pod's hostname is its name)."""
    return recording.Recorder(hub, REPORTING_COMPONENT, socket.gethostname())


def say(recorder: recording.Recorder, body: Mapping[str, Any], type_: EventType, reason: str,
        message: str) -> None:
    """An Event about `body`, a hub object: one per thing said, its count growing when said again."""
    recorder.say(recording.Regarding.of(body), type_, reason, message)


async def publish_dns(hub: ClusterClient, manifest: Mapping[str, Any]) -> tuple[int, int | None]:
    """Create or update a workload's DNSEndpoint (server-side apply); returns its metadata.generation
    and the status.observedGeneration external-dns last applied (None: not yet)."""
    written = await applying.apply(hub, manifest)
    observed = written.get("status", {}).get("observedGeneration")
    return int(written["metadata"].get("generation") or 0), int(observed) if observed is not None else None


async def retract_dns(hub: ClusterClient, namespace: str, name: str) -> None:
    """Delete a workload's DNSEndpoint; one already gone (or never made) is fine."""
    await deleting.delete(hub, resources.DNSENDPOINTS, name, namespace=namespace)
