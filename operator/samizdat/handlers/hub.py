"""samizdat's own calls to the hub: reading (and renewing) member Secrets and writing the status of its resources.

kopf watches the hub and posts Events; status is written here, as a merge patch of the status
subresource, because daemons write it continuously rather than once per handler run.
"""

from __future__ import annotations

import base64
from typing import Any

from samizdat.clusters import fetching, kubeconfig, resources, writing
from samizdat.clusters.client import MemberClient
from samizdat.model import GROUP, VERSION

HUB = "hub"


def connect() -> MemberClient:
    """The hub from inside a pod (its ServiceAccount) or, outside one, as kubectl would find it."""
    try:
        credentials = kubeconfig.from_service_account()
    except kubeconfig.KubeconfigError:
        credentials = kubeconfig.from_environment()
    return MemberClient(HUB, credentials)


async def read_kubeconfig(hub: MemberClient, namespace: str, name: str, key: str) -> str:
    return await fetching.read_secret(hub, namespace=namespace, name=name, key=key)


async def write_kubeconfig(hub: MemberClient, namespace: str, name: str, key: str, text: str) -> None:
    """Replace one member's kubeconfig in its Secret (a renewed credential), leaving the rest of it."""
    path = resources.SECRETS.path(namespace=namespace, name=name)
    body = {"data": {key: base64.b64encode(text.encode()).decode()}}
    await writing.write(hub, "PATCH", path, body=body, content_type="application/merge-patch+json")


async def patch_status(hub: MemberClient, plural: str, name: str, namespace: str | None, status: dict[str, Any]) -> None:
    scope = f"/namespaces/{namespace}" if namespace else ""
    path = f"/apis/{GROUP}/{VERSION}{scope}/{plural}/{name}/status"
    await writing.write(hub, "PATCH", path, body={"status": status}, content_type="application/merge-patch+json")
