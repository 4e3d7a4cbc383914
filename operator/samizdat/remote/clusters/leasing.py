"""Reading and writing the hub's election Lease, by compare-and-swap on its resourceVersion.

These are the only writes in samizdat that do not pass through `writing.write`, on purpose: the Lease is
how an operator comes to hold a warrant at all, so writing it cannot require one. A create that finds
the Lease already there, and a replace at a resourceVersion that is no longer current (or of a Lease
deleted meanwhile), both mean that someone else wrote first: `Conflict`.
"""

from __future__ import annotations

import json

from samizdat.remote.clusters import errors, resources
from samizdat.remote.clusters.client import ClusterClient
from samizdat.core.leadership import MalformedLease, StoredLease, Write, build_lease, parse_lease


async def read_lease(client: ClusterClient, *, namespace: str, name: str, deadline: float) -> StoredLease | None:
    """The Lease as the hub has it now, or None if there is none."""
    try:
        reply = await client.request("GET", resources.LEASES.path(namespace=namespace, name=name), deadline=deadline)
    except errors.NotFound:
        return None
    return _parsed(client, reply.json())


async def write_lease(client: ClusterClient, write: Write, *, namespace: str, name: str, deadline: float) -> StoredLease:
    """Create or replace the Lease as `write` says; the stored Lease, with its new resourceVersion."""
    lease = build_lease(name, namespace, write.record, write.resource_version)
    body = json.dumps(lease, separators=(",", ":")).encode()
    if write.resource_version is None:
        method, path = "POST", resources.LEASES.path(namespace=namespace)
    else:
        method, path = "PUT", resources.LEASES.path(namespace=namespace, name=name)
    try:
        reply = await client.request(method, path, body=body, content_type="application/json", deadline=deadline)
    except errors.NotFound as error:
        raise errors.Conflict(client.member, f"Lease {namespace}/{name} was deleted meanwhile", status=409) from error
    return _parsed(client, reply.json())


def _parsed(client: ClusterClient, obj: dict[str, object]) -> StoredLease:
    try:
        return parse_lease(obj)
    except MalformedLease as error:
        raise errors.MemberAPIError(client.member, f"not an election Lease: {error}") from None
