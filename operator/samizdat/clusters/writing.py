"""The one door through which anything is written to a member cluster.

Applying, scaling and deleting all end in `write`; no other code in samizdat sends a mutating request
to a member. That is the point of this module: when several hubs share the members, every write must
carry the writing hub's epoch so that members can refuse a stale hub's writes, and that stamp will be
added here, in one place, rather than hunted down across call sites.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from samizdat.clusters.client import MemberClient, Reply

# Who we are in every member's managedFields and audit log.
FIELD_MANAGER = "samizdat"

WriteMethod = Literal["POST", "PUT", "PATCH", "DELETE"]


async def write(
    client: MemberClient,
    method: WriteMethod,
    path: str,
    *,
    body: Mapping[str, Any],
    content_type: str = "application/json",
    params: Mapping[str, str] | None = None,
) -> Reply:
    """Send one mutating request with a JSON body (a manifest, a patch or DeleteOptions)."""
    # EPOCH: this is where the hub's epoch will be stamped onto every write — an annotation in the
    # object's metadata for applies (copy `body` first: it belongs to the caller), and for patches of
    # subresources or deletes, which carry no object metadata, a precondition the member can check.
    # Keep every write to members flowing through this function so that stays a one-place change.
    query = dict(params or {})
    if method != "DELETE":  # deletes record no field manager
        query.setdefault("fieldManager", FIELD_MANAGER)
    payload = json.dumps(body, separators=(",", ":")).encode()
    return await client.request(method, path, params=query, body=payload, content_type=content_type)
