"""Asking a cluster whether we may do something, before doing it (SelfSubjectAccessReview).

`samizdat join` checks every right it needs in the member and in the hub first, so that a user who
lacks one is told which, and nothing is left half-made. A review is a question, not a write: nothing
persists, so it does not go through `writing`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from samizdat.remote.clusters import resources
from samizdat.remote.clusters.client import ClusterClient

REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@dataclass(frozen=True, slots=True)
class Access:
    """One right: a verb on a resource (or one of its subresources), maybe in a namespace, maybe by name."""

    verb: str
    resource: resources.Resource
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None

    def __str__(self) -> str:
        what = self.resource.plural + (f"/{self.subresource}" if self.subresource else "")
        if self.name:
            what += f" {self.name!r}"
        return f"{self.verb} {what}" + (f" in namespace {self.namespace}" if self.namespace else "")


async def allowed(client: ClusterClient, access: Access) -> bool:
    """Whether the identity of `client` holds `access` (as the authorizer answers now)."""
    attributes = {"verb": access.verb, "group": access.resource.group, "version": access.resource.version,
                  "resource": access.resource.plural}
    for key, value in (("namespace", access.namespace), ("name", access.name), ("subresource", access.subresource)):
        if value:
            attributes[key] = value
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": attributes}}
    reply = await client.request("POST", REVIEWS, body=json.dumps(review).encode(), content_type="application/json")
    status = reply.json().get("status")
    return isinstance(status, dict) and status.get("allowed") is True
