"""Minting a ServiceAccount token through the TokenRequest API: how credentials are issued and renewed.

A TokenRequest creates nothing that persists: the API server signs a token of the lifetime asked for
(bound, if asked, to an object whose deletion revokes it) and returns it once. It is still a write in
the API's terms (a `create` of the `token` subresource), so it goes through the one write path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from samizdat.remote.clusters import errors, resources, writing
from samizdat.remote.clusters.client import ClusterClient


@dataclass(frozen=True, slots=True)
class Minted:
    """A fresh token and when the API server says it expires (RFC 3339, as it wrote it)."""

    token: str = field(repr=False)
    expires: str


async def mint(
    client: ClusterClient, *, namespace: str, service_account: str, request: Mapping[str, Any]
) -> Minted:
    """A token for `service_account` as `request` (a TokenRequest) asks; `MemberForbidden` if not ours."""
    path = resources.SERVICEACCOUNTS.path(namespace=namespace, name=service_account, subresource="token")
    status = (await writing.write(client, "POST", path, body=request)).json().get("status")
    if not isinstance(status, dict):
        status = {}
    token = status.get("token")
    if not isinstance(token, str) or not token:
        raise errors.MemberAPIError(client.member, "the TokenRequest returned no token")
    return Minted(token, str(status.get("expirationTimestamp") or ""))
