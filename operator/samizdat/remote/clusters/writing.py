"""The one door through which anything is written to a member cluster (or samizdat's status to the hub).

Applying, scaling and deleting all end in `write`; no other code in samizdat sends a mutating request
to a member. That is the point of this module: with several operators in several hub sites, only the
elected leader may write, and every write must carry its epoch so that members can refuse a stale
leader's writes. Both happen here, in one place:

- A client with an `Authority` (the leader election) writes only while the authority grants a permit;
  otherwise `NotLeader` is raised and nothing is sent. The request's deadline is cut to what is left
  of the warrant, so a write cannot keep waiting past the moment another operator may take over.
- A client with a `FenceKeeper` (a member, with an election) first has the member's fence raised to
  the permit's epoch, and refuses to write where the fence does not work (`Unfenced`); a write the
  fence refuses is `StaleEpoch`, logged as a warning (a stale leader's refused writes can be counted).
- A body that describes an object (a server-side-apply manifest, a merge patch of its `spec`) gets
  the epoch as the annotation `samizdat.io/epoch`. Deletes carry no object: the member's fence judges
  them by the object as it stands, which the leader stamps before it deletes (see leadership.fence).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

from samizdat.remote.clusters import errors
from samizdat.remote.clusters.client import ClusterClient, Reply
from samizdat.core.leadership import EPOCH_ANNOTATION, Permit, fence

logger = logging.getLogger(__name__)

# Who we are in every member's managedFields and audit log.
FIELD_MANAGER = "samizdat"

WriteMethod = Literal["POST", "PUT", "PATCH", "DELETE"]


async def write(
    client: ClusterClient,
    method: WriteMethod,
    path: str,
    *,
    body: Mapping[str, Any],
    content_type: str = "application/json",
    params: Mapping[str, str] | None = None,
) -> Reply:
    """Send one mutating request with a JSON body (a manifest, a patch or DeleteOptions).

    Raises `NotLeader` without sending anything when the client's authority grants no permit.
    """
    deadline: float | None = None
    permit: Permit | None = None
    if client.authority is not None:
        permit = client.authority.permit()
        if permit is None:
            raise errors.NotLeader(client.member, f"not the leader: {method} {path} not sent")
        deadline = min(client.deadlines.request, permit.seconds_left)
        if client.fence is not None:
            await client.fence.before_write(client, permit, deadline)
        body = stamped(body, permit.epoch)
    query = dict(params or {})
    if method != "DELETE":  # deletes record no field manager
        query.setdefault("fieldManager", FIELD_MANAGER)
    payload = json.dumps(body, separators=(",", ":")).encode()
    try:
        return await client.request(method, path, params=query, body=payload, content_type=content_type,
                                    deadline=deadline)
    except errors.MemberForbidden as error:
        if fence.POLICY_NAME not in error.message:
            raise
        logger.warning("member %s: the fence refused %s %s from epoch %s: %s", client.member, method, path,
                       permit.epoch if permit is not None else 0, error.message)
        raise errors.StaleEpoch(client.member, error.message, status=error.status, reason=error.reason) from error


def stamped(body: Mapping[str, Any], epoch: int) -> Mapping[str, Any]:
    """`body` with the epoch annotation if it describes an object; the caller's body is never changed."""
    if "metadata" not in body and "spec" not in body:
        return body  # DeleteOptions, a status patch
    metadata = body.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    annotations = metadata.get("annotations")
    annotations = dict(annotations) if isinstance(annotations, Mapping) else {}
    annotations[EPOCH_ANNOTATION] = str(epoch)
    return {**body, "metadata": {**metadata, "annotations": annotations}}
